"""Tencent Cloud: the disk goes to COS, CVM imports it as a custom image, syncs it to more regions, shares it.

Credentials come only from `TENCENTCLOUD_SECRET_ID` and `TENCENTCLOUD_SECRET_KEY`. The CVM API endpoint is the
SDK's default, or `EULERPUB_TENCENT_CVM_ENDPOINT` (a full URL; `http://` allowed for tests). COS is
`https://cos.{region}.myqcloud.com`, or `EULERPUB_TENCENT_COS_ENDPOINT`; the bucket is the full `name-APPID`.

CVM takes no client tokens: each create call is made safe to repeat by the core's `find_image` just before it.
ImportImage's answer may carry no ImageId (the API reference's example has only RequestId): the new image is then
found by its name and this build's tag. Preflight asks DescribeImportImageOs for the OsType/OsVersion and sends
ImportImage(DryRun=True), so a refused OS, architecture, region or name fails before the upload.
Imported images carry eulerpub's tags (TagSpecification); SyncImages copies carry none, so every image also gets
the build marker in its description, which SyncImages does copy, and `find_image` falls back to it.

Prune's leftovers are the uploads in COS only. The CBS snapshots behind a custom image are CBS's API, not CVM's
(DescribeSnapshots is not called, nor emulated); `delete_image` removes them with the image (DeleteBindedSnap).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any, Literal

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cvm.v20170312 import models
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from eulerpub import bootmodes, retry
from eulerpub.clouds import boto, sdkutil
from eulerpub.clouds.base import (
    TAG_BUILD_ID,
    BootMode,
    ImageRef,
    ImageState,
    Imported,
    PublishSpec,
    Upload,
)
from eulerpub.clouds.staged import StagedImportAdapter, cloud_arch, map_state
from eulerpub.clouds.wait import JobStatus
from eulerpub.errors import CloudError, UsageError
from eulerpub.profiles import Arch

log = logging.getLogger(__name__)

CLOUD = "tencent"
SECRET_ID, SECRET_KEY = "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"
CVM_ENDPOINT = "EULERPUB_TENCENT_CVM_ENDPOINT"
COS_ENDPOINT = "EULERPUB_TENCENT_COS_ENDPOINT"
COS_DEFAULT = "https://cos.{region}.myqcloud.com"

NAME_MAX = 60  # ImportImage's ImageName limit
DESCRIPTION_MAX = 256
PAGE = 100  # DescribeImages' largest Limit
FALLBACK_OS_TYPE = "Other Linux"  # what DescribeImportImageOs calls a Linux it has no entry for
ACCOUNT_ID = re.compile(r"^\d{5,20}$")
REQUEST_TIMEOUT = 60  # seconds; CVM answers every image call in well under a second
COS_BUCKET = re.compile(r"^[a-z0-9-]+-\d+$")  # name-APPID

ARCHITECTURES: dict[str, Literal["x86_64", "arm_64"]] = {"x86_64": "x86_64", "aarch64": "arm_64"}
_STATES: dict[str, ImageState] = {"NORMAL": "available", "CREATING": "pending", "IMPORTING": "pending",
                                  "SYNCING": "pending", "IMPORTFAILED": "failed", "CREATEFAILED": "failed"}


# -- pure mappings ------------------------------------------------------------------------------------------------

def cvm_architecture(arch: Arch) -> Literal["x86_64", "arm_64"]:
    """ImportImage rejects "aarch64": Tencent calls it arm_64."""
    return cloud_arch(ARCHITECTURES, arch, "Tencent Cloud")


def cvm_boot_mode(arch: Arch, boot_mode: BootMode | None) -> Literal["Legacy BIOS", "UEFI"]:
    """arm_64 boots UEFI only; x86_64 boots Legacy BIOS unless UEFI is asked for (CVM has no "UEFI if
    possible", so uefi-preferred means Legacy BIOS, which every x86 instance type boots)."""
    return bootmodes.tencent_boot_mode("uefi" if arch == "aarch64" else boot_mode)


def choose_import_os(release: str, arch: Arch, linux: Sequence[str] | None,
                     versions: Sequence[tuple[str, Sequence[str], Sequence[str]]]) -> tuple[str, str]:
    """(OsType, OsVersion) for ImportImage from DescribeImportImageOs: `linux` is its
    ImportImageOsListSupported.Linux (None when absent) and `versions` its ImportImageOsVersionSet as (OsName,
    OsVersions, Architecture). openEuler with this release's version if listed for the architecture, else
    "Other Linux" with the first version CVM lists for it; UsageError when neither is offered."""
    base = release.split("-", 1)[0]
    wanted_arch = cvm_architecture(arch)
    usable = [(name, list(listed)) for name, listed, arches in versions
              if (linux is None or name in linux) and (not arches or wanted_arch in arches)]
    for name, listed in usable:
        if name.lower() == "openeuler" and base in listed:
            return name, base
    for name, listed in usable:
        if name == FALLBACK_OS_TYPE and listed:
            return name, listed[0]
    raise UsageError(f"Tencent Cloud lists neither openEuler {base} nor {FALLBACK_OS_TYPE} for {wanted_arch} "
                     "imports in this region (DescribeImportImageOs); publish to another region")


def image_url(bucket: str, region: str, key: str) -> str:
    """The COS object URL ImportImage fetches (always the cloud's own, whatever endpoint the upload used), with
    the key percent-encoded (RFC 3986; "/" separates its parts and stays)."""
    return f"https://{bucket}.cos.{region}.myqcloud.com/{urllib.parse.quote(key, safe='/')}"


def image_state(state: str | None) -> ImageState:
    return map_state(_STATES, state)


def tag_specification(tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": "image", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def http_profile(endpoint_url: str | None) -> HttpProfile:
    """The SDK wants host[:port] and the scheme apart."""
    if endpoint_url is None:
        return HttpProfile(reqTimeout=REQUEST_TIMEOUT)
    scheme, host = sdkutil.split_url(endpoint_url)
    return HttpProfile(endpoint=host, protocol=scheme, reqTimeout=REQUEST_TIMEOUT)


def _image_ref(region: str, image: Any) -> ImageRef:
    tags = {t.Key: t.Value or "" for t in image.Tags or []}
    return ImageRef(cloud=CLOUD, region=region, image_id=image.ImageId, name=image.ImageName or "",
                    state=image_state(image.ImageState),
                    tags=sdkutil.effective_tags(tags, image.ImageDescription), created=image.CreatedTime or "")


def _request(model: type, **params: Any) -> Any:
    request = model()
    request.from_json_string(json.dumps({k: v for k, v in params.items() if v is not None}))
    return request


# -- errors -------------------------------------------------------------------------------------------------------

def _inspect(exc: BaseException) -> sdkutil.SdkFailure | None:
    if not isinstance(exc, TencentCloudSDKException):
        return None
    code = str(exc.get_code() or "Unknown")
    message = exc.get_message()
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message or "")
    return sdkutil.SdkFailure(code=code, message=text, credentials=code.startswith("AuthFailure")
                              or code == "InvalidCredential", not_found=code == "InvalidImageId.NotFound")


TRANSIENT = ("ClientNetworkError", "ServerNetworkError", "RequestLimitExceeded", "InternalError",
             "ResourceUnavailable")


def _transient(exc: BaseException) -> bool | None:
    """Network failures, throttling and CVM's internal errors are worth retrying; nothing else of the SDK's is."""
    if not isinstance(exc, TencentCloudSDKException):
        return None
    code = str(exc.get_code() or "")
    return any(code == t or code.startswith(t + ".") for t in TRANSIENT)


retry.register_classifier(_transient)

# ImportImage's refusals the user can act on (codes from tencentcloud/cvm/v20170312/errorcodes.py).
SENTENCES = {
    "InvalidImageOsType.Unsupported": "CVM does not import this OS type here; check DescribeImportImageOs "
                                      "for the region's list or publish to another region",
    "InvalidImageOsVersion.Unsupported": "CVM does not import this OS version here; check DescribeImportImageOs "
                                         "for the versions it lists or publish to another region",
    "RegionAbilityLimit.UnsupportedToImportImage": "this region does not import images; pass another --region "
                                                   "and reach it with --copy-to",
    "UnsupportedOperation.ArmArchitecture": "CVM does not import arm_64 images here; publish the x86_64 build "
                                            "or pick a region that imports Arm images",
    "ImageQuotaLimitExceeded": "the region's custom image quota is used up; delete old images (eulerpub prune) "
                               "or ask Tencent Cloud for a higher quota",
}

ERRORS = sdkutil.ErrorMapper(CLOUD, (TencentCloudSDKException,), _inspect, f"{SECRET_ID} and {SECRET_KEY}",
                             SENTENCES)


# -- the adapter --------------------------------------------------------------------------------------------------

class TencentAdapter(StagedImportAdapter):
    """CVM custom images imported from COS. Clients are made per region on first use."""

    name = CLOUD
    store_endpoint, store_endpoint_variable = COS_DEFAULT, COS_ENDPOINT

    # -- clients ---------------------------------------------------------------------------------------------

    def _keys(self) -> tuple[str, str]:
        secret_id, secret_key = sdkutil.require_env(CLOUD, SECRET_ID, SECRET_KEY)
        return secret_id, secret_key

    def _make_client(self, region: str) -> CvmClient:
        secret_id, secret_key = self._keys()
        profile = ClientProfile(httpProfile=http_profile(sdkutil.endpoint_override(CVM_ENDPOINT, region)))
        return CvmClient(Credential(secret_id, secret_key), region, profile)

    def _store_credentials(self) -> boto.StaticCredentials:
        secret_id, secret_key = self._keys()
        return boto.StaticCredentials(secret_id, secret_key)

    def _call(self, region: str, action: str, resource_id: str | None = None, **params: Any) -> Any:
        request = _request(getattr(models, f"{action}Request"), **params)
        return ERRORS.call(region, action, getattr(self._client(region), action), request, resource_id=resource_id)

    # -- checks ----------------------------------------------------------------------------------------------

    def preflight(self, spec: PublishSpec) -> None:
        self._check_offline(spec)
        for region in spec.regions:  # proves the credentials and each region's name
            held = self._call(region, "DescribeImages", Limit=1, Filters=[{"Name": "image-type",
                                                                           "Values": ["PRIVATE_IMAGE"]}])
            self._check_quota(spec, region, held.TotalCount or 0)
        self._staging_area().check_bucket(spec.source_region, spec.bucket or "")
        self._dry_run_import(spec)

    def _check_quota(self, spec: PublishSpec, region: str, held: int) -> None:
        """Room for one more custom image in `region` (DescribeImageQuota), unless this build's is there already."""
        quota = self._call(region, "DescribeImageQuota").ImageNumQuota
        if quota is not None and held >= quota and self.find_image(region, spec.identity.build_id) is None:
            raise UsageError(f"tencent/{region}: the account holds {held} custom images, its quota "
                             f"(DescribeImageQuota); delete old images (eulerpub prune) or ask Tencent Cloud for "
                             "a higher quota")

    def _dry_run_import(self, spec: PublishSpec) -> None:
        """ImportImage(DryRun=True) with the request the import will send: CVM checks the OS, architecture,
        name and region without importing. Skipped when an image of this name exists already (a re-run of
        this build, or another build's, which the core's name check reports)."""
        region = spec.source_region
        if any(i.name == spec.name for i in self._describe(region, [{"Name": "image-name", "Values": [spec.name]}])):
            return
        params = self._import_params(spec, image_url(spec.bucket or "", region, spec.object_key))
        try:
            self._call(region, "ImportImage", params["ImageUrl"], DryRun=True, **params)
        except CloudError as exc:  # success answers the error DryRunOperation (API 3.0 common error codes)
            failure = ERRORS.failure(exc.__cause__) if exc.__cause__ is not None else None
            if failure is None or failure.code != "DryRunOperation":
                raise

    def _check_offline(self, spec: PublishSpec) -> None:
        cvm_architecture(spec.identity.arch)
        if len(spec.name) > NAME_MAX:
            raise UsageError(f"image name {spec.name!r} is {len(spec.name)} characters; Tencent Cloud allows "
                             f"{NAME_MAX}: pass a shorter --name")
        if spec.public:
            raise UsageError("Tencent Cloud custom images cannot be made public; share them with --share ACCOUNT_ID")
        if spec.quick_import:
            raise UsageError("--quick-import is Huawei Cloud only")
        if not spec.bucket or not COS_BUCKET.match(spec.bucket):
            raise UsageError(f"--bucket {spec.bucket!r}: a COS bucket is named name-APPID (e.g. images-1250000000)")
        for account in spec.share_with:
            if not ACCOUNT_ID.match(account):
                raise UsageError(f"--share {account!r}: a Tencent Cloud account id is a number")

    # -- finding images --------------------------------------------------------------------------------------

    def _describe(self, region: str, filters: list[dict[str, Any]]) -> list[ImageRef]:
        images: list[ImageRef] = []
        filters = [*filters, {"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}]
        while True:
            page = self._call(region, "DescribeImages", Filters=filters, Limit=PAGE, Offset=len(images))
            images.extend(_image_ref(region, image) for image in page.ImageSet or [])
            if not page.ImageSet or len(images) >= (page.TotalCount or 0):
                return images

    def _this_build(self, region: str, build_id: str) -> list[ImageRef]:
        """By the build-id tag; then by the description marker (SyncImages copies carry no tags)."""
        tagged = self._describe(region, [{"Name": f"tag:{TAG_BUILD_ID}", "Values": [build_id]}])
        return tagged or [i for i in self._describe(region, []) if i.build_id == build_id]

    def list_images(self, region: str, *, name: str | None = None, profile: str | None = None) -> list[ImageRef]:
        filters = [{"Name": "image-name", "Values": [name]}] if name else []
        return sdkutil.select_images(self._describe(region, filters), name=name, profile=profile)

    def _show(self, region: str, image_id: str) -> ImageRef:
        page = self._call(region, "DescribeImages", image_id, ImageIds=[image_id])
        if not page.ImageSet:
            raise UsageError(f"tencent/{region}: image {image_id} does not exist; re-run to start over")
        return _image_ref(region, page.ImageSet[0])

    # -- upload and import -----------------------------------------------------------------------------------

    def start_import(self, spec: PublishSpec, upload: Upload, token: str) -> str:
        """ImportImage from the COS object URL; returns the new image id (what `wait_import` polls). CVM takes
        no client token (`token` is unused): the core's find_image by tag just before makes a repeat safe."""
        region = spec.source_region
        self._remove_failed(region, spec.identity.build_id)
        params = self._import_params(spec, image_url(upload.bucket or "", region, upload.id))
        response = self._call(region, "ImportImage", params["ImageUrl"], **params)
        image_id = response.ImageId or self._imported_image(spec)
        log.info("%s/%s: importing %s as %s", CLOUD, region, params["ImageUrl"], image_id)
        return image_id

    def _import_params(self, spec: PublishSpec, url: str) -> dict[str, Any]:
        identity = spec.identity
        os_type, os_version = self._import_os(spec.source_region, identity.release, identity.arch)
        return {"ImageName": spec.name, "ImageUrl": url, "ImageDescription": sdkutil.describe(spec, DESCRIPTION_MAX),
                "Architecture": cvm_architecture(identity.arch), "OsType": os_type, "OsVersion": os_version,
                "BootMode": cvm_boot_mode(identity.arch, spec.boot_mode),
                "TagSpecification": tag_specification(spec.all_tags)}

    def _import_os(self, region: str, release: str, arch: Arch) -> tuple[str, str]:
        response = self._call(region, "DescribeImportImageOs")
        listed = response.ImportImageOsListSupported
        linux = list(listed.Linux or []) if listed is not None and listed.Linux is not None else None
        versions = [(entry.OsName, list(entry.OsVersions or []), list(entry.Architecture or []))
                    for entry in response.ImportImageOsVersionSet or []]
        return choose_import_os(release, arch, linux, versions)

    def _imported_image(self, spec: PublishSpec) -> str:
        """The image ImportImage just made, when its answer left the ImageId out: this build's image of this
        name (the failed ones of earlier attempts were deleted before the import)."""
        region, build_id = spec.source_region, spec.identity.build_id
        found = [i for i in self._describe(region, [{"Name": "image-name", "Values": [spec.name]},
                                                    {"Name": f"tag:{TAG_BUILD_ID}", "Values": [build_id]}])
                 if i.name == spec.name and i.state != "failed"]
        if not found:
            raise CloudError(CLOUD, region, "ImportImage", f"the answer carried no image id and no image named "
                                                           f"{spec.name!r} of build {build_id} is listed yet; "
                                                           "re-run to pick it up")
        return max(found, key=lambda i: i.created).image_id

    def _image_status(self, region: str, image_id: str) -> JobStatus[ImageRef]:
        page = self._call(region, "DescribeImages", image_id, ImageIds=[image_id])
        if not page.ImageSet:
            return JobStatus("failed", detail=f"image {image_id} no longer exists")
        raw = page.ImageSet[0]
        image = _image_ref(region, raw)
        if image.state == "available":
            return JobStatus("done", 100, result=image)
        if image.state == "failed":
            return JobStatus("failed", detail=f"image {image_id} is {raw.ImageState} (CVM gives no reason; check "
                                              "the image format and that the COS object is readable)")
        percent = raw.SyncPercent if raw.ImageState == "SYNCING" else None
        return JobStatus("running", percent, detail=raw.ImageState or "")

    def register(self, spec: PublishSpec, imported: Imported) -> ImageRef:
        """The import already made the image, tagged at creation: look it up."""
        if not imported.image_id:
            raise UsageError("the CVM import finished without an image id; re-run to import again")
        return self._show(spec.source_region, imported.image_id)

    # -- copies ----------------------------------------------------------------------------------------------

    def copy_image(self, spec: PublishSpec, source: ImageRef, region: str, token: str) -> str:
        """SyncImages to one region; returns the copy's image id there. No client token (`token` is unused):
        the core's find_image in `region` (by tag or description marker) comes first."""
        self._remove_failed(region, spec.identity.build_id)
        response = self._call(spec.source_region, "SyncImages", source.image_id, ImageIds=[source.image_id],
                              DestinationRegions=[region], ImageName=spec.name, ImageSetRequired=True)
        copies = {item.Region: item.ImageId for item in response.ImageSet or []}
        if region not in copies:
            raise UsageError(f"tencent/{spec.source_region}: SyncImages returned no image for {region}")
        log.info("%s/%s: syncing %s to %s as %s", CLOUD, spec.source_region, source.image_id, region,
                 copies[region])
        return copies[region]

    # -- sharing and cleanup ---------------------------------------------------------------------------------

    def share(self, spec: PublishSpec, image: ImageRef, accounts: Sequence[str], public: bool) -> list[str]:
        """ModifyImageSharePermission SHARE for the accounts not yet shared with (asked first)."""
        wanted = list(dict.fromkeys(accounts))
        if not wanted:
            return []
        current = self._call(image.region, "DescribeImageSharePermission", image.image_id, ImageId=image.image_id)
        present = {p.AccountId for p in current.SharePermissionSet or []}
        missing = [a for a in wanted if a not in present]
        if missing:
            self._call(image.region, "ModifyImageSharePermission", image.image_id, ImageId=image.image_id,
                       AccountIds=missing, Permission="SHARE")
        return sorted(wanted)

    def delete_image(self, region: str, image_id: str) -> None:
        """Cancel its sharing first (CVM refuses to delete a shared image), then DeleteImages with its snapshots.
        An image already gone is fine."""
        shared = ERRORS.call_or_none(region, "DescribeImageSharePermission",
                                     self._client(region).DescribeImageSharePermission,
                                     _request(models.DescribeImageSharePermissionRequest, ImageId=image_id),
                                     resource_id=image_id)
        if shared is None:
            return
        accounts = [p.AccountId for p in shared.SharePermissionSet or []]
        if accounts:
            self._call(region, "ModifyImageSharePermission", image_id, ImageId=image_id, AccountIds=accounts,
                       Permission="CANCEL")
        request = _request(models.DeleteImagesRequest, ImageIds=[image_id], DeleteBindedSnap=True)
        ERRORS.call_or_none(region, "DeleteImages", self._client(region).DeleteImages, request,
                            resource_id=image_id)
