"""Alibaba Cloud: the disk goes to OSS, ECS imports it as a custom image, copies it to more regions, shares it.

Credentials come only from Alibaba's default chain (alibabacloud-credentials): `ALIBABA_CLOUD_ACCESS_KEY_ID` and
`ALIBABA_CLOUD_ACCESS_KEY_SECRET`, the credentials file, an ECS instance RAM role, OIDC. The ECS endpoint is the
SDK's own for the region, or `EULERPUB_ALIBABA_ECS_ENDPOINT` (a full URL; `http://` allowed for tests); RAM's is
`ram.aliyuncs.com` or `EULERPUB_ALIBABA_RAM_ENDPOINT`.

OSS through its S3-compatible API and the one shared uploader: OSS serves every call the uploader makes
(InitiateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload, AbortMultipartUpload, HeadObject,
DeleteObject, ListObjectsV2, HeadBucket: OSS "Compatibility with Amazon S3"), verifies each part's Content-MD5
(OSS UploadPart: InvalidDigest) and refuses `aws-chunked` bodies (OSS error 0017-00000804), so it gets what OBS
and COS get: Content-MD5 per part, no CRC trailers. The endpoint is `https://s3.oss-{region}.aliyuncs.com`
(virtual-hosted buckets), or `EULERPUB_ALIBABA_OSS_ENDPOINT`. The upload is signed
with what Alibaba's chain gives at each request: an AccessKey pair, or an STS token (RAM role, OIDC,
ALIBABA_CLOUD_SECURITY_TOKEN), which the S3-compatible API takes in `x-amz-security-token` (OSS error
0002-00000009 refuses it in `x-oss-security-token` there and names the x-amz header instead), botocore's session
token header. The chain refreshes an STS token before it expires, so an upload that outlives one token signs its
later parts with the next.

ImportImage takes a ClientToken, so a repeated import returns the same task; CopyImage too. Images and copies are
tagged at creation (Tag.N) and carry the build marker in their description. BootMode is BIOS or UEFI (ECS has no
"UEFI if possible": uefi-preferred imports as BIOS, which every x86 instance type boots; arm64 is UEFI only).
The import reads OSS through the RAM role AliyunECSImageImportDefaultRole; preflight asks RAM (GetRole) for it.

A failed import says why: DescribeTasks finds the image's ImportImage task and DescribeTaskAttribute gives its
ErrorCode and ErrorMsg. A failed copy has no task (DescribeTasks' TaskAction has no CopyImage): only its state.

Every image ECS makes keeps a system-disk snapshot (DescribeImages' DiskDeviceMapping.SnapshotId), and DeleteImage
leaves it: DeleteSnapshot refuses a snapshot an image uses (SnapshotCreatedImage), so the snapshot goes after the
image. ECS does not document that ImportImage's or CopyImage's Tag.N reach that snapshot, so when an image is
Available eulerpub tags its snapshot (TagResources) with the image's tags; prune's leftovers are those snapshots
(DescribeSnapshots by tag) and the uploads in OSS.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Sequence
from typing import Any, Literal

from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.exceptions import CredentialException
from alibabacloud_credentials.utils import auth_util
from alibabacloud_ecs20140526 import models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi import models as openapi
from alibabacloud_tea_openapi.client import Client as OpenApiClient
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_tea_util.models import RuntimeOptions
from darabonba.exceptions import UnretryableException

from eulerpub import bootmodes, retry
from eulerpub.clouds import boto, sdkutil
from eulerpub.clouds.base import (
    MANAGED_BY,
    TAG_BUILD_ID,
    TAG_MANAGED_BY,
    BootMode,
    ImageRef,
    ImageState,
    Imported,
    Leftover,
    LeftoverKind,
    PublishSpec,
    Upload,
)
from eulerpub.clouds.staged import StagedImportAdapter, cloud_arch, map_state
from eulerpub.clouds.wait import JobStatus
from eulerpub.errors import CloudError, CredentialsError, UsageError
from eulerpub.profiles import Arch, Format

log = logging.getLogger(__name__)

CLOUD = "alibaba"
KEY_ID, KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ECS_ENDPOINT = "EULERPUB_ALIBABA_ECS_ENDPOINT"
OSS_ENDPOINT = "EULERPUB_ALIBABA_OSS_ENDPOINT"
RAM_ENDPOINT = "EULERPUB_ALIBABA_RAM_ENDPOINT"
OSS_DEFAULT = "https://s3.oss-{region}.aliyuncs.com"  # OSS "Use AWS SDKs to access OSS"
RAM_DEFAULT = "ram.aliyuncs.com"
IMPORT_ROLE = "AliyunECSImageImportDefaultRole"
ROLE_HINT = (f"ECS imports from OSS through the RAM role {IMPORT_ROLE}: authorize it once (the ECS console's "
             "image import page offers it, or create the role trusting ecs.aliyuncs.com with the policy "
             "AliyunECSImageImportRolePolicy in RAM)")

# ImportImageRequest (alibabacloud-ecs20140526 7.11.8 models): Platform has no openEuler entry; "Others Linux" is
# its documented default, so openEuler is imported under that name.
PLATFORM = "Others Linux"
DESCRIPTION_MAX = 256  # ImportImage/CopyImage Description: 2-256 characters
DISK_GIB_MIN, DISK_GIB_MAX = 1, 2048  # DiskDeviceMapping.N.DiskImageSize
FORMATS: dict[str, str] = {"raw": "RAW", "qcow2": "QCOW2", "vhd": "VHD"}  # VMDK is "in invitational preview"
TAGS_MAX = 20  # Tag.N: N from 1 to 20
PAGE = 100  # DescribeImages PageSize: at most 100
SHARE_BATCH = 10  # ModifyImageSharePermission AddAccount.N / RemoveAccount.N: 1 to 10
ALL_STATES = "Creating,Waiting,Available,UnAvailable,CreateFailed"  # DescribeImages answers Available only by default
ACCOUNT_ID = re.compile(r"^\d{10,20}$")
NAME_START = re.compile(r"^[A-Za-z\u4e00-\u9fa5]")  # ImportImageRequest.ImageName: starts with a letter
CONNECT_TIMEOUT_MS, READ_TIMEOUT_MS = 10_000, 60_000

ARCHITECTURES: dict[str, Literal["x86_64", "arm64"]] = {"x86_64": "x86_64", "aarch64": "arm64"}  # ImportImage
_STATES: dict[str, ImageState] = {"Available": "available", "Creating": "pending", "Waiting": "pending",
                                  "CreateFailed": "failed", "UnAvailable": "failed", "Deprecated": "failed"}


# -- pure mappings ------------------------------------------------------------------------------------------------

def ecs_architecture(arch: Arch) -> Literal["x86_64", "arm64"]:
    return cloud_arch(ARCHITECTURES, arch, "Alibaba Cloud ECS")


def ecs_boot_mode(arch: Arch, boot_mode: BootMode | None) -> Literal["BIOS", "UEFI"]:
    """arm64 imports UEFI only (ImportImageRequest.BootMode); x86_64 BIOS unless the image is UEFI-only."""
    return bootmodes.alibaba_boot_mode("uefi" if arch == "aarch64" else boot_mode)


def ecs_format(fmt: Format) -> str:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise UsageError(f"ECS does not import {fmt} images here; publish raw, qcow2 or vhd") from None


def image_state(status: str | None) -> ImageState:
    return map_state(_STATES, status)


def client_token(token: str) -> str:
    """ClientToken: ASCII, at most 64 characters (ImportImageRequest.ClientToken)."""
    return token.encode("ascii", "replace").decode()[:64]


def tag_list(model: type, tags: dict[str, str]) -> list[Any]:
    if len(tags) > TAGS_MAX:
        raise UsageError(f"an ECS image takes at most {TAGS_MAX} tags and this publish has {len(tags)}; "
                         "use fewer --tag options")
    return [model(key=k, value=v) for k, v in tags.items()]


def percent(progress: str | None) -> int | None:
    """DescribeImages' Progress, e.g. "45%"."""
    digits = (progress or "").rstrip("%").strip()
    return int(float(digits)) if digits.replace(".", "", 1).isdigit() else None


def _tag_map(tags: Any) -> dict[str, str]:
    """A DescribeImages/DescribeSnapshots `Tags` object as a dict."""
    return {t.tag_key: t.tag_value or "" for t in (tags.tag if tags and tags.tag else [])}


def _image_ref(region: str, image: Any) -> ImageRef:
    disks = image.disk_device_mappings.disk_device_mapping if image.disk_device_mappings and \
        image.disk_device_mappings.disk_device_mapping else []
    return ImageRef(cloud=CLOUD, region=region, image_id=image.image_id, name=image.image_name or "",
                    state=image_state(image.status), tags=sdkutil.effective_tags(_tag_map(image.tags),
                                                                                 image.description),
                    created=image.creation_time or "", snapshot_ids=tuple(d.snapshot_id for d in disks
                                                                          if d.snapshot_id))


def task_failure(attribute: Any) -> str:
    """DescribeTaskAttribute's OperationProgressSet as one reason: "ErrorCode: ErrorMsg" of each failed step."""
    steps = attribute.operation_progress_set.operation_progress if attribute.operation_progress_set and \
        attribute.operation_progress_set.operation_progress else []
    return "; ".join(": ".join(part for part in (step.error_code, step.error_msg) if part)
                     for step in steps if step.error_code or step.error_msg)


# -- errors -------------------------------------------------------------------------------------------------------

CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "IncompleteSignature", "InvalidTimeStamp",
                    "SignatureNonceUsed", "InvalidSecurityToken", "MissingSecurityToken")


def _inspect(exc: BaseException) -> sdkutil.SdkFailure | None:
    if isinstance(exc, AlibabaCloudException):
        code = str(exc.code or exc.status_code or "Unknown")
        message = str((exc.data or {}).get("Message") or exc.message or "")
        return sdkutil.SdkFailure(code=code, message=message,
                                  credentials=any(code == c or code.startswith(c + ".") for c in CREDENTIAL_CODES),
                                  not_found=code.endswith(".NotFound") or code == "EntityNotExist.Role")
    if isinstance(exc, UnretryableException):
        inner = getattr(exc, "inner_exception", None)
        return sdkutil.SdkFailure(code=type(inner or exc).__name__, message=str(inner or exc))
    return None


def _transient(exc: BaseException) -> bool | None:
    """Throttling (Throttling, Throttling.User...), 5xx and connections that failed are worth retrying."""
    if isinstance(exc, AlibabaCloudException):
        code = str(exc.code or "")
        return code.startswith("Throttling") or code == "ServiceUnavailable" or (exc.status_code or 0) >= 500
    if isinstance(exc, UnretryableException):
        return True
    return None


retry.register_classifier(_transient)

SENTENCES = {
    "NoSetRoletoECSServiceAccount": ROLE_HINT,
    "InvalidOSSObject.NotFound": "ECS cannot read the uploaded object; check that the bucket is in the import region",
    "QuotaExceed.Image": "the region's custom image quota is used up; delete old images (eulerpub prune) or ask "
                         "Alibaba Cloud for a higher quota",
    "InvalidImageName.Duplicated": "an image of this name exists in the region; pass another --name",
}

ERRORS = sdkutil.ErrorMapper(CLOUD, (AlibabaCloudException, UnretryableException), _inspect,
                             f"{KEY_ID} and {KEY_SECRET} (or the credentials file Alibaba's chain reads)", SENTENCES)


def _quiet_sdk_log() -> None:
    """alibabacloud-credentials gives its logger ("credentials") a stderr handler of its own at INFO when imported:
    a short-lived token would print "stale time is in the past" twice per refresh beside eulerpub's output. Its
    records go through eulerpub's handler only, and only with --debug (they say when, never a key)."""
    sdk_log = logging.getLogger("credentials")
    sdk_log.handlers.clear()
    sdk_log.setLevel(logging.WARNING if logging.getLogger().level <= logging.DEBUG else logging.ERROR)


def _credentials() -> CredentialClient:
    """Alibaba's default chain; CredentialsError naming what to set when it finds nothing. alibabacloud-credentials
    reads its environment variables once, when imported (`utils.auth_util`): reloading that module makes the chain
    read the environment as it is now, as every other adapter does."""
    importlib.reload(auth_util)
    _quiet_sdk_log()
    client = CredentialClient()
    try:
        client.get_credential()
    except CredentialException:
        missing = [name for name in (KEY_ID, KEY_SECRET) if sdkutil.env(name) is None]
        raise CredentialsError(f"no {CLOUD} credentials: set {' and '.join(missing) or KEY_SECRET} in the "
                               "environment, or give Alibaba's chain a credentials file, an ECS RAM role or "
                               "OIDC") from None
    return client


def _config(credential: CredentialClient, region: str, override: str | None, default_host: str | None) -> Any:
    config = openapi.Config(credential=credential, region_id=region, connect_timeout=CONNECT_TIMEOUT_MS,
                            read_timeout=READ_TIMEOUT_MS)
    if override:
        config.protocol, config.endpoint = sdkutil.split_url(override)
    elif default_host:
        config.endpoint = default_host
    return config


# -- the adapter --------------------------------------------------------------------------------------------------

class AlibabaAdapter(StagedImportAdapter):
    """ECS custom images imported from OSS."""

    name = CLOUD
    leftover_kinds: tuple[LeftoverKind, ...] = ("snapshot", "object")
    store_endpoint, store_endpoint_variable = OSS_DEFAULT, OSS_ENDPOINT
    _credential: CredentialClient | None = None  # the chain, found on first use (per adapter)

    # -- clients ---------------------------------------------------------------------------------------------

    def _chain(self) -> CredentialClient:
        if self._credential is None:
            self._credential = _credentials()
        return self._credential

    def _make_client(self, region: str) -> EcsClient:
        return EcsClient(_config(self._chain(), region, sdkutil.endpoint_override(ECS_ENDPOINT, region), None))

    def _store_credentials(self) -> boto.CredentialSource:
        """The OSS upload's keys, asked of the chain at every request: the chain refreshes a RAM role's or OIDC's
        STS token before it expires (alibabacloud-credentials' cached supplier), so a long upload keeps going."""
        chain = self._chain()

        def current() -> tuple[str, str, str | None]:
            try:
                found = chain.get_credential()
            except CredentialException:
                raise CredentialsError(f"{CLOUD}'s credential chain stopped answering during the upload; check "
                                       "the RAM role, OIDC token or credentials file it reads") from None
            return found.access_key_id, found.access_key_secret, found.security_token or None

        return current

    def _call(self, region: str, action: str, subject: str | None = None, **fields: Any) -> Any:
        """`action` in `region` with the request's `fields`; `subject` (the resource) names it in errors."""
        request = getattr(models, f"{action}Request")(region_id=region, **fields)
        method = getattr(self._client(region), re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower())
        return ERRORS.call(region, action, method, request, resource_id=subject).body

    # -- checks ----------------------------------------------------------------------------------------------

    def preflight(self, spec: PublishSpec) -> None:
        self._check_offline(spec)
        for region in spec.regions:  # proves the credentials and each region's name
            self._call(region, "DescribeImages", image_owner_alias="self", page_size=1)
        self._staging_area().check_bucket(spec.source_region, spec.bucket or "")
        self._check_import_role(spec.source_region)

    def _check_offline(self, spec: PublishSpec) -> None:
        ecs_architecture(spec.identity.arch)
        ecs_format(spec.image.format)
        tag_list(models.ImportImageRequestTag, spec.all_tags)
        sdkutil.min_disk_gib(spec.image.virtual_size, DISK_GIB_MIN, DISK_GIB_MAX)
        if not NAME_START.match(spec.name) or spec.name.lower().startswith(("aliyun", "acs:")):
            raise UsageError(f"image name {spec.name!r} is not valid on Alibaba Cloud: it must start with a letter "
                             "and not with 'aliyun' or 'acs:'")
        if spec.public:
            raise UsageError("eulerpub does not publish Alibaba Cloud community images; share them with --share "
                             "ACCOUNT_ID")
        if spec.quick_import:
            raise UsageError("--quick-import is Huawei Cloud only")
        if not spec.bucket:
            raise UsageError("publishing to Alibaba Cloud needs an OSS bucket in the source region; pass --bucket")
        for account in spec.share_with:
            if not ACCOUNT_ID.match(account):
                raise UsageError(f"--share {account!r}: an Alibaba Cloud account id is a number")

    def _check_import_role(self, region: str) -> None:
        """RAM GetRole: the role ImportImage reads OSS through exists and trusts ECS. A caller RAM will not
        answer (no ram:GetRole) leaves the check to the import, which names the same fix."""
        client = OpenApiClient(_config(self._chain(), region, sdkutil.endpoint_override(RAM_ENDPOINT, region),
                                       RAM_DEFAULT))
        params = openapi.Params(action="GetRole", version="2015-05-01", protocol="HTTPS", pathname="/",
                                method="POST", auth_type="AK", style="RPC", req_body_type="formData",
                                body_type="json")
        request = openapi.OpenApiRequest(query={"RoleName": IMPORT_ROLE})
        try:
            answer = ERRORS.call(region, "GetRole", client.call_api, params, request, RuntimeOptions())
        except CloudError as exc:
            failure = ERRORS.failure(exc.__cause__) if exc.__cause__ is not None else None
            if failure is not None and failure.code == "EntityNotExist.Role":
                raise UsageError(f"{CLOUD}: the RAM role {IMPORT_ROLE} does not exist; {ROLE_HINT}") from None
            if failure is not None and failure.code.startswith("NoPermission"):
                log.info("%s: RAM role %s not checked (no ram:GetRole for this caller)", CLOUD, IMPORT_ROLE)
                return
            raise
        trust = str(((answer or {}).get("body") or {}).get("Role", {}).get("AssumeRolePolicyDocument") or "")
        if "ecs.aliyuncs.com" not in trust:
            raise UsageError(f"{CLOUD}: the RAM role {IMPORT_ROLE} does not trust ecs.aliyuncs.com; {ROLE_HINT}")

    # -- finding images --------------------------------------------------------------------------------------

    def _raw_images(self, region: str, **query: Any) -> list[Any]:
        """DescribeImages over every page: the account's own images in every state."""
        images: list[Any] = []
        page_number = 1
        while True:
            body = self._call(region, "DescribeImages", image_owner_alias="self", status=ALL_STATES,
                              page_size=PAGE, page_number=page_number, **query)
            page = body.images.image if body.images and body.images.image else []
            images.extend(page)
            if not page or len(images) >= (body.total_count or 0):
                return images
            page_number += 1

    def _describe(self, region: str, **query: Any) -> list[ImageRef]:
        images = [_image_ref(region, image) for image in self._raw_images(region, **query)]
        return sorted(images, key=lambda i: i.created, reverse=True)

    def _this_build(self, region: str, build_id: str) -> list[ImageRef]:
        return self._describe(region, tag=[models.DescribeImagesRequestTag(key=TAG_BUILD_ID, value=build_id)])

    def list_images(self, region: str, *, name: str | None = None, profile: str | None = None) -> list[ImageRef]:
        images = self._describe(region, image_name=name) if name else self._describe(region)
        return sdkutil.select_images(images, name=name, profile=profile)

    def _show(self, region: str, image_id: str) -> ImageRef | None:
        found = self._describe(region, image_id=image_id)
        return found[0] if found else None

    # -- upload and import -----------------------------------------------------------------------------------

    def start_import(self, spec: PublishSpec, upload: Upload, token: str) -> str:
        """ImportImage from the OSS object with `token` as its ClientToken; returns the new image id."""
        region = spec.source_region
        self._remove_failed(region, spec.identity.build_id)
        body = self._call(region, "ImportImage", f"{upload.bucket}/{upload.id}", **self._import_fields(spec, upload),
                          client_token=client_token(token))
        log.info("%s/%s: importing %s/%s as %s (task %s)", CLOUD, region, upload.bucket, upload.id, body.image_id,
                 body.task_id)
        return body.image_id

    def _import_fields(self, spec: PublishSpec, upload: Upload) -> dict[str, Any]:
        identity = spec.identity
        disk = models.ImportImageRequestDiskDeviceMapping(
            format=ecs_format(spec.image.format), ossbucket=upload.bucket, ossobject=upload.id,
            disk_image_size=sdkutil.min_disk_gib(spec.image.virtual_size, DISK_GIB_MIN, DISK_GIB_MAX))
        return {"image_name": spec.name, "description": sdkutil.describe(spec, DESCRIPTION_MAX),
                "architecture": ecs_architecture(identity.arch), "ostype": "linux", "platform": PLATFORM,
                "boot_mode": ecs_boot_mode(identity.arch, spec.boot_mode), "disk_device_mapping": [disk],
                "tag": tag_list(models.ImportImageRequestTag, spec.all_tags)}

    def _image_status(self, region: str, image_id: str) -> JobStatus[ImageRef]:
        found = self._raw_images(region, image_id=image_id)
        if not found:
            return JobStatus("failed", detail=f"image {image_id} no longer exists")
        image = _image_ref(region, found[0])
        if image.state == "available":
            self._tag_snapshots(image)
            return JobStatus("done", 100, result=image)
        if image.state == "failed":
            reason = self._import_failure(region, image_id)
            return JobStatus("failed", detail=f"image {image_id} is CreateFailed: {reason}" if reason else
                             f"image {image_id} is CreateFailed (ECS gives no reason for it; check the image format "
                             "and that the OSS object is readable)")
        return JobStatus("running", percent(found[0].progress), detail=found[0].status or "")

    def _import_failure(self, region: str, image_id: str) -> str:
        """The reason ECS gives for a failed import: its ImportImage task's errors (empty for a copy, which has
        no task, or when ECS will not say)."""
        try:
            tasks = self._call(region, "DescribeTasks", image_id, task_action="ImportImage", resource_ids=[image_id])
            for task in tasks.task_set.task if tasks.task_set and tasks.task_set.task else []:
                reason = task_failure(self._call(region, "DescribeTaskAttribute", task.task_id,
                                                 task_id=task.task_id))
                if reason:
                    return reason
        except CloudError as exc:
            log.info("%s/%s: no reason for the failed import of %s: %s", CLOUD, region, image_id, exc)
        return ""

    def _tag_snapshots(self, image: ImageRef) -> None:
        """Give the image's snapshots its eulerpub tags, so a snapshot left behind is found (and not another's)."""
        tags = dict(list(image.tags.items())[:TAGS_MAX])
        if not image.snapshot_ids or tags.get(TAG_MANAGED_BY) != MANAGED_BY:
            return
        try:
            self._call(image.region, "TagResources", image.image_id, resource_type="snapshot",
                       resource_id=list(image.snapshot_ids), tag=tag_list(models.TagResourcesRequestTag, tags))
        except CloudError as exc:  # the image is made; only prune's orphan search loses sight of its snapshot
            log.warning("%s/%s: the snapshot of %s is not tagged, so prune will not list it if it is left "
                        "behind: %s", CLOUD, image.region, image.image_id, exc)

    def register(self, spec: PublishSpec, imported: Imported) -> ImageRef:
        """The import made the image, tagged at creation: look it up."""
        image = self._show(spec.source_region, imported.image_id or "") if imported.image_id else None
        if image is None:
            raise UsageError("the ECS import finished without an image; re-run to import again")
        return image

    # -- copies ----------------------------------------------------------------------------------------------

    def copy_image(self, spec: PublishSpec, source: ImageRef, region: str, token: str) -> str:
        """CopyImage to one region, tagged at creation, `token` as its ClientToken; returns the copy's id."""
        self._remove_failed(region, spec.identity.build_id)
        body = self._call(spec.source_region, "CopyImage", source.image_id, image_id=source.image_id,
                          destination_region_id=region, destination_image_name=spec.name,
                          destination_description=sdkutil.describe(spec, DESCRIPTION_MAX),
                          tag=tag_list(models.CopyImageRequestTag, spec.all_tags), client_token=client_token(token))
        log.info("%s/%s: copying %s to %s as %s", CLOUD, spec.source_region, source.image_id, region, body.image_id)
        return body.image_id

    # -- sharing and cleanup ---------------------------------------------------------------------------------

    def _shared_with(self, region: str, image_id: str) -> list[str] | None:
        """The accounts the image is shared with; None when the image does not exist."""
        body = ERRORS.call_or_none(region, "DescribeImageSharePermission",
                                   self._client(region).describe_image_share_permission,
                                   models.DescribeImageSharePermissionRequest(region_id=region, image_id=image_id,
                                                                              page_size=100),
                                   resource_id=image_id)
        if body is None:
            return None
        accounts = body.body.accounts.account if body.body.accounts and body.body.accounts.account else []
        return [a.aliyun_id for a in accounts]

    def _modify_share(self, region: str, image_id: str, field: str, accounts: Sequence[str]) -> None:
        for start in range(0, len(accounts), SHARE_BATCH):
            self._call(region, "ModifyImageSharePermission", image_id, image_id=image_id,
                       **{field: list(accounts[start:start + SHARE_BATCH])})

    def share(self, spec: PublishSpec, image: ImageRef, accounts: Sequence[str], public: bool) -> list[str]:
        """ModifyImageSharePermission AddAccount for the accounts not yet shared with (asked first)."""
        wanted = list(dict.fromkeys(accounts))
        if not wanted:
            return []
        present = set(self._shared_with(image.region, image.image_id) or [])
        self._modify_share(image.region, image.image_id, "add_account", [a for a in wanted if a not in present])
        return sorted(wanted)

    def delete_image(self, region: str, image_id: str) -> None:
        """Take back its sharing first (ECS refuses to delete a shared image: ImageUseShared), then DeleteImage,
        then its snapshots (DeleteSnapshot refuses them while the image exists). An image already gone is fine."""
        image = self._show(region, image_id)
        accounts = self._shared_with(region, image_id)
        if accounts is None:
            return
        self._modify_share(region, image_id, "remove_account", accounts)
        ERRORS.call_or_none(region, "DeleteImage", self._client(region).delete_image,
                            models.DeleteImageRequest(region_id=region, image_id=image_id), resource_id=image_id)
        for snapshot_id in image.snapshot_ids if image else ():
            self._delete_snapshot(region, snapshot_id)

    def _delete_snapshot(self, region: str, snapshot_id: str) -> None:
        """DeleteSnapshot (no RegionId: the region's client names it); one already gone is ignored by ECS."""
        ERRORS.call(region, "DeleteSnapshot", self._client(region).delete_snapshot,
                    models.DeleteSnapshotRequest(snapshot_id=snapshot_id), resource_id=snapshot_id)

    def list_leftovers(self, region: str, *, bucket: str | None = None) -> list[Leftover]:
        """eulerpub's snapshots in the region (DescribeSnapshots by the managed-by tag), and its uploads."""
        snapshots: list[Any] = []
        page_number = 1
        while True:
            body = self._call(region, "DescribeSnapshots", None, page_size=PAGE, page_number=page_number,
                              tag=[models.DescribeSnapshotsRequestTag(key=TAG_MANAGED_BY, value=MANAGED_BY)])
            page = body.snapshots.snapshot if body.snapshots and body.snapshots.snapshot else []
            snapshots.extend(page)
            if not page or len(snapshots) >= (body.total_count or 0):
                break
            page_number += 1
        found = [Leftover(kind="snapshot", id=s.snapshot_id, created=s.creation_time or "", tags=_tag_map(s.tags))
                 for s in snapshots]
        return found + super().list_leftovers(region, bucket=bucket)

    def delete_leftover(self, region: str, leftover: Leftover) -> None:
        if leftover.kind == "snapshot":
            self._delete_snapshot(region, leftover.id)
        else:
            super().delete_leftover(region, leftover)
