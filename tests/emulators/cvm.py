"""Offline emulator of Tencent Cloud CVM API 2017-03-12 (image actions) for the unmodified tencentcloud SDK.

One port serves every region: the region comes from the X-TC-Region header. Point the SDK at it with
`HttpProfile(endpoint=emu.endpoint, protocol="http")` (endpoint is host:port, no scheme).
Only POST with a JSON body is served (the SDK default). Every answer is HTTP 200 with
`{"Response": {..., "RequestId"}}`; errors carry `Response.Error.{Code,Message}`, which the SDK raises as
TencentCloudSDKException. A valid request with DryRun=true answers the error `DryRunOperation`, as CVM does
(Tencent Cloud API 3.0 common error codes: "DryRunOperation: the request would have succeeded, but the DryRun
parameter was used").

ImportImage validates the same things on a DryRun and on a real call (the SDK model: DryRun "only checks the
parameters, does not run the task"); only fetching the COS object belongs to the real call. By default its answer
carries no ImageId, as in the API reference's example (the SDK model makes the field optional): pass
`return_image_id=True` for the answer with one. Every rule and its source: tests/emulators/README.md.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .auth import AuthError, verify_tc3
from .server import (
    FAIL,
    SERVER_ERROR,
    STUCK,
    THROTTLE,
    Call,
    Emulator,
    Faults,
    HttpRequest,
    HttpResponse,
    Progress,
    ServerThread,
    Timing,
    new_request_id,
    utc_iso,
)

API_VERSION = "2017-03-12"
ARCHITECTURES = {"x86_64": "x86_64", "i386": "i386", "arm_64": "arm"}  # ImportImage value -> Image.Architecture
BOOT_MODES = ("Legacy BIOS", "UEFI")
IMAGE_ID = re.compile(r"^img-[a-z0-9]{8}$")
BUSY_STATES = ("CREATING", "IMPORTING", "SYNCING")
FILTERS = ("image-id", "image-type", "image-name", "platform", "tag-key", "tag-value")  # and tag:<key>
# RFC 3986 section 2: a URL holds only unreserved and reserved characters, anything else percent-encoded. COS
# object URLs follow it: an object key with spaces or non-ASCII characters is sent percent-encoded (COS
# "Object Key" naming rules). CVM answers InvalidParameter.InvalidParameterUrlError ("错误的url地址") for a bad
# URL (tencentcloud/cvm/v20170312/errorcodes.py).
URL_CHARACTERS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$")
COS_OBJECT_URL = re.compile(r"^https://[a-z0-9-]+-\d+\.cos\.[a-z0-9-]+\.myqcloud\.com/.+$")


@dataclass(frozen=True)
class ImportOs:
    os_name: str
    versions: tuple[str, ...]
    architectures: tuple[str, ...] = ("x86_64", "arm_64")


# DescribeImportImageOs's API reference example lists "Other Linux" with version "8" (not "-").
DEFAULT_IMPORT_OS = (
    ImportOs("CentOS", ("7", "8")),
    ImportOs("OpenEuler", ("20.03", "22.03", "24.03")),
    ImportOs("Ubuntu", ("20.04", "22.04", "24.04")),
    ImportOs("Other Linux", ("8",), ("x86_64", "i386", "arm_64")),
)


class CvmError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Image:
    id: str
    region: str
    owner: str  # account id
    name: str
    architecture: str  # as imported: x86_64 | i386 | arm_64
    os_type: str
    os_version: str
    boot_mode: str
    image_url: str  # "" for a synced copy
    progress: Progress | None = field(default=None, repr=False)
    state: str = "IMPORTING"  # IMPORTING -> NORMAL | IMPORTFAILED; SYNCING -> NORMAL | CREATEFAILED
    description: str = ""
    license_type: str = "TencentCloud"
    tags: dict[str, str] = field(default_factory=dict)
    shared_with: dict[str, str] = field(default_factory=dict)  # account id -> CreatedTime
    synced_from: str | None = None
    created_at: str = field(default_factory=utc_iso)

    def wire(self) -> dict:
        os_name = f"{self.os_type} {self.os_version}"
        return {
            "ImageId": self.id, "OsName": os_name, "ImageType": "PRIVATE_IMAGE", "CreatedTime": self.created_at,
            "ImageName": self.name, "ImageDescription": self.description, "ImageSize": 20,
            "Architecture": ARCHITECTURES[self.architecture], "ImageState": self.state, "Platform": self.os_type,
            "ImageCreator": self.owner, "ImageSource": "EXTERNAL_IMPORT",
            "SyncPercent": 100 if self.state == "NORMAL" else 0, "IsSupportCloudinit": True, "SnapshotSet": [],
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()], "LicenseType": self.license_type,
            "ImageFamily": "", "ImageDeprecated": False,
        }


def _required(params: dict, *names: str) -> None:
    for name in names:
        if params.get(name) in (None, "", []):
            raise CvmError("MissingParameter", f"The request is missing a required parameter `{name}`.")


def _too_long(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise CvmError("InvalidParameterValue.TooLong", f"`{name}` is longer than {limit} characters.")


def _dry_run(params: dict) -> None:
    if params.get("DryRun"):
        raise CvmError("DryRunOperation", "DryRun request would have succeeded.")


class CvmEmulator(Emulator):
    """Tencent CVM image APIs on 127.0.0.1, all regions on one port.

    `object_exists(url)` decides whether the COS object behind an ImageUrl exists; by default it checks
    `emu.objects`, a set of URLs tests fill in.
    `return_image_id`: whether ImportImage's answer carries the new ImageId (the API reference's example has
    only RequestId, so by default it does not).
    `import_unsupported_regions`: regions that answer ImportImage RegionAbilityLimit.UnsupportedToImportImage.
    `arm_import`: False makes ImportImage of arm_64 answer UnsupportedOperation.ArmArchitecture.
    `image_quota`: what DescribeImageQuota answers; ImportImage and SyncImages refuse a region's image beyond it.
    """

    def __init__(self, regions: tuple[str, ...] = ("ap-guangzhou", "ap-shanghai", "ap-beijing"),
                 secret_id: str = "AKIDEMULATOR000000000000000000000001", secret_key: str = "emulator-secret-key",
                 account_id: str = "100000000001", object_exists: Callable[[str], bool] | None = None,
                 import_os: tuple[ImportOs, ...] = DEFAULT_IMPORT_OS, timing: Timing | None = None,
                 max_clock_skew: float = 300, return_image_id: bool = False,
                 import_unsupported_regions: tuple[str, ...] = (), arm_import: bool = True,
                 image_quota: int = 500):
        self.regions = list(regions)
        self.secret_id, self.secret_key, self.account_id = secret_id, secret_key, account_id
        self.objects: set[str] = set()
        self.object_exists = object_exists or (lambda url: url in self.objects)
        self.import_os = list(import_os)
        self.return_image_id = return_image_id
        self.import_unsupported_regions = set(import_unsupported_regions)
        self.arm_import = arm_import
        self.image_quota = image_quota
        self.timing = timing or Timing(polls=2)
        self.max_clock_skew = max_clock_skew
        self.faults = Faults()
        self.images: dict[str, Image] = {}
        self.requests: list[Call] = []
        self.auth_failures: list[str] = []
        self.crashes: list[str] = []
        self._lock = threading.RLock()
        self._server = ServerThread(self._handle, self.crashes)
        self._actions: dict[str, Callable[[str, dict], dict]] = {
            "ImportImage": self._import_image, "DescribeImages": self._describe_images,
            "SyncImages": self._sync_images, "ModifyImageSharePermission": self._modify_image_share_permission,
            "DescribeImageSharePermission": self._describe_image_share_permission,
            "DeleteImages": self._delete_images, "DescribeImportImageOs": self._describe_import_image_os,
            "DescribeImageQuota": self._describe_image_quota,
        }

    # ---- lifecycle and test helpers -------------------------------------------------------------------
    def _threads(self) -> tuple[ServerThread]:
        return (self._server,)

    @property
    def endpoint(self) -> str:
        """host:port, for HttpProfile(endpoint=..., protocol="http")."""
        return self._server.host

    @property
    def url(self) -> str:
        return self._server.url

    def calls(self, action: str) -> list[Call]:
        return [call for call in self.requests if call.action == action]

    def finish_all(self) -> None:
        """Let every importing/syncing image finish at its next look (stuck ones stay stuck)."""
        with self._lock:
            for image in self.images.values():
                if image.progress is not None:
                    image.progress.finish()

    # ---- HTTP entry point --------------------------------------------------------------------------------
    def _handle(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id()
        with self._lock:
            try:
                region, action = self._authenticate(request)
            except CvmError as error:
                return _response(request_id, error=error)
            call = Call(region, action, None)
            self.requests.append(call)
            try:
                call.body = _json_params(request)
                handler = self._actions.get(action)
                if handler is None:
                    raise CvmError("InvalidAction", f"The action `{action}` is not emulated.")
                self._inject_request_faults(action, region)
                result = handler(region, call.body)
            except CvmError as error:
                call.error = error.code
                return _response(request_id, error=error)
        return _response(request_id, result)

    def _authenticate(self, request: HttpRequest) -> tuple[str, str]:
        try:
            verify_tc3(request, lambda sid: self.secret_key if sid == self.secret_id else None, "cvm",
                       self.max_clock_skew)
        except AuthError as error:
            self.auth_failures.append(error.message)
            code = {"unknown_key": "AuthFailure.SecretIdNotFound", "expired": "AuthFailure.SignatureExpire",
                    "missing": "AuthFailure.InvalidAuthorization"}.get(error.code, "AuthFailure.SignatureFailure")
            raise CvmError(code, error.message) from None
        if request.header("X-TC-Version") != API_VERSION:
            raise CvmError("NoSuchVersion", f"The API version `{request.header('X-TC-Version')}` does not exist.")
        region = request.header("X-TC-Region") or ""
        if region not in self.regions:
            raise CvmError("UnsupportedRegion", f"The region `{region}` is not supported.")
        return region, request.header("X-TC-Action") or ""

    def _inject_request_faults(self, action: str, region: str) -> None:
        fault = self.faults.take((THROTTLE, SERVER_ERROR), action, region)
        if fault is None:
            return
        if fault.kind == THROTTLE:
            raise CvmError("RequestLimitExceeded", "The number of requests exceeds the frequency limit.")
        raise CvmError("InternalError", f"An internal error has occurred ({fault.reason}).")

    # ---- state helpers -----------------------------------------------------------------------------------
    def _new_image_id(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            image_id = "img-" + "".join(secrets.choice(alphabet) for _ in range(8))
            if image_id not in self.images:
                return image_id

    def _look(self, image: Image) -> None:
        """The client saw the image: advance its import/sync, and settle it once done."""
        if image.progress is None:
            return
        image.progress.look()
        if image.progress.done:
            failed = image.progress.fail_reason is not None
            image.state = "NORMAL" if not failed else ("IMPORTFAILED" if image.state == "IMPORTING" else "CREATEFAILED")
            image.progress = None

    def _own_image(self, region: str, image_id: Any) -> Image:
        if not isinstance(image_id, str) or not IMAGE_ID.match(image_id):
            raise CvmError("InvalidImageId.Malformed", f"The image id `{image_id}` is malformed.")
        image = self.images.get(image_id)
        if image is None or image.region != region or image.owner != self.account_id:
            raise CvmError("InvalidImageId.NotFound", f"The image `{image_id}` does not exist.")
        self._look(image)
        return image

    def _import_os(self, os_type: str) -> ImportOs:
        """OsType must be one DescribeImportImageOs lists (ImportImageRequest.OsType in the SDK model; the error
        code from tencentcloud/cvm/v20170312/errorcodes.py)."""
        for entry in self.import_os:
            if entry.os_name == os_type:
                return entry
        raise CvmError("InvalidImageOsType.Unsupported",
                       f"OsType `{os_type}` is not supported; see DescribeImportImageOs.")

    # ---- actions -----------------------------------------------------------------------------------------
    def _import_image(self, region: str, params: dict) -> dict:
        """Every check runs on a DryRun too (SDK model: DryRun "only checks the parameters"); only the COS object's
        existence is looked at by the real call alone, which is when CVM fetches it."""
        if region in self.import_unsupported_regions:  # errorcodes.py: 该地域不支持导入镜像
            raise CvmError("RegionAbilityLimit.UnsupportedToImportImage",
                           f"Importing images is not supported in {region}.")
        _required(params, "Architecture", "OsType", "OsVersion", "ImageUrl", "ImageName")
        architecture = params["Architecture"]
        if architecture not in ARCHITECTURES:
            raise CvmError("InvalidParameterValue",
                           f"Architecture `{architecture}` is invalid; use one of {sorted(ARCHITECTURES)}.")
        name, description = params["ImageName"], params.get("ImageDescription") or ""
        _too_long("ImageName", name, 60)
        _too_long("ImageDescription", description, 256)
        os = self._import_os(params["OsType"])
        if params["OsVersion"] not in os.versions:  # OsVersion from ImportImageOsVersionSet (SDK model)
            raise CvmError("InvalidImageOsVersion.Unsupported",
                           f"OsVersion `{params['OsVersion']}` is not supported for {os.os_name}; use one of "
                           f"{list(os.versions)}.")
        if architecture == "arm_64" and not self.arm_import:  # errorcodes.py: 该操作暂不支持Arm机器
            raise CvmError("UnsupportedOperation.ArmArchitecture", "This operation does not support Arm yet.")
        if architecture not in os.architectures:  # OsVersion.Architecture (SDK model)
            raise CvmError("InvalidParameterValue", f"Architecture `{architecture}` is not supported for {os.os_name}.")
        boot_mode = params.get("BootMode") or "Legacy BIOS"
        if boot_mode not in BOOT_MODES:
            raise CvmError("InvalidParameterValue", f"BootMode `{boot_mode}` is invalid; use one of {BOOT_MODES}.")
        license_type = params.get("LicenseType") or "TencentCloud"
        if license_type not in ("TencentCloud", "BYOL"):
            raise CvmError("InvalidParameterValue", f"LicenseType `{license_type}` is invalid.")
        tags = _tags(params.get("TagSpecification") or [])
        _check_image_url(params["ImageUrl"])
        if any(i.name == name and i.region == region for i in self.images.values()):
            raise CvmError("InvalidImageName.Duplicate", f"An image named `{name}` already exists.")
        self._check_quota(region, 1)
        _dry_run(params)
        if not self.object_exists(params["ImageUrl"]):
            raise CvmError("InvalidParameterValue", f"ImageUrl `{params['ImageUrl']}` does not reference an "
                                                    "existing COS object.")
        fault = self.faults.take((FAIL, STUCK), "ImportImage", region)
        image = Image(self._new_image_id(), region, self.account_id, name, architecture, params["OsType"],
                      params["OsVersion"], boot_mode, params["ImageUrl"], Progress(self.timing, fault),
                      description=description, license_type=license_type, tags=tags)
        self.images[image.id] = image
        # ImportImageResponse.ImageId is optional; the API reference's example answers RequestId only.
        return {"ImageId": image.id} if self.return_image_id else {}

    def _describe_images(self, region: str, params: dict) -> dict:
        image_ids, filters = params.get("ImageIds") or [], params.get("Filters") or []
        if image_ids and filters:
            raise CvmError("InvalidParameter", "ImageIds and Filters cannot be specified at the same time.")
        limit, offset = params.get("Limit", 20), params.get("Offset", 0)
        if not isinstance(limit, int) or not 0 <= limit <= 100 or not isinstance(offset, int) or offset < 0:
            raise CvmError("InvalidParameterValue", "Limit must be between 0 and 100 and Offset must be >= 0.")
        for image_id in image_ids:
            if not IMAGE_ID.match(str(image_id)):
                raise CvmError("InvalidImageId.Malformed", f"The image id `{image_id}` is malformed.")
        if len(filters) > 10 or any(len(f.get("Values") or []) > 5 for f in filters):
            raise CvmError("InvalidParameterValue", "At most 10 Filters with at most 5 Values each.")
        for flt in filters:
            if flt.get("Name") not in FILTERS and not str(flt.get("Name")).startswith("tag:"):
                raise CvmError("InvalidFilter", f"The filter `{flt.get('Name')}` is not supported.")
        found = [image for image in reversed(list(self.images.values()))  # newest first
                 if image.region == region and image.owner == self.account_id
                 and (not image_ids or image.id in image_ids) and all(_filter_matches(image, f) for f in filters)]
        page = found[offset:offset + limit]
        for image in page:
            self._look(image)
        return {"ImageSet": [image.wire() for image in page], "TotalCount": len(found)}

    def _sync_images(self, region: str, params: dict) -> dict:
        _required(params, "ImageIds", "DestinationRegions")
        sources = [self._own_image(region, image_id) for image_id in params["ImageIds"]]
        for source in sources:
            if source.state != "NORMAL":
                raise CvmError("InvalidImageId.IncorrectState",
                               f"The image `{source.id}` is {source.state}; only NORMAL images can be synced.")
        for destination in params["DestinationRegions"]:
            if destination not in self.regions:
                raise CvmError("InvalidRegion.NotFound", f"The region `{destination}` does not exist.")
            if destination == region:
                raise CvmError("InvalidParameterValue", "A custom image cannot be synced to its own region.")
        name = params.get("ImageName") or ""
        _too_long("ImageName", name, 60)
        for destination in params["DestinationRegions"]:
            self._check_quota(destination, len(sources))
        _dry_run(params)
        image_set = []
        for source in sources:
            for destination in params["DestinationRegions"]:
                fault = self.faults.take((FAIL, STUCK), "SyncImages", destination)
                copy = Image(self._new_image_id(), destination, self.account_id, name or source.name,
                             source.architecture, source.os_type, source.os_version, source.boot_mode, "",
                             Progress(self.timing, fault), state="SYNCING", description=source.description,
                             license_type=source.license_type, synced_from=source.id)
                self.images[copy.id] = copy
                image_set.append({"ImageId": copy.id, "Region": destination})
        return {"ImageSet": image_set} if params.get("ImageSetRequired") else {}

    def _modify_image_share_permission(self, region: str, params: dict) -> dict:
        _required(params, "ImageId", "AccountIds", "Permission")
        image = self._own_image(region, params["ImageId"])
        permission, accounts = params["Permission"], params["AccountIds"]
        if permission not in ("SHARE", "CANCEL"):
            raise CvmError("InvalidParameterValue", f"Permission `{permission}` is invalid; use SHARE or CANCEL.")
        if len(accounts) > 500:
            raise CvmError("InvalidParameterValue", "At most 500 AccountIds per request.")
        for account in accounts:
            if not re.fullmatch(r"\d{5,20}", str(account)):
                raise CvmError("InvalidAccountId.NotFound", f"The account `{account}` does not exist.")
            if account == self.account_id:
                raise CvmError("InvalidAccountIs.YourSelf", "An image cannot be shared with its own account.")
        if image.state != "NORMAL":
            raise CvmError("InvalidImageId.IncorrectState", f"The image `{image.id}` is {image.state}.")
        for account in accounts:
            if permission == "SHARE":
                image.shared_with.setdefault(account, utc_iso())
            else:
                image.shared_with.pop(account, None)
        return {}

    def _describe_image_share_permission(self, region: str, params: dict) -> dict:
        _required(params, "ImageId")
        image = self._own_image(region, params["ImageId"])
        return {"SharePermissionSet": [{"AccountId": account, "CreatedTime": created}
                                       for account, created in image.shared_with.items()]}

    def _delete_images(self, region: str, params: dict) -> dict:
        _required(params, "ImageIds")
        images = [self._own_image(region, image_id) for image_id in params["ImageIds"]]
        for image in images:
            syncing = [i.id for i in self.images.values() if i.synced_from == image.id and i.state == "SYNCING"]
            if image.state in BUSY_STATES or syncing:
                raise CvmError("InvalidImageId.IncorrectState",
                               f"The image `{image.id}` is {image.state}{' and being synced' if syncing else ''}.")
            if image.shared_with:
                raise CvmError("InvalidImageId.InShared", f"The image `{image.id}` is shared; cancel sharing first.")
        _dry_run(params)
        for image in images:
            del self.images[image.id]
        return {}

    def _check_quota(self, region: str, adding: int) -> None:
        """DescribeImageQuota's ImageNumQuota bounds the custom images (counted per region here); beyond it CVM
        answers ImageQuotaLimitExceeded (tencentcloud/cvm/v20170312/errorcodes.py: 镜像配额超过了限制)."""
        held = sum(i.region == region and i.owner == self.account_id for i in self.images.values())
        if held + adding > self.image_quota:
            raise CvmError("ImageQuotaLimitExceeded", f"The image quota ({self.image_quota}) of {region} is used up.")

    def _describe_image_quota(self, region: str, params: dict) -> dict:
        return {"ImageNumQuota": self.image_quota}

    def _describe_import_image_os(self, region: str, params: dict) -> dict:
        return {"ImportImageOsListSupported": {"Linux": [os.os_name for os in self.import_os], "Windows": []},
                "ImportImageOsVersionSet": [{"OsName": os.os_name, "OsVersions": list(os.versions),
                                             "Architecture": list(os.architectures)} for os in self.import_os]}


def _check_image_url(url: str) -> None:
    if not URL_CHARACTERS.match(url) or not COS_OBJECT_URL.match(url):
        raise CvmError("InvalidParameter.InvalidParameterUrlError",
                       f"ImageUrl `{url}` is not a percent-encoded COS object URL "
                       "(https://BUCKET-APPID.cos.REGION.myqcloud.com/KEY).")


def object_key(url: str) -> str:
    """The COS object key an ImageUrl names (percent-decoding undone), for tests' `object_exists`."""
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.lstrip("/"))


def _tags(specifications: list[dict]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for spec in specifications:
        if spec.get("ResourceType") != "image":
            raise CvmError("InvalidParameterValue", f"TagSpecification.ResourceType `{spec.get('ResourceType')}` "
                                                    "is invalid; use image.")
        for tag in spec.get("Tags") or []:
            if not tag.get("Key"):
                raise CvmError("InvalidParameterValue", "Tag keys must not be empty.")
            tags[tag["Key"]] = tag.get("Value", "")
    return tags


def _filter_matches(image: Image, flt: dict) -> bool:
    name, values = flt.get("Name") or "", flt.get("Values") or []
    if name == "image-id":
        return image.id in values
    if name == "image-type":
        return "PRIVATE_IMAGE" in values
    if name == "image-name":
        return any(value in image.name for value in values)
    if name == "platform":
        return any(value.lower() in image.os_type.lower() for value in values)
    if name == "tag-key":
        return any(value in image.tags for value in values)
    if name == "tag-value":
        return any(value in image.tags.values() for value in values)
    return name.startswith("tag:") and image.tags.get(name[4:]) in values


def _json_params(request: HttpRequest) -> dict:
    if request.method != "POST" or request.header("Content-Type") != "application/json":
        raise CvmError("InvalidParameter", "The emulator serves POST application/json requests only.")
    try:
        params = request.json() or {}
    except ValueError:
        raise CvmError("InvalidParameter", "The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise CvmError("InvalidParameter", "The request body must be a JSON object.")
    return params


def _response(request_id: str, result: dict | None = None, error: CvmError | None = None) -> HttpResponse:
    body = {"Error": {"Code": error.code, "Message": error.message}} if error else dict(result or {})
    body["RequestId"] = request_id
    # The SDK only looks for errors when Content-Type is exactly "application/json".
    return HttpResponse(200, json.dumps({"Response": body}).encode(), {"Content-Type": "application/json"})
