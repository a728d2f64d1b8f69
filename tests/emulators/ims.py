"""Offline emulator of Huawei Cloud IMS (Image Management Service) v2 for the unmodified huaweicloudsdkims.

Regions: the SDK derives everything from the endpoint host, so every region gets its own port (one server
thread per region, one shared state). Point a region at the emulator with `emu.sdk_env()` (the SDK's
`HUAWEICLOUD_SDK_REGION_IMS_{REGION}` override, works with `ImsRegion.value_of`) or
`.with_endpoint(emu.endpoints[region])`. Each region has one project id (`emu.projects[region]`); a request
whose X-Project-Id is not that region's project is rejected like a bad credential.

Error shapes, as the SDK parses them into ClientRequestException/ServerResponseException:
  gateway errors  HTTP 401/404/429  {"error_code": "APIGW.0301", "error_msg": ...}
  IMS errors      HTTP 400/404      {"error": {"code": "IMG.0001", "message": ...}}
IMG codes for name (0002/0003), description (0004) and empty body (0007) follow the public IMS error table;
other validation failures use IMG.0001 ("request format invalid") with a precise message.

Every rule this emulator enforces, with its source, and what it leaves out, is listed in
tests/emulators/README.md (the IMS section).
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from .auth import AuthError, verify_sdk_hmac
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


@dataclass(frozen=True)
class OsVersion:
    platform: str
    os_version: str
    os_type: str = "Linux"
    os_bit: int = 64


DEFAULT_OS_VERSIONS = (
    OsVersion("openEuler", "openEuler 20.03 64bit"),
    OsVersion("openEuler", "openEuler 22.03 64bit"),
    OsVersion("openEuler", "openEuler 24.03 64bit"),
    OsVersion("CentOS", "CentOS 7.9 64bit"),
    OsVersion("Ubuntu", "Ubuntu 22.04 server 64bit"),
    OsVersion("Other", "Other Linux(64 bit)"),
)
FALLBACK_OS_VERSION = "Other Linux(64 bit)"


class ImsError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def payload(self) -> dict:
        if self.code.startswith(("APIGW.", "IAM.")):
            return {"error_code": self.code, "error_msg": self.message}
        return {"error": {"code": self.code, "message": self.message}}


def _invalid(message: str) -> ImsError:
    return ImsError(400, "IMG.0001", message)


@dataclass
class Job:
    id: str
    region: str
    project_id: str
    job_type: str
    progress: Progress = field(repr=False)
    on_done: Callable[[bool], None] = field(repr=False)
    image_id: str | None = None
    status: str = "INIT"  # INIT -> RUNNING -> SUCCESS | FAIL
    begin_time: str = field(default_factory=utc_iso)
    end_time: str = ""
    fail_reason: str = ""


@dataclass
class Image:
    id: str
    region: str
    owner: str  # project id
    name: str
    os: OsVersion
    min_disk: int
    architecture: str  # x86 | arm
    firmware: str  # bios | uefi
    image_url: str  # "bucket:object"; "" for a cross-region copy
    job: Job | None = field(default=None, repr=False)
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    members: dict[str, str] = field(default_factory=dict)  # project id -> member status
    agency: str = ""  # a cross-region copy: the agency_name it was made with
    status: str = "queued"  # queued -> saving -> active | killed
    created_at: str = field(default_factory=utc_iso)
    updated_at: str = field(default_factory=utc_iso)

    def wire(self) -> dict:
        """The image as GET /v2/cloudimages and GET /v2/images/{id} return it."""
        image = {
            "id": self.id, "name": self.name, "status": self.status, "owner": self.owner,
            "visibility": "private", "__imagetype": self.imagetype, "__isregistered": "true",
            "__os_version": self.os.os_version, "__platform": self.os.platform, "__os_type": self.os.os_type,
            "__os_bit": str(self.os.os_bit), "min_disk": self.min_disk, "min_ram": 0,
            "disk_format": "zvhd2", "container_format": "bare", "__image_source_type": "uds",
            "hw_firmware_type": self.firmware, "tags": [f"{k}.{v}" for k, v in self.tags.items()],
            "__description": self.description, "protected": False, "virtual_env_type": "FusionCompute",
            "size": 0, "created_at": self.created_at, "updated_at": self.updated_at,
            "self": f"/v2/images/{self.id}", "file": f"/v2/images/{self.id}/file", "schema": "/v2/schemas/image",
        }
        if self.architecture == "arm":
            image["__support_arm"] = "true"
        return image

    @property
    def imagetype(self) -> str:
        """A private image shared with other projects is listed as "shared" (IMS ListImages, __imagetype)."""
        return "shared" if self.members else "private"

    def by_tags(self) -> dict:
        """The image as ListImageByTags returns it (ShowImageByTagsResource)."""
        return {"resource_id": self.id, "resource_name": self.name, "resource_detail": {"status": self.status},
                "tags": [{"key": k, "value": v} for k, v in self.tags.items()]}


@dataclass
class _Ctx:
    region: str
    project: str
    path: dict[str, str]
    query: dict[str, str]
    body: Any


_ROUTES = [  # method, path as the SDK sends it, action (SDK operation name), handler
    ("POST", r"/v2/cloudimages/action", "CreateImage", "_create_image"),
    ("POST", r"/v2/cloudimages/quickimport/action", "ImportImageQuick", "_import_image_quick"),
    ("GET", r"/v1/(?P<project_id>[^/]+)/jobs/(?P<job_id>[^/]+)", "ShowJob", "_show_job"),
    ("GET", r"/v1/cloudimages/job/(?P<job_id>[^/]+)", "ShowJobProgress", "_show_job"),
    ("GET", r"/v2/cloudimages", "ListImages", "_list_images"),
    ("GET", r"/v2/images/(?P<image_id>[^/]+)", "GlanceShowImage", "_glance_show_image"),
    ("DELETE", r"/v2/images/(?P<image_id>[^/]+)", "GlanceDeleteImage", "_glance_delete_image"),
    ("GET", r"/v2/images/(?P<image_id>[^/]+)/members", "GlanceListImageMembers", "_glance_list_image_members"),
    ("POST", r"/v1/cloudimages/(?P<image_id>[^/]+)/cross_region_copy", "CopyImageCrossRegion",
     "_copy_image_cross_region"),
    ("POST", r"/v1/cloudimages/members", "BatchAddMembers", "_batch_add_members"),
    ("DELETE", r"/v1/cloudimages/members", "BatchDeleteMembers", "_batch_delete_members"),
    ("GET", r"/v1/cloudimages/os_version", "ListOsVersions", "_list_os_versions"),
    ("POST", r"/v2/(?P<project_id>[^/]+)/images/(?P<image_id>[^/]+)/tags", "AddImageTag", "_add_image_tag"),
    ("POST", r"/v2/(?P<project_id>[^/]+)/images/resource_instances/action", "ListImageByTags",
     "_list_image_by_tags"),
    ("GET", r"/v3.0/OS-AGENCY/agencies", "ListAgencies", "_list_agencies"),  # IAM, on every region's port
]
_IAM_PREFIX = "/v3.0/"

_NAME_CHARS = re.compile(r"^[0-9A-Za-z\u4e00-\u9fa5_\-. ]+$")
_PROJECT_ID = re.compile(r"^[0-9a-f]{32}$")
# IMS API reference "Image Tag Format" (ims_03_0902), the strict rules: a key is 1-36 letters, digits, '_' or
# '-'; a value is at most 43 of those or '.'. (Newer pages allow more; the emulator holds to these.)
_TAG_KEY, _TAG_VALUE = re.compile(r"^[0-9A-Za-z_-]{1,36}$"), re.compile(r"^[0-9A-Za-z_.-]{0,43}$")
# min_disk per path: CreateImageRequestBody.min_disk "40-1024 GB"; QuickImportImageByFileRequestBody.min_disk
# "1-1024 GB" (quick import, also CreateImage with is_quick_import).
_MIN_DISK = {False: (40, 1024), True: (1, 1024)}
# ListImageByTagsRequestBody: tags/tags_any/not_tags/not_tags_any hold at most 10 keys of at most 10 values;
# Tags: a key is at most 127 characters, a value at most 255; limit 1-1000 (default 10), offset >= 0.
_BY_TAGS_LISTS = ("tags", "tags_any", "not_tags", "not_tags_any")
_BY_TAGS_MATCHES = ("resource_name", "resource_id")
DEFAULT_AGENCIES = ("ims-copy-agency",)


def _pending_status(job: Job, before: str, during: str) -> str:
    return before if job.progress.looks <= 1 else during


class ImsEmulator(Emulator):
    """Huawei IMS v2 on 127.0.0.1, one port per region, shared state.

    `object_exists(bucket, key)` decides whether an OBS object referenced by `image_url` exists; by default
    it checks `emu.objects`, a set of (bucket, key) tuples tests fill in.
    """

    def __init__(self, regions: tuple[str, ...] = ("cn-north-4", "cn-east-3"), ak: str = "EMULATORAK0000000001",
                 sk: str = "emulator-secret-key", projects: dict[str, str] | None = None,
                 object_exists: Callable[[str, str], bool] | None = None,
                 os_versions: tuple[OsVersion, ...] = DEFAULT_OS_VERSIONS, timing: Timing | None = None,
                 max_clock_skew: float = 900, agencies: tuple[str, ...] = DEFAULT_AGENCIES,
                 domain_id: str = hashlib.md5(b"account").hexdigest(), iam_readable: bool = True):
        self.ak, self.sk = ak, sk
        self.projects = projects or {r: hashlib.md5(r.encode()).hexdigest() for r in regions}
        self.objects: set[tuple[str, str]] = set()
        self.object_exists = object_exists or (lambda bucket, key: (bucket, key) in self.objects)
        self.os_versions = {r: list(os_versions) for r in regions}
        self.timing = timing or Timing()
        self.max_clock_skew = max_clock_skew
        self.agencies = set(agencies)  # the IAM agencies (delegated to IMS) the account has created
        self.domain_id = domain_id  # the account id IAM's calls carry (X-Domain-Id)
        self.iam_readable = iam_readable  # False: the caller may not read IAM (ListAgencies answers 403)
        self.faults = Faults()
        self.images: dict[str, Image] = {}
        self.jobs: dict[str, Job] = {}
        self.requests: list[Call] = []
        self.auth_failures: list[str] = []
        self.crashes: list[str] = []
        self._lock = threading.RLock()
        self._servers = {r: ServerThread(partial(self._handle, r), self.crashes) for r in regions}

    # ---- lifecycle and test helpers -------------------------------------------------------------------
    def _threads(self) -> list[ServerThread]:
        return list(self._servers.values())

    @property
    def regions(self) -> list[str]:
        return list(self._servers)

    @property
    def endpoints(self) -> dict[str, str]:
        return {region: server.url for region, server in self._servers.items()}

    @property
    def endpoint(self) -> str:
        """The first region's endpoint."""
        return self.endpoints[self.regions[0]]

    def sdk_env(self) -> dict[str, str]:
        """Environment that makes `ImsRegion.value_of(region)` and `IamRegion.value_of(region)` resolve to this
        emulator."""
        return {f"HUAWEICLOUD_SDK_REGION_{service}_{r.replace('-', '_').upper()}": url
                for r, url in self.endpoints.items() for service in ("IMS", "IAM")}

    def calls(self, action: str) -> list[Call]:
        return [call for call in self.requests if call.action == action]

    def finish_all(self) -> None:
        """Let every pending job finish at its next look (stuck jobs stay stuck)."""
        with self._lock:
            for job in self.jobs.values():
                job.progress.finish()

    # ---- HTTP entry point --------------------------------------------------------------------------------
    def _handle(self, region: str, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id()
        with self._lock:
            try:
                project = self._authenticate(region, request)
                action, handler, path_params = self._route(request)
            except ImsError as error:
                return HttpResponse.json(error.status, error.payload(), {"X-Request-Id": request_id})
            query = dict(parse_qsl(request.raw_query, keep_blank_values=True))
            call = Call(region, action, None, query)
            self.requests.append(call)
            try:
                call.body = _json_body(request)
                self._inject_request_faults(action, region)
                status, payload = handler(_Ctx(region, project, path_params, query, call.body))
            except ImsError as error:
                call.error = error.code
                return HttpResponse.json(error.status, error.payload(), {"X-Request-Id": request_id})
        if payload is None:
            return HttpResponse(status, b"", {"X-Request-Id": request_id})
        return HttpResponse.json(status, payload, {"X-Request-Id": request_id})

    def _authenticate(self, region: str, request: HttpRequest) -> str:
        """The caller's project id (for IAM's global calls, which carry the account's X-Domain-Id: "")."""
        try:
            verify_sdk_hmac(request, lambda ak: self.sk if ak == self.ak else None, self.max_clock_skew)
            if request.path.startswith(_IAM_PREFIX):
                domain = request.header("X-Domain-Id")
                if domain != self.domain_id:
                    raise AuthError("domain", f"X-Domain-Id {domain!r} is not this account's")
                return ""
            project = request.header("X-Project-Id")
            if project != self.projects[region]:
                raise AuthError("project", f"X-Project-Id {project!r} is not a project of region {region}")
        except AuthError as error:
            self.auth_failures.append(f"{region}: {error.message}")
            raise ImsError(401, "APIGW.0301", f"Incorrect IAM authentication information: {error.message}") from None
        return project

    def _route(self, request: HttpRequest) -> tuple[str, Callable, dict[str, str]]:
        for method, pattern, action, handler in _ROUTES:
            match = re.fullmatch(pattern, request.path)
            if method == request.method and match:
                return action, getattr(self, handler), match.groupdict()
        raise ImsError(404, "APIGW.0101", "The API does not exist or has not been published in the environment")

    def _inject_request_faults(self, action: str, region: str) -> None:
        fault = self.faults.take((THROTTLE, SERVER_ERROR), action, region)
        if fault is None:
            return
        if fault.kind == THROTTLE:
            raise ImsError(429, "APIGW.0308", "The throttling threshold has been reached: policy user over ratelimit")
        raise ImsError(500, "EMU.0500", f"injected server error: {fault.reason}")

    # ---- jobs and state ----------------------------------------------------------------------------------
    def _new_job(self, ctx: _Ctx, action: str, job_type: str, on_done: Callable[[bool], None],
                 fault_region: str | None = None) -> Job:
        fault = self.faults.take((FAIL, STUCK), action, fault_region or ctx.region)
        job = Job(uuid.uuid4().hex, ctx.region, ctx.project, job_type, Progress(self.timing, fault), on_done)
        self.jobs[job.id] = job
        return job

    def _look(self, job: Job) -> None:
        """The client looked at the job or its image: advance it, and settle it once it is done."""
        job.progress.look()
        if job.status in ("SUCCESS", "FAIL"):
            return
        if not job.progress.done:
            job.status = _pending_status(job, "INIT", "RUNNING")
            return
        ok = job.progress.fail_reason is None
        job.status, job.end_time = ("SUCCESS" if ok else "FAIL"), utc_iso()
        job.fail_reason = "" if ok else job.progress.fail_reason
        job.on_done(ok)

    def _look_image(self, image: Image) -> None:
        if image.job is None:
            return
        self._look(image.job)
        if image.status in ("queued", "saving"):
            image.status = _pending_status(image.job, "queued", "saving")

    def _finish_image(self, image: Image, ok: bool) -> None:
        image.status = "active" if ok else "killed"
        image.updated_at = utc_iso()

    def _own_image(self, ctx: _Ctx, image_id: str) -> Image:
        image = self.images.get(image_id)
        if image is None or image.region != ctx.region or image.owner != ctx.project:
            raise ImsError(404, "IMG.0001", f"image {image_id} does not exist")
        return image

    # ---- validation --------------------------------------------------------------------------------------
    def _check_name(self, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise _invalid("name is required")
        if len(name) > 128:
            raise ImsError(400, "IMG.0002", "The image name contains more than 128 characters.")
        if not _NAME_CHARS.match(name) or name != name.strip():
            raise ImsError(400, "IMG.0003", "The image name format is invalid.")
        return name

    def _check_os_version(self, region: str, os_version: Any) -> OsVersion:
        for known in self.os_versions[region]:
            if known.os_version == os_version:
                return known
        raise _invalid(f"os_version {os_version!r} is not supported in {region}; see ListOsVersions")

    def _check_file_import(self, ctx: _Ctx, quick: bool) -> Image:
        body = ctx.body
        if not body:
            raise ImsError(400, "IMG.0007", "The request body is empty.")
        if not quick and (body.get("instance_id") or body.get("volume_id") or body.get("data_images")):
            raise _invalid("the emulator only creates images from an OBS image_url")
        name = self._check_name(body.get("name"))
        description = body.get("description") or ""
        if len(description) > 1024:
            raise ImsError(400, "IMG.0004", "The description contains more than 1024 characters.")
        min_disk = body.get("min_disk")
        low, high = _MIN_DISK[quick]
        if not isinstance(min_disk, int) or isinstance(min_disk, bool) or not low <= min_disk <= high:
            raise _invalid(f"min_disk {min_disk!r} is invalid: it must be an integer from {low} to {high} (GB)")
        architecture = body.get("architecture") or "x86"
        if architecture not in ("x86", "arm"):
            raise _invalid(f"architecture {architecture!r} is invalid: use x86 or arm")
        firmware = body.get("hw_firmware_type") or "bios"
        if firmware not in ("bios", "uefi"):
            raise _invalid(f"hw_firmware_type {firmware!r} is invalid: use bios or uefi")
        if quick and not body.get("os_version"):
            raise _invalid("os_version is required for a quick import")
        os_version = self._check_os_version(ctx.region, body.get("os_version") or FALLBACK_OS_VERSION)
        image_url = body.get("image_url")
        bucket, _, key = (image_url or "").partition(":")
        if not bucket or not key:
            raise _invalid(f"image_url {image_url!r} is invalid: use bucket:object")
        if not self.object_exists(bucket, key):
            raise _invalid(f"The image file {key} does not exist in OBS bucket {bucket}")
        if quick and not key.lower().endswith(".zvhd2"):
            # IMS "fast import" docs: only RAW and ZVHD2 are fast-imported, and a RAW file needs its bitmap file
            # (qemu-img-hw createbitmap) uploaded with it. The emulator models no bitmap files: it takes ZVHD2.
            raise _invalid(f"quick import of {key}: only ZVHD2, or RAW with its bitmap file, can be fast-imported")
        if body.get("image_tags") and body.get("tags"):
            raise _invalid("tags and image_tags cannot be used together")  # CreateImageRequestBody.tags
        tags = {t.get("key"): t.get("value", "") for t in body.get("image_tags") or []}
        for tag in body.get("tags") or []:  # the older "key.value" string form
            key, _, value = tag.partition(".")
            tags[key] = value
        _check_tags(tags)
        return Image(str(uuid.uuid4()), ctx.region, ctx.project, name, os_version, min_disk,
                     architecture, firmware, image_url, description=description, tags=tags)

    # ---- operations --------------------------------------------------------------------------------------
    def _start_file_import(self, ctx: _Ctx, action: str, quick: bool) -> tuple[int, dict]:
        image = self._check_file_import(ctx, quick)
        image.job = self._new_job(ctx, action, "createImageByFile" if not quick else "quickImportImage",
                                  partial(self._finish_image, image))
        image.job.image_id = image.id
        self.images[image.id] = image
        return 200, {"job_id": image.job.id}

    def _create_image(self, ctx: _Ctx) -> tuple[int, dict]:
        return self._start_file_import(ctx, "CreateImage", quick=bool(ctx.body and ctx.body.get("is_quick_import")))

    def _import_image_quick(self, ctx: _Ctx) -> tuple[int, dict]:
        return self._start_file_import(ctx, "ImportImageQuick", quick=True)

    def _show_job(self, ctx: _Ctx) -> tuple[int, dict]:
        job = self.jobs.get(ctx.path["job_id"])
        if job is None or job.region != ctx.region or ctx.path.get("project_id", ctx.project) != ctx.project:
            raise ImsError(404, "IMG.0001", f"job {ctx.path['job_id']} does not exist")
        self._look(job)
        image = self.images.get(job.image_id or "")
        entities: dict[str, Any] = {"process_percent": 1.0 if job.status == "SUCCESS" else 0.0}
        if job.image_id:
            entities["image_id"] = job.image_id
        if image is not None:
            entities["image_name"] = image.name
        return 200, {"status": job.status, "job_id": job.id, "job_type": job.job_type,
                     "begin_time": job.begin_time, "end_time": job.end_time, "entities": entities,
                     "error_code": "EMU.0001" if job.status == "FAIL" else None, "fail_reason": job.fail_reason or None}

    def _list_images(self, ctx: _Ctx) -> tuple[int, dict]:
        query = ctx.query
        imagetype = query.get("__imagetype")
        if imagetype not in (None, "private", "shared"):  # no public (gold) or market images here
            return 200, {"images": []}
        found = []
        for image in self.images.values():
            if image.region != ctx.region or image.owner != ctx.project:
                continue
            if imagetype is not None and image.imagetype != imagetype:  # shared with others: "shared" only
                continue
            self._look_image(image)
            wire = image.wire()
            plain = ("name", "status", "id", "owner", "min_disk", "__os_type", "__platform", "visibility")
            if any(key in query and str(wire.get(key)) != query[key] for key in plain):
                continue
            # After IMS's tag upgrade the tag filter is "key=value" (ListImagesRequest.tag); "key.value" finds nothing.
            key, sep, value = query.get("tag", "").partition("=")
            if "tag" in query and (not sep or image.tags.get(key) != value):
                continue
            if "architecture" in query and query["architecture"] != image.architecture:
                continue
            found.append(wire)
        found.reverse()  # newest first, like sort_key=created_at sort_dir=desc
        if "marker" in query:
            ids = [image["id"] for image in found]
            found = found[ids.index(query["marker"]) + 1:] if query["marker"] in ids else []
        limit = query.get("limit", "500")
        if not limit.isdigit():
            raise _invalid(f"limit {limit!r} is not a positive integer")
        return 200, {"images": found[:int(limit)]}

    def _glance_show_image(self, ctx: _Ctx) -> tuple[int, dict]:
        image = self._own_image(ctx, ctx.path["image_id"])
        self._look_image(image)
        return 200, image.wire()

    def _glance_delete_image(self, ctx: _Ctx) -> tuple[int, None]:
        image = self._own_image(ctx, ctx.path["image_id"])
        self._look_image(image)
        if image.status in ("queued", "saving"):
            raise _invalid(f"image {image.id} is {image.status} and cannot be deleted yet")
        if image.members:
            raise _invalid(f"image {image.id} is shared with {sorted(image.members)}; remove the members first")
        del self.images[image.id]
        return 204, None

    def _glance_list_image_members(self, ctx: _Ctx) -> tuple[int, dict]:
        image = self._own_image(ctx, ctx.path["image_id"])
        members = [{"member_id": project, "image_id": image.id, "status": status, "created_at": image.updated_at,
                    "updated_at": image.updated_at, "schema": "/v2/schemas/member"}
                   for project, status in image.members.items()]
        return 200, {"members": members, "schema": "/v2/schemas/members"}

    def _copy_image_cross_region(self, ctx: _Ctx) -> tuple[int, dict]:
        source = self._own_image(ctx, ctx.path["image_id"])
        self._look_image(source)
        body = ctx.body or {}
        name = self._check_name(body.get("name"))
        destination = body.get("region")
        if destination not in self.projects or destination == ctx.region:
            raise _invalid(f"region {destination!r} is not a valid destination region for {ctx.region}")
        if body.get("project_name") != destination:
            raise _invalid(f"project_name {body.get('project_name')!r} is not a project of region {destination}")
        # IMS API reference "跨Region复制镜像" (CopyImageCrossRegionRequestBody.agency_name): mandatory, the name of
        # an IAM agency that lets IMS act for the account. An agency the account lacks is refused here too (the
        # real service's reaction to one is not documented).
        agency = body.get("agency_name")
        if not agency:
            raise _invalid("agency_name is mandatory: name the IAM agency that lets IMS copy images across regions")
        if agency not in self.agencies:
            raise _invalid(f"agency {agency!r} does not exist or is not delegated to IMS")
        if source.status != "active":
            raise _invalid(f"image {source.id} is {source.status}; only active images can be copied")
        copy = Image(str(uuid.uuid4()), destination, self.projects[destination], name, source.os, source.min_disk,
                     source.architecture, source.firmware, "", description=body.get("description") or "",
                     tags=dict(source.tags), agency=agency)
        copy.job = self._new_job(ctx, "CopyImageCrossRegion", "copyImageCrossRegion",
                                 partial(self._finish_image, copy), fault_region=destination)
        copy.job.image_id = copy.id
        self.images[copy.id] = copy
        return 200, {"job_id": copy.job.id}

    def _member_request(self, ctx: _Ctx) -> tuple[list[Image], list[str]]:
        """The images and projects of a BatchAddMembers/BatchDeleteMembers body (the SDK sends the same body)."""
        body = ctx.body or {}
        if body.get("domains") or body.get("organizations"):
            raise _invalid("the emulator only shares with projects")
        image_ids, projects = body.get("images") or [], body.get("projects") or []
        if not image_ids or not projects:
            raise _invalid("images and projects must be non-empty lists")
        images = [self._own_image(ctx, image_id) for image_id in image_ids]
        for project in projects:
            if not _PROJECT_ID.match(project) or project == ctx.project:
                raise _invalid(f"project {project!r} is not a valid project id to share with")
        return images, projects

    def _batch_add_members(self, ctx: _Ctx) -> tuple[int, dict]:
        images, projects = self._member_request(ctx)
        for image in images:
            self._look_image(image)
            if image.status != "active":
                raise _invalid(f"image {image.id} is {image.status}; only active images can be shared")

        def add_members(ok: bool) -> None:
            for image in images if ok else []:
                image.members.update({project: "pending" for project in projects})

        job = self._new_job(ctx, "BatchAddMembers", "batchAddMembers", add_members)
        return 200, {"job_id": job.id}

    def _batch_delete_members(self, ctx: _Ctx) -> tuple[int, dict]:
        images, projects = self._member_request(ctx)

        def delete_members(ok: bool) -> None:
            for image in images if ok else []:
                for project in projects:
                    image.members.pop(project, None)

        job = self._new_job(ctx, "BatchDeleteMembers", "batchDeleteMembers", delete_members)
        return 200, {"job_id": job.id}

    def _list_os_versions(self, ctx: _Ctx) -> tuple[int, list]:
        platforms: dict[str, list[dict]] = {}
        for os in self.os_versions[ctx.region]:
            platforms.setdefault(os.platform, []).append({
                "platform": os.platform, "os_version_key": os.os_version.replace(" ", "_"),
                "os_version": os.os_version, "os_bit": os.os_bit, "os_type": os.os_type})
        return 200, [{"platform": p, "version_list": versions} for p, versions in platforms.items()]

    def _add_image_tag(self, ctx: _Ctx) -> tuple[int, None]:
        if ctx.path["project_id"] != ctx.project:
            raise _invalid("project_id in the path does not match the credentials")
        image = self._own_image(ctx, ctx.path["image_id"])
        tag = (ctx.body or {}).get("tag") or {}
        if not tag.get("key"):
            raise _invalid("tag.key is required")
        _check_tags({tag["key"]: tag.get("value", "")})
        image.tags[tag["key"]] = tag.get("value", "")
        return 204, None

    def _list_agencies(self, ctx: _Ctx) -> tuple[int, dict]:
        """IAM ListAgencies (GET /v3.0/OS-AGENCY/agencies, huaweicloudsdkiam ListAgenciesRequest): `domain_id`
        is required and must be the caller's account; `name` filters; agencies here are delegated to IMS."""
        if not self.iam_readable:
            raise ImsError(403, "IAM.0003", "Policy doesn't allow iam:agencies:listAgencies to be performed.")
        if ctx.query.get("domain_id") != self.domain_id:
            raise ImsError(403, "IAM.0003", "domain_id is required and must be the caller's account")
        name = ctx.query.get("name")
        agencies = [{"id": hashlib.md5(a.encode()).hexdigest(), "name": a, "domain_id": self.domain_id,
                     "trust_domain_id": "op_svc_ims_id", "trust_domain_name": "op_svc_ims", "duration": "FOREVER",
                     "description": "", "create_time": "2020-01-01T00:00:00.000000"}
                    for a in sorted(self.agencies) if name in (None, a)]
        return 200, {"agencies": agencies}

    def _list_image_by_tags(self, ctx: _Ctx) -> tuple[int, dict]:
        """ListImageByTags (POST /v2/{project_id}/images/resource_instances/action, ListImageByTagsRequestBody):
        the project's own images in the region, private and shared alike, filtered by tags."""
        if ctx.path["project_id"] != ctx.project:
            raise _invalid("project_id in the path does not match the credentials")
        body = ctx.body or {}
        action = body.get("action")
        if action not in ("filter", "count"):
            raise _invalid(f"action {action!r} is invalid: use filter or count")
        filters = {name: _tag_filter(name, body[name]) for name in _BY_TAGS_LISTS if name in body}
        matches = body.get("matches") or []
        for match in matches:
            if match.get("key") not in _BY_TAGS_MATCHES:
                raise _invalid(f"matches key {match.get('key')!r} is invalid: use resource_name or resource_id")
        limit, offset = _count(body, "limit", 10, 1, 1000), _count(body, "offset", 0, 0, None)
        found = []
        for image in self.images.values():
            if image.region != ctx.region or image.owner != ctx.project:
                continue
            self._look_image(image)
            if body.get("without_any_tag"):
                if image.tags:
                    continue
            elif not _tags_match(image.tags, filters):
                continue
            field_of = {"resource_name": image.name, "resource_id": image.id}
            if any(m.get("value", "") not in field_of[m["key"]] for m in matches):  # a fuzzy (substring) match
                continue
            found.append(image)
        if action == "count":
            return 200, {"total_count": len(found)}
        return 200, {"resources": [i.by_tags() for i in found[offset:offset + limit]], "total_count": len(found)}


def _check_tags(tags: dict[str, str]) -> None:
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.match(key):
            raise _invalid(f"tag key {key!r} is invalid: 1-36 letters, digits, '_' or '-'")
        if not isinstance(value, str) or not _TAG_VALUE.match(value):
            raise _invalid(f"tag value {value!r} of {key} is invalid: at most 43 letters, digits, '_', '-' or '.'")


def _tag_filter(name: str, entries: Any) -> dict[str, list[str]]:
    """One of ListImageByTagsRequestBody's tag lists as {key: values}, checked against the SDK model's limits."""
    if not isinstance(entries, list) or not entries:
        raise _invalid(f"{name} must be a non-empty list of {{key, values}}")
    if len(entries) > 10:
        raise _invalid(f"{name} holds {len(entries)} keys; at most 10")
    parsed: dict[str, list[str]] = {}
    for entry in entries:
        key, values = entry.get("key"), entry.get("values", [])
        if not isinstance(key, str) or not 1 <= len(key) <= 127 or key in parsed:
            raise _invalid(f"{name}: key {key!r} is empty, longer than 127 characters or repeated")
        if not isinstance(values, list) or len(values) > 10 or len(set(values)) != len(values) \
                or any(not isinstance(v, str) or len(v) > 255 for v in values):
            raise _invalid(f"{name}: values of {key} must be at most 10 distinct strings of at most 255 characters")
        parsed[key] = values
    return parsed


def _has(tags: dict[str, str], key: str, values: list[str]) -> bool:
    """The image carries the tag `key` with one of `values` (any value when `values` is empty)."""
    return key in tags and (not values or tags[key] in values)


def _tags_match(tags: dict[str, str], filters: dict[str, dict[str, list[str]]]) -> bool:
    checks = {"tags": lambda f: all(_has(tags, k, v) for k, v in f.items()),
              "tags_any": lambda f: any(_has(tags, k, v) for k, v in f.items()),
              "not_tags": lambda f: not all(_has(tags, k, v) for k, v in f.items()),
              "not_tags_any": lambda f: not any(_has(tags, k, v) for k, v in f.items())}
    return all(checks[name](wanted) for name, wanted in filters.items())


def _count(body: dict, name: str, default: int, low: int, high: int | None) -> int:
    """limit/offset: strings in the SDK model (ListImageByTagsRequestBody), integers accepted too."""
    raw = body.get(name, default)
    text = str(raw)
    if isinstance(raw, bool) or not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        raise _invalid(f"{name} {raw!r} is invalid: an integer from {low}" + (f" to {high}" if high else ""))
    return int(text)


def _json_body(request: HttpRequest) -> Any:
    try:
        return request.json()
    except ValueError:
        raise ImsError(400, "IMG.0001", "The request message format is invalid.") from None
