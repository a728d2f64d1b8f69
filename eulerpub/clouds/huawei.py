"""Huawei Cloud: the disk goes to OBS, IMS turns it into a private image, copies it and shares it.

Credentials come only from the environment: `HUAWEICLOUD_SDK_AK`, `HUAWEICLOUD_SDK_SK`, and the project id
of each region, `HUAWEICLOUD_SDK_PROJECT_ID_{REGION}` (e.g. `..._CN_NORTH_4`) or `HUAWEICLOUD_SDK_PROJECT_ID`
for every region. The project id is always given, so the SDK never asks IAM for it.

Endpoints: IMS is `EULERPUB_HUAWEI_IMS_ENDPOINT` when set (full URL; `{region}` is replaced), else the SDK's own
lookup, which honours `HUAWEICLOUD_SDK_REGION_IMS_{REGION}`. OBS is `https://obs.{region}.myhuaweicloud.com`,
or `EULERPUB_HUAWEI_OBS_ENDPOINT`.

IMS has no client tokens: what makes each create call safe to repeat is the core's `find_image` (by the
build-id tag, which IMS stores at creation, looked up with ListImageByTags) before it, and the job id kept in
the journal.

Tags: IMS's strictest documented rules (API reference "Image Tag Format") allow keys of letters, digits, `_`
and `-` only, so eulerpub's own keys go out as `eulerpub-build-id`, `eulerpub-profile`...; images published
before that carry `eulerpub:build-id` and are still read and found. A private image shared with other
projects is listed as `__imagetype=shared`, so listings ask for both private and shared images.

Cross-region copies need an IAM agency that lets IMS act for the account (`--agency`, `clouds.huawei.agency`);
CopyImageCrossRegion refuses a copy without one. With the account id in `HUAWEICLOUD_SDK_DOMAIN_ID` (the SDK's
own variable) preflight asks IAM (ListAgencies) that the agency exists; IAM is reached through the SDK's lookup,
which honours `HUAWEICLOUD_SDK_REGION_IAM_{REGION}`.

Prune's leftovers are the uploads in OBS only: an image IMS makes from a file keeps no snapshot of the
account's own (no EVS snapshot to list or orphan).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import (
    ConnectionException,
    RequestTimeoutException,
    SdkException,
    ServiceResponseException,
)
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkiam.v3 import IamClient, ListAgenciesRequest
from huaweicloudsdkiam.v3.region.iam_region import IamRegion
from huaweicloudsdkims.v2 import (
    AddImageTagRequest,
    AddImageTagRequestBody,
    BatchAddMembersRequest,
    BatchAddMembersRequestBody,
    BatchDeleteMembersRequest,
    CopyImageCrossRegionRequest,
    CopyImageCrossRegionRequestBody,
    CreateImageRequest,
    CreateImageRequestBody,
    GlanceDeleteImageRequest,
    GlanceDeleteImageRequestBody,
    GlanceListImageMembersRequest,
    GlanceShowImageRequest,
    ImsClient,
    ListImageByTagsRequest,
    ListImageByTagsRequestBody,
    ListImagesRequest,
    ListOsVersionsRequest,
    ResourceTag,
    ShowJobRequest,
    TagKeyValue,
    Tags,
)
from huaweicloudsdkims.v2.region.ims_region import ImsRegion

from eulerpub import bootmodes, retry
from eulerpub.clouds import boto, sdkutil
from eulerpub.clouds.base import (
    TAG_ARCH,
    TAG_BUILD_ID,
    TAG_PROFILE,
    TAG_RELEASE,
    BootMode,
    ImageRef,
    ImageState,
    Imported,
    PercentCallback,
    PublishSpec,
    Upload,
    WaitParams,
)
from eulerpub.clouds.staged import StagedImportAdapter, cloud_arch, map_state
from eulerpub.clouds.wait import JobStatus, wait_for
from eulerpub.errors import CredentialsError, UsageError
from eulerpub.profiles import Arch

log = logging.getLogger(__name__)

CLOUD = "huawei"
AK, SK, PROJECT_ID = "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_PROJECT_ID"
DOMAIN_ID = "HUAWEICLOUD_SDK_DOMAIN_ID"  # the account id: IAM's ListAgencies needs it
IMS_ENDPOINT = "EULERPUB_HUAWEI_IMS_ENDPOINT"
OBS_ENDPOINT = "EULERPUB_HUAWEI_OBS_ENDPOINT"
OBS_DEFAULT = "https://obs.{region}.myhuaweicloud.com"

MIN_DISK_GIB, MAX_DISK_GIB = 40, 1024  # create_image's min_disk range (CreateImageRequestBody.min_disk)
NAME_MAX = 128
NAME_CHARS = re.compile(r"^[0-9A-Za-z_\-. ]+$")  # IMS also allows CJK; eulerpub's names are ASCII
DESCRIPTION_MAX = 1024
FALLBACK_OS_VERSION = "Other Linux(64 bit)"
PROJECT_ID_FORMAT = re.compile(r"^[0-9a-f]{32}$")
LIST_PAGE = 100  # list_images page size; a region holds at most 50 private images by default
LIST_TYPES = ("private", "shared")  # an own image shared with other projects lists as __imagetype=shared
BY_TAGS_PAGE = 1000  # ListImageByTagsRequestBody.limit: at most 1000
# IMS API reference "Image Tag Format" (the strict rules; newer pages allow more): a key is 1-36 letters, digits,
# '_' or '-'; a value is at most 43 of those or '.'.
TAG_KEY, TAG_VALUE = re.compile(r"^[0-9A-Za-z_-]{1,36}$"), re.compile(r"^[0-9A-Za-z_.-]{0,43}$")
# eulerpub's own keys as IMS stores them; images published before the strict keys carry the canonical ones.
WIRE_KEYS = {key: key.replace(":", "-") for key in (TAG_BUILD_ID, TAG_PROFILE, TAG_RELEASE, TAG_ARCH)}
CANONICAL_KEYS = {wire: key for key, wire in WIRE_KEYS.items()}
NORMAL_IMPORT_MAX_GIB = 128  # IMS fast import overview: files over 128 GB need fast import
AGENCY_HINT = ("{what} an IAM agency that lets IMS act for this account: create one in IAM (Agencies > Create "
               "Agency, delegated to the cloud service IMS) and pass --agency NAME or set clouds.huawei.agency")
CONNECT_TIMEOUT, READ_TIMEOUT = 10, 60  # seconds; IMS answers every call in well under a second
# Taking back a share before a delete is a metadata job IMS finishes in seconds: poll often, give up in minutes.
UNSHARE_WAIT = WaitParams(timeout=10 * 60, interval=1.0)

ARCHITECTURES: dict[str, Literal["x86", "arm"]] = {"x86_64": "x86", "aarch64": "arm"}  # create_image architecture
_STATES: dict[str, ImageState] = {"active": "available", "queued": "pending", "saving": "pending",
                                  "killed": "failed", "deleted": "failed"}


# -- pure mappings ------------------------------------------------------------------------------------------------

def ims_architecture(arch: Arch) -> Literal["x86", "arm"]:
    return cloud_arch(ARCHITECTURES, arch, "Huawei Cloud IMS")


def firmware_type(arch: Arch, boot_mode: BootMode | None) -> Literal["bios", "uefi"]:
    """aarch64 boots UEFI only; x86_64 boots BIOS unless UEFI is asked for. IMS has no "UEFI if possible", so
    uefi-preferred means BIOS, which every x86 flavor boots."""
    return bootmodes.huawei_firmware("uefi" if arch == "aarch64" else boot_mode)


def choose_os_version(release: str, arch: Arch, available: Sequence[str]) -> str:
    """IMS's os_version for an openEuler release: e.g. "openEuler 24.03 64bit" for 24.03-LTS-SP1 (an ARM
    variant preferred for aarch64), else "Other Linux(64 bit)"."""
    base = release.split("-", 1)[0]
    pattern = re.compile(rf"^openEuler {re.escape(base)}\b", re.IGNORECASE)
    matches = [v for v in available if pattern.match(v)]
    if not matches:
        return FALLBACK_OS_VERSION
    wants_arm = arch == "aarch64"
    matches.sort(key=lambda v: (("arm" in v.lower()) != wants_arm, "64" not in v, v))
    return matches[0]


def parse_tags(tags: Sequence[str] | None) -> dict[str, str]:
    """IMS lists tags as "key.value" (or "key=value" after its tag upgrade); keys hold no dot and no '='."""
    parsed: dict[str, str] = {}
    for tag in tags or []:
        key, _, value = tag.partition("=") if "=" in tag else tag.partition(".")
        parsed[key] = value
    return parsed


def ims_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """eulerpub's tags as IMS stores them (strict keys); UsageError for a tag IMS's strict rules refuse."""
    wire = {WIRE_KEYS.get(key, key): value for key, value in tags.items()}
    for key, value in wire.items():
        if not TAG_KEY.match(key) or not TAG_VALUE.match(value):
            raise UsageError(f"tag {key}={value} cannot be used on Huawei Cloud: keys are 1-36 letters, digits, "
                             "'_' or '-', values at most 43 of those or '.'")
    return wire


def canonical_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """An image's tags under eulerpub's own key names, whether it was tagged `eulerpub-build-id` (now) or
    `eulerpub:build-id` (before); the strict key wins when an image has both."""
    old = {key: value for key, value in tags.items() if key not in CANONICAL_KEYS}
    return {**old, **{CANONICAL_KEYS[key]: value for key, value in tags.items() if key in CANONICAL_KEYS}}


def build_id_filter(build_id: str) -> list[Tags]:
    """ListImageByTags `tags_any`: the build-id tag under its strict key or the old one."""
    return [Tags(key=key, values=[build_id]) for key in (WIRE_KEYS[TAG_BUILD_ID], TAG_BUILD_ID)]


def image_state(status: str | None) -> ImageState:
    return map_state(_STATES, status)


def job_percent(process_percent: float | None) -> int | None:
    """IMS reports a job's progress as a fraction (0.0-1.0); some jobs report nothing."""
    if process_percent is None:
        return None
    value = float(process_percent)
    return round(value * 100) if value <= 1.0 else round(value)


def share_targets(share_with: Sequence[str], region: str) -> list[str]:
    """Project ids to share with in `region`. A Huawei project belongs to one region, so `--share` takes
    `PROJECT_ID` (every region) or `REGION:PROJECT_ID` (that region only)."""
    targets = []
    for entry in share_with:
        scope, _, project = entry.rpartition(":")
        if scope in ("", region):
            targets.append(project)
    return list(dict.fromkeys(targets))


def project_id_variable(region: str) -> str:
    return f"{PROJECT_ID}_{sdkutil.region_suffix(region)}"


def _image_ref(region: str, image: Any) -> ImageRef:
    description = getattr(image, "description", None)
    return ImageRef(cloud=CLOUD, region=region, image_id=image.id, name=image.name or "",
                    state=image_state(image.status),
                    tags=sdkutil.effective_tags(canonical_tags(parse_tags(image.tags)), description),
                    created=image.created_at or "")


# -- errors -------------------------------------------------------------------------------------------------------

def _inspect(exc: BaseException) -> sdkutil.SdkFailure | None:
    if isinstance(exc, ServiceResponseException):
        status = exc.status_code
        return sdkutil.SdkFailure(code=str(exc.error_code or status), message=str(exc.error_msg or ""),
                                  credentials=status == 401, not_found=status == 404)
    if isinstance(exc, SdkException):
        return sdkutil.SdkFailure(code=type(exc).__name__, message=str(exc.error_msg))
    return None


def _transient(exc: BaseException) -> bool | None:
    """Connection failures, throttling (the SDK reports 429 without its body) and 5xx are worth retrying."""
    if isinstance(exc, (ConnectionException, RequestTimeoutException)):
        return True
    if isinstance(exc, ServiceResponseException):
        return exc.status_code == 429 or exc.status_code >= 500
    return None


retry.register_classifier(_transient)

ERRORS = sdkutil.ErrorMapper(CLOUD, (SdkException,), _inspect,
                             f"{AK}, {SK} and the region's project id ({PROJECT_ID}_<REGION> or {PROJECT_ID})")


def _http_config() -> HttpConfig:
    config = HttpConfig.get_default_config()
    config.timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    config.retry_times = 0  # eulerpub.retry is the one retry policy
    return config


# -- the adapter --------------------------------------------------------------------------------------------------

class HuaweiAdapter(StagedImportAdapter):
    """IMS private images imported from OBS. Clients are made per region on first use."""

    name = CLOUD
    store_endpoint, store_endpoint_variable = OBS_DEFAULT, OBS_ENDPOINT

    def __init__(self) -> None:
        super().__init__()
        self._os_versions: dict[str, list[str]] = {}

    # -- clients ---------------------------------------------------------------------------------------------

    def _keys(self) -> tuple[str, str]:
        ak, sk = sdkutil.require_env(CLOUD, AK, SK)
        return ak, sk

    def _project_id(self, region: str) -> str:
        variable = project_id_variable(region)
        project = sdkutil.env(variable) or sdkutil.env(PROJECT_ID)
        if project is None:
            raise CredentialsError(f"no Huawei Cloud project id for {region}: set {variable} (or {PROJECT_ID} "
                                   "when one project id serves every region)")
        return project

    def _make_client(self, region: str) -> ImsClient:
        ak, sk = self._keys()
        builder = (ImsClient.new_builder().with_http_config(_http_config())
                   .with_credentials(BasicCredentials(ak, sk, self._project_id(region))))
        override = sdkutil.endpoint_override(IMS_ENDPOINT, region)
        if override:
            return builder.with_endpoint(override).build()
        try:
            ims_region = ImsRegion.value_of(region)
        except KeyError:
            raise UsageError(f"{region!r} is not a Huawei Cloud region IMS serves (or set {IMS_ENDPOINT})") from None
        return builder.with_region(ims_region).build()

    def _store_credentials(self) -> boto.StaticCredentials:
        ak, sk = self._keys()
        return boto.StaticCredentials(ak, sk)

    def _call(self, region: str, operation: str, request: Any, resource_id: str | None = None) -> Any:
        method = getattr(self._client(region), operation)
        return ERRORS.call(region, operation, method, request, resource_id=resource_id)

    # -- checks ----------------------------------------------------------------------------------------------

    def preflight(self, spec: PublishSpec) -> None:
        self._check_offline(spec)
        for region in spec.regions:
            self._available_os_versions(region)  # proves credentials, project id and endpoint per region
        self._staging_area().check_bucket(spec.source_region, spec.bucket or "")
        if spec.copy_to and spec.agency:
            self._check_agency(spec.source_region, spec.agency)

    def _check_agency(self, region: str, agency: str) -> None:
        """IAM ListAgencies by name: the agency the copies will name exists. Needs the account id; IAM refusing
        the read (a publishing user often may not read IAM) leaves the check to the first copy."""
        domain = sdkutil.env(DOMAIN_ID)
        if domain is None:
            log.info("%s: agency %r not checked in IAM (set %s to check it)", CLOUD, agency, DOMAIN_ID)
            return
        ak, sk = self._keys()
        try:
            iam_region = IamRegion.value_of(region)
        except KeyError:
            raise UsageError(f"{region!r} is not a Huawei Cloud region IAM serves") from None
        client = (IamClient.new_builder().with_http_config(_http_config())
                  .with_credentials(GlobalCredentials(ak, sk, domain)).with_region(iam_region).build())
        request = ListAgenciesRequest(domain_id=domain, name=agency)
        try:
            found = retry.call(client.list_agencies, request).agencies or []
        except ServiceResponseException as exc:
            if exc.status_code != 403:
                raise ERRORS.translate(exc, region, "list_agencies") from exc
            log.warning("%s: IAM refused to list agencies (%s); agency %r is not checked", CLOUD, exc.error_code,
                        agency)
            return
        except SdkException as exc:
            raise ERRORS.translate(exc, region, "list_agencies") from exc
        if not any(a.name == agency for a in found):
            raise UsageError(AGENCY_HINT.format(what=f"IAM has no agency {agency!r}; copying to other regions needs"))

    def _check_offline(self, spec: PublishSpec) -> None:
        ims_architecture(spec.identity.arch)
        if len(spec.name) > NAME_MAX or not NAME_CHARS.match(spec.name) or spec.name != spec.name.strip():
            raise UsageError(f"image name {spec.name!r} is not valid on Huawei Cloud: at most {NAME_MAX} letters, "
                             "digits, spaces, '_', '-' and '.'")
        if spec.public:
            raise UsageError("Huawei Cloud private images cannot be made public; share them with --share "
                             "PROJECT_ID or REGION:PROJECT_ID")
        if spec.quick_import:
            # IMS fast import docs: RAW needs a bitmap file from qemu-img-hw uploaded beside it; ZVHD2 none.
            raise UsageError("IMS quick import takes ZVHD2, or RAW with a bitmap file made by Huawei's "
                             "qemu-img-hw, and eulerpub produces neither; publish without --quick-import "
                             f"(normal import, images up to {NORMAL_IMPORT_MAX_GIB} GB)")
        if spec.copy_to and not spec.agency:
            raise UsageError(AGENCY_HINT.format(what="copying to " + ", ".join(spec.copy_to) + " needs"))
        if not spec.bucket:
            raise UsageError("publishing to Huawei Cloud needs an OBS bucket; pass --bucket")
        sdkutil.min_disk_gib(spec.image.virtual_size, MIN_DISK_GIB, MAX_DISK_GIB)
        ims_tags(spec.all_tags)
        for region in spec.regions:
            for project in share_targets(spec.share_with, region):
                if not PROJECT_ID_FORMAT.match(project):
                    raise UsageError(f"--share {project!r}: a Huawei Cloud project id is 32 hex characters")

    def _available_os_versions(self, region: str) -> list[str]:
        if region not in self._os_versions:
            platforms = self._call(region, "list_os_versions", ListOsVersionsRequest()).body or []
            self._os_versions[region] = [v.os_version for p in platforms for v in (p.version_list or [])]
        return self._os_versions[region]

    # -- finding images --------------------------------------------------------------------------------------

    def _list(self, region: str, **query: str) -> list[ImageRef]:
        """The project's own images, private and shared (ListImages names them apart); newest first."""
        own = self._project_id(region)
        images: dict[str, ImageRef] = {}
        for imagetype in LIST_TYPES:
            marker: str | None = None
            while True:
                request = ListImagesRequest(imagetype=imagetype, limit=LIST_PAGE, marker=marker, **query)
                page = self._call(region, "list_images", request).images or []
                for image in page:
                    if image.owner == own:  # "shared" also lists images other projects share with this one
                        images.setdefault(image.id, _image_ref(region, image))
                if len(page) < LIST_PAGE:
                    break
                marker = page[-1].id
        return sorted(images.values(), key=lambda i: i.created, reverse=True)

    def _by_tags(self, region: str, tags_any: list[Tags]) -> list[ImageRef]:
        """ListImageByTags (private and shared alike), each hit read in full for its state and creation time."""
        ids: list[str] = []
        while True:
            body = ListImageByTagsRequestBody(action="filter", tags_any=tags_any, limit=str(BY_TAGS_PAGE),
                                              offset=str(len(ids)))
            page = self._call(region, "list_image_by_tags", ListImageByTagsRequest(body=body))
            resources = page.resources or []
            ids.extend(r.resource_id for r in resources)
            if not resources or len(ids) >= (page.total_count or 0):
                break
        found = (self._show_or_none(region, image_id) for image_id in dict.fromkeys(ids))
        return [image for image in found if image is not None]

    def _this_build(self, region: str, build_id: str) -> list[ImageRef]:
        """By the build-id tag; then by the description marker, for a copy whose tags were not carried over."""
        tagged = self._by_tags(region, build_id_filter(build_id))
        return tagged or [i for i in self._list(region) if i.build_id == build_id]

    def list_images(self, region: str, *, name: str | None = None, profile: str | None = None) -> list[ImageRef]:
        images = self._list(region, name=name) if name else self._list(region)
        return sdkutil.select_images(images, name=name, profile=profile)

    def _show(self, region: str, image_id: str) -> ImageRef:
        image = self._call(region, "glance_show_image", GlanceShowImageRequest(image_id=image_id), image_id)
        return _image_ref(region, image)

    def _show_or_none(self, region: str, image_id: str) -> ImageRef | None:
        image = ERRORS.call_or_none(region, "glance_show_image", self._client(region).glance_show_image,
                                    GlanceShowImageRequest(image_id=image_id), resource_id=image_id)
        return _image_ref(region, image) if image is not None else None

    # -- upload and import -----------------------------------------------------------------------------------

    def start_import(self, spec: PublishSpec, upload: Upload, token: str) -> str:
        """create_image from `bucket:object`; returns the IMS job id. IMS takes no client token (`token` is
        unused): the core's find_image by tag just before makes a repeat safe."""
        region = spec.source_region
        self._remove_failed(region, spec.identity.build_id)
        request = CreateImageRequest(body=CreateImageRequestBody(**self._import_fields(spec, upload)))
        job_id = self._call(region, "create_image", request, f"{upload.bucket}:{upload.id}").job_id
        log.info("%s/%s: create_image job %s started for %s:%s", CLOUD, region, job_id, upload.bucket, upload.id)
        return job_id

    def _import_fields(self, spec: PublishSpec, upload: Upload) -> dict[str, Any]:
        identity = spec.identity
        os_version = choose_os_version(identity.release, identity.arch,
                                       self._available_os_versions(spec.source_region))
        return {
            "name": spec.name,
            "image_url": f"{upload.bucket}:{upload.id}",
            "os_version": os_version,
            "min_disk": sdkutil.min_disk_gib(spec.image.virtual_size, MIN_DISK_GIB, MAX_DISK_GIB),
            "type": "ECS",
            "architecture": ims_architecture(identity.arch),
            "hw_firmware_type": firmware_type(identity.arch, spec.boot_mode),
            "image_tags": [TagKeyValue(key=k, value=v) for k, v in ims_tags(spec.all_tags).items()],
            "description": sdkutil.describe(spec, DESCRIPTION_MAX),
        }

    def _job(self, region: str, job_id: str) -> JobStatus[str]:
        job = self._call(region, "show_job", ShowJobRequest(job_id=job_id), job_id)
        entities = job.entities
        image_id = getattr(entities, "image_id", None) if entities else None
        if job.status == "SUCCESS":
            return JobStatus("done", 100, result=image_id or "")
        if job.status == "FAIL":
            reason = job.fail_reason or (entities and getattr(entities, "error", None)) or "no reason given"
            code = f" ({job.error_code})" if job.error_code else ""
            return JobStatus("failed", detail=f"{reason}{code}")
        percent = job_percent(getattr(entities, "process_percent", None)) if entities else None
        return JobStatus("running", percent, detail=job.status or "")

    def _wait_job(self, wait: WaitParams, region: str, job_id: str, what: str, progress: PercentCallback) -> str:
        return wait_for(lambda: self._job(region, job_id), cloud=CLOUD, region=region, what=what,
                        resource_id=job_id, params=wait, progress=progress)

    def wait_import(self, spec: PublishSpec, task_id: str, progress: PercentCallback) -> Imported:
        image_id = self._wait_job(spec.wait, spec.source_region, task_id, "import", progress)
        return Imported(image_id=image_id)

    def register(self, spec: PublishSpec, imported: Imported) -> ImageRef:
        """The import already made the image: check it and make sure it carries every tag."""
        if not imported.image_id:
            raise UsageError("the IMS import finished without an image id; re-run to import again")
        image = self._show(spec.source_region, imported.image_id)
        return self._ensure_tags(spec, image)

    def _ensure_tags(self, spec: PublishSpec, image: ImageRef) -> ImageRef:
        missing = {k: v for k, v in spec.all_tags.items() if image.tags.get(k) != v}
        for key, value in ims_tags(missing).items():
            request = AddImageTagRequest(image_id=image.image_id,
                                         body=AddImageTagRequestBody(tag=ResourceTag(key=key, value=value)))
            self._call(image.region, "add_image_tag", request, image.image_id)
        if not missing:
            return image
        return ImageRef(cloud=image.cloud, region=image.region, image_id=image.image_id, name=image.name,
                        state=image.state, tags={**image.tags, **missing}, created=image.created)

    # -- copies ----------------------------------------------------------------------------------------------

    def copy_image(self, spec: PublishSpec, source: ImageRef, region: str, token: str) -> str:
        """copy_image_cross_region from the source region; the handle is "job:<id>" (the job lives in the source
        region). No client token (`token` is unused): the core's find_image in `region` comes first."""
        self._remove_failed(region, spec.identity.build_id)
        if not spec.agency:
            raise UsageError(AGENCY_HINT.format(what=f"copying to {region} needs"))
        body = CopyImageCrossRegionRequestBody(name=spec.name, region=region, project_name=region,
                                               agency_name=spec.agency,
                                               description=sdkutil.describe(spec, DESCRIPTION_MAX))
        request = CopyImageCrossRegionRequest(image_id=source.image_id, body=body)
        job_id = self._call(spec.source_region, "copy_image_cross_region", request, source.image_id).job_id
        log.info("%s/%s: copy of %s to %s started (job %s)", CLOUD, spec.source_region, source.image_id, region,
                 job_id)
        return f"job:{job_id}"

    def wait_image(self, spec: PublishSpec, region: str, handle: str, progress: PercentCallback) -> ImageRef:
        image_id = handle
        if handle.startswith("job:"):
            image_id = self._wait_job(spec.wait, spec.source_region, handle[4:], f"copy to {region}",
                                     progress)
        return self._ensure_tags(spec, self._wait_image(spec, region, image_id, "image", progress))

    def _image_status(self, region: str, image_id: str) -> JobStatus[ImageRef]:
        image = self._show(region, image_id)
        if image.state == "available":
            return JobStatus("done", 100, result=image)
        if image.state == "failed":
            return JobStatus("failed", detail=f"image {image_id} is killed")
        return JobStatus("running", detail=image.state)

    # -- sharing and cleanup ---------------------------------------------------------------------------------

    def share(self, spec: PublishSpec, image: ImageRef, accounts: Sequence[str], public: bool) -> list[str]:
        """batch_add_members for the projects not yet members (listed first, so a repeat adds nothing)."""
        wanted = share_targets(accounts, image.region)
        if not wanted:
            return []
        members = self._call(image.region, "glance_list_image_members",
                             GlanceListImageMembersRequest(image_id=image.image_id), image.image_id).members or []
        present = {m.member_id for m in members}
        missing = [p for p in wanted if p not in present]
        if missing:
            body = BatchAddMembersRequestBody(images=[image.image_id], projects=missing)
            job_id = self._call(image.region, "batch_add_members", BatchAddMembersRequest(body=body),
                                image.image_id).job_id
            self._wait_job(spec.wait, image.region, job_id, "share", lambda _: None)
        return sorted(wanted)

    def delete_image(self, region: str, image_id: str) -> None:
        """Take the image back from the projects it is shared with (IMS refuses to delete a shared image), then
        delete it. An image already gone is fine."""
        members = ERRORS.call_or_none(region, "glance_list_image_members",
                                      self._client(region).glance_list_image_members,
                                      GlanceListImageMembersRequest(image_id=image_id), resource_id=image_id)
        if members is None:
            return
        projects = [m.member_id for m in members.members or []]
        if projects:
            body = BatchAddMembersRequestBody(images=[image_id], projects=projects)  # the SDK's body for both
            job_id = self._call(region, "batch_delete_members", BatchDeleteMembersRequest(body=body), image_id).job_id
            self._wait_job(UNSHARE_WAIT, region, job_id, "unshare", lambda _: None)
            log.info("%s/%s: image %s is no longer shared with %s", CLOUD, region, image_id, ", ".join(projects))
        request = GlanceDeleteImageRequest(image_id=image_id, body=GlanceDeleteImageRequestBody(delete_backup=False))
        ERRORS.call_or_none(region, "glance_delete_image", self._client(region).glance_delete_image, request,
                            resource_id=image_id)
