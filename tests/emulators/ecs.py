"""Offline emulator of Alibaba Cloud ECS API 2014-05-26 (custom image actions) and RAM 2015-05-01 (GetRole) for
the unmodified alibabacloud SDK (alibabacloud-ecs20140526 on alibabacloud-tea-openapi).

One port serves every region: the RPC request's `RegionId` query parameter names it. The SDK sends
`POST /?Action-parameters` signed ACS3-HMAC-SHA256 (tea-openapi `do_request`): the emulator rebuilds the
canonical request from the wire and checks the signature, `x-acs-content-sha256`, `x-acs-date` and that no
`x-acs-signature-nonce` is used twice. Errors are HTTP 4xx/5xx with `{"RequestId", "Code", "Message"}`, which the
SDK raises as ClientException/ServerException. Every rule and its source: tests/emulators/README.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

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
from .sts import STS_PREFIX, StsIssuer

ECS_VERSION, RAM_VERSION = "2014-05-26", "2015-05-01"
IMPORT_ROLE = "AliyunECSImageImportDefaultRole"
ECS_TRUST = json.dumps({"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                       "Principal": {"Service": ["ecs.aliyuncs.com"]}}], "Version": "1"})
# alibabacloud-ecs20140526 7.11.8 models (the "SDK model" of the README's rules):
ARCHITECTURES = ("i386", "x86_64", "arm64")  # ImportImageRequest.Architecture
BOOT_MODES = ("BIOS", "UEFI")  # ImportImageRequest.BootMode
OS_TYPES = ("windows", "linux")  # ImportImageRequest.OSType
FORMATS = ("RAW", "VHD", "QCOW2", "VMDK")  # ImportImageRequestDiskDeviceMapping.Format
PLATFORMS = ("Aliyun", "Anolis", "CentOS", "Ubuntu", "CoreOS", "SUSE", "Debian", "OpenSUSE", "FreeBSD", "RedHat",
             "Kylin", "UOS", "Fedora", "Fedora CoreOS", "CentOS Stream", "AlmaLinux", "Rocky Linux", "Gentoo",
             "Customized Linux", "Others Linux", "Windows Server 2022", "Windows Server 2019",
             "Windows Server 2016", "Windows Server 2012", "Windows Server 2008", "Windows Server 2003",
             "Other Windows")  # ImportImageRequest.Platform
STATES = ("Creating", "Waiting", "Available", "UnAvailable", "CreateFailed")  # DescribeImagesRequest.Status
IMAGE_NAME = re.compile(r"^[A-Za-z\u4e00-\u9fa5][0-9A-Za-z\u4e00-\u9fa5.:_-]{1,127}$")  # ImportImageRequest.ImageName
MAX_SKEW = 15 * 60  # seconds: "InvalidTimeStamp.Expired" beyond 15 minutes (ECS common errors)
GiB = 1024**3
# DeleteSnapshotRequest has no RegionId (SDK model): the regional endpoint names the region, so on the emulator's
# one port the snapshot is found in whichever region holds it.
REGIONLESS = ("DeleteSnapshot",)


class EcsError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _bad(code: str, message: str) -> EcsError:
    return EcsError(400, code, message)


@dataclass
class Image:
    id: str
    region: str
    name: str
    architecture: str
    platform: str
    boot_mode: str
    format: str
    size_gib: int
    oss: tuple[str, str] | None  # (bucket, object) of an import; None for a copy
    progress: Progress | None = field(default=None, repr=False)
    status: str = "Creating"
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    shared_with: dict[str, str] = field(default_factory=dict)  # account id -> SharedTime
    copied_from: str | None = None
    created_at: str = field(default_factory=utc_iso)
    looks: int = 0
    snapshot_id: str | None = None  # the system disk's snapshot, made when the image becomes Available

    def wire(self) -> dict[str, Any]:
        percent = "100%" if self.status == "Available" else f"{min(99, self.looks * 30)}%"
        return {"ImageId": self.id, "ImageName": self.name, "Status": self.status, "Progress": percent,
                "CreationTime": self.created_at, "Description": self.description, "Architecture": self.architecture,
                "Platform": self.platform, "OSType": "linux", "BootMode": self.boot_mode, "Size": self.size_gib,
                "ImageOwnerAlias": "self", "IsCopied": self.copied_from is not None,
                "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in self.tags.items()]},
                "DiskDeviceMappings": {"DiskDeviceMapping": [{"Size": str(self.size_gib), "Format": self.format,
                                                              "Type": "system", "SnapshotId": self.snapshot_id or ""}]}}


@dataclass
class Task:
    """An ImportImage task (DescribeTasks, DescribeTaskAttribute): Processing, then Finished or Failed with the
    failure's ErrorCode and ErrorMsg in its OperationProgressSet."""
    id: str
    region: str
    action: str
    resource_id: str
    status: str = "Processing"
    error_code: str = ""
    error_msg: str = ""
    created_at: str = field(default_factory=utc_iso)
    finished_at: str = ""

    def wire(self) -> dict[str, Any]:
        return {"TaskId": self.id, "TaskAction": self.action, "TaskStatus": self.status, "ResourceId": self.resource_id,
                "CreationTime": self.created_at, "FinishedTime": self.finished_at, "SupportCancel": "false"}


@dataclass
class Snapshot:
    """The snapshot ECS keeps behind an image (DescribeImages' DiskDeviceMapping.SnapshotId). DeleteImage leaves
    it; DeleteSnapshot removes it once no image uses it."""
    id: str
    region: str
    size_gib: int
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_iso)


class EcsEmulator(Emulator):
    """ECS image APIs and RAM GetRole on 127.0.0.1. `object_size(bucket, key)` answers what ImportImage finds in
    OSS (None: no such object); `import_role` (the role's trust policy, or None) is what GetRole answers for
    AliyunECSImageImportDefaultRole and whether ImportImage may read OSS."""

    def __init__(self, regions: tuple[str, ...] = ("cn-hangzhou", "cn-shanghai", "cn-beijing"),
                 access_key_id: str = "LTAIEMULATOR0000000001", access_key_secret: str = "emulator-secret-key",
                 account_id: str = "1000000000000001",
                 object_size: Callable[[str, str], int | None] | None = None, timing: Timing | None = None,
                 import_role: str | None = ECS_TRUST, max_clock_skew: float = MAX_SKEW, sts: StsIssuer | None = None):
        self.regions = list(regions)
        self.access_key_id, self.access_key_secret, self.account_id = access_key_id, access_key_secret, account_id
        self.object_size = object_size or (lambda bucket, key: None)
        self.timing = timing or Timing(polls=2)
        self.import_role = import_role
        self.max_clock_skew = max_clock_skew
        self.sts = sts  # STS credentials it accepts beside its AccessKey pair
        self.faults = Faults()
        self.images: dict[str, Image] = {}
        self.tasks: dict[str, Task] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.tokens: dict[tuple[str, str, str], str] = {}  # (action, region, ClientToken) -> image id
        self.nonces: set[str] = set()
        self.requests: list[Call] = []
        self.auth_failures: list[str] = []
        self.crashes: list[str] = []
        self._lock = threading.RLock()
        self._server = ServerThread(self._handle, self.crashes)
        self._actions: dict[str, Callable[[str, dict[str, str]], dict[str, Any]]] = {
            "ImportImage": self._import_image, "DescribeImages": self._describe_images, "CopyImage": self._copy_image,
            "ModifyImageSharePermission": self._modify_share, "DescribeImageSharePermission": self._describe_share,
            "DeleteImage": self._delete_image, "DescribeTasks": self._describe_tasks,
            "DescribeTaskAttribute": self._describe_task_attribute, "DescribeSnapshots": self._describe_snapshots,
            "DeleteSnapshot": self._delete_snapshot, "TagResources": self._tag_resources,
        }

    # ---- lifecycle and test helpers -------------------------------------------------------------------
    def _threads(self) -> tuple[ServerThread]:
        return (self._server,)

    @property
    def url(self) -> str:
        return self._server.url

    def calls(self, action: str) -> list[Call]:
        return [call for call in self.requests if call.action == action]

    def finish_all(self) -> None:
        with self._lock:
            for image in self.images.values():
                if image.progress is not None:
                    image.progress.finish()

    # ---- HTTP entry point --------------------------------------------------------------------------------
    def _handle(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id()
        with self._lock:
            params = dict(parse_qsl(request.raw_query, keep_blank_values=True))
            action = request.header("x-acs-action") or ""
            try:
                self._authenticate(request, params)
            except EcsError as error:
                return _error(request_id, error)
            region = params.get("RegionId", "")
            call = Call(region, action, params)
            self.requests.append(call)
            try:
                result = self._dispatch(request, action, region, params)
            except EcsError as error:
                call.error = error.code
                return _error(request_id, error)
        return HttpResponse.json(200, {**result, "RequestId": request_id})

    def _dispatch(self, request: HttpRequest, action: str, region: str, params: dict[str, str]) -> dict[str, Any]:
        version = request.header("x-acs-version")
        if action == "GetRole" and version == RAM_VERSION:
            return self._get_role(params)
        if version != ECS_VERSION:
            raise _bad("InvalidVersion", f"Specified parameter Version {version} is not valid.")
        handler = self._actions.get(action)
        if handler is None:
            raise EcsError(404, "InvalidAction.NotFound", f"Specified api {action} is not found.")
        if region not in self.regions and not (action in REGIONLESS and not region):
            raise EcsError(404, "InvalidRegionId.NotFound", f"The specified RegionId {region!r} does not exist.")
        fault = self.faults.take((THROTTLE, SERVER_ERROR), action, region)
        if fault is not None and fault.kind == THROTTLE:
            raise _bad("Throttling.User", "Request was denied due to user flow control.")
        if fault is not None:
            raise EcsError(503, "ServiceUnavailable", f"The request has failed due to a temporary failure of the "
                                                      f"server ({fault.reason}).")
        return handler(region, params)

    def _secret_for(self, access_key: str) -> str | None:
        if access_key == self.access_key_id:
            return self.access_key_secret
        return self.sts.secret_for(access_key) if self.sts is not None else None

    def _authenticate(self, request: HttpRequest, params: dict[str, str]) -> None:
        try:
            access_key, signed = _verify_acs3(request, params, self._secret_for, self.nonces, self.max_clock_skew)
            if self.sts is not None and access_key.startswith(STS_PREFIX):
                _check_sts(request, access_key, signed, self.sts)
        except EcsError as error:
            self.auth_failures.append(error.message)
            raise

    # ---- state helpers -----------------------------------------------------------------------------------
    def _new_image_id(self, prefix: str = "m-") -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            image_id = prefix + "".join(secrets.choice(alphabet) for _ in range(20))
            if image_id not in self.images and image_id not in self.snapshots:
                return image_id

    def _look(self, image: Image) -> None:
        if image.progress is None:
            return
        image.looks += 1
        image.progress.look()
        if not image.progress.done:
            return
        reason, image.progress = image.progress.fail_reason, None
        image.status = "CreateFailed" if reason is not None else "Available"
        if reason is None:
            snapshot = Snapshot(self._new_image_id("s-"), image.region, image.size_gib)
            self.snapshots[snapshot.id] = snapshot
            image.snapshot_id = snapshot.id
        task = next((t for t in self.tasks.values() if t.resource_id == image.id), None)
        if task is not None:
            task.status, task.finished_at = ("Failed" if reason is not None else "Finished"), utc_iso()
            if reason is not None:  # ImportImage's documented failure code (ECS API reference, ImportImage)
                task.error_code, task.error_msg = "ImportImageFailed", reason

    def _own_image(self, region: str, image_id: str | None) -> Image:
        image = self.images.get(image_id or "")
        if image is None or image.region != region:
            raise EcsError(404, "InvalidImageId.NotFound", f"The specified ImageId {image_id!r} does not exist.")
        self._look(image)
        return image

    def _repeat(self, action: str, region: str, params: dict[str, str]) -> Image | None:
        """ClientToken: the same token answers the image the first call made ("How to ensure idempotence")."""
        token = params.get("ClientToken")
        if token is None:
            return None
        if len(token) > 64 or not token.isascii():
            raise _bad("InvalidClientToken.Malformed", "The ClientToken is longer than 64 characters or not ASCII.")
        image_id = self.tokens.get((action, region, token))
        return self.images.get(image_id) if image_id else None

    # ---- actions -----------------------------------------------------------------------------------------
    def _import_image(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        repeated = self._repeat("ImportImage", region, params)
        if repeated is not None:
            task = next(t.id for t in self.tasks.values() if t.resource_id == repeated.id)
            return {"ImageId": repeated.id, "TaskId": task, "RegionId": region}
        name = params.get("ImageName", "")
        _check_name(name)
        description = _check_description(params.get("Description"))
        architecture = params.get("Architecture", "x86_64")
        if architecture not in ARCHITECTURES:
            raise _bad("InvalidArchitecture.Malformed", f"Architecture {architecture!r} is not one of {ARCHITECTURES}.")
        boot_mode = params.get("BootMode") or ("UEFI" if architecture == "arm64" else "BIOS")
        if boot_mode not in BOOT_MODES:
            raise _bad("InvalidBootMode.Malformed", f"BootMode {boot_mode!r} is not one of {BOOT_MODES}.")
        if architecture == "arm64" and boot_mode != "UEFI":
            raise _bad("InvalidBootMode.NotSupported", "An arm64 image boots UEFI only.")
        if params.get("OSType", "linux") not in OS_TYPES:
            raise _bad("InvalidOSType.Malformed", f"OSType {params.get('OSType')!r} is not one of {OS_TYPES}.")
        platform = params.get("Platform", "Others Linux")
        if platform not in PLATFORMS:
            raise _bad("InvalidPlatform.ValueNotSupported", f"Platform {platform!r} is not supported.")
        bucket, key = params.get("DiskDeviceMapping.1.OSSBucket"), params.get("DiskDeviceMapping.1.OSSObject")
        if not bucket or not key:
            raise _bad("MissingParameter", "DiskDeviceMapping.1.OSSBucket and DiskDeviceMapping.1.OSSObject are "
                                           "required.")
        fmt = params.get("DiskDeviceMapping.1.Format", "RAW")
        if fmt not in FORMATS:
            raise _bad("InvalidFormat.Malformed", f"Format {fmt!r} is not one of {FORMATS}.")
        size = int(params.get("DiskDeviceMapping.1.DiskImageSize", "0") or 0)
        if not 1 <= size <= 2048:
            raise _bad("InvalidDiskImageSize.Malformed", "DiskImageSize must be 1 to 2048 GiB.")
        tags = _tags(params)
        if any(i.name == name and i.region == region for i in self.images.values()):
            raise _bad("InvalidImageName.Duplicated", f"The image name {name!r} is already used.")
        if self.import_role is None:
            raise EcsError(403, "NoSetRoletoECSServiceAccount", "The ECS service account has no role to read OSS.")
        if params.get("DryRun") == "true":
            raise _bad("DryRunOperation", "Request validation has been passed with DryRun flag set.")
        object_size = self.object_size(bucket, key)
        if object_size is None:  # ECS API reference, ImportImage error codes (HTTP 400)
            raise _bad("InvalidOSSObject.NotFound", "The specified OSS object does not exist in this region.")
        if object_size > size * GiB:
            raise _bad("InvalidDiskImageSize.TooSmall", "DiskImageSize is smaller than the image file.")
        fault = self.faults.take((FAIL, STUCK), "ImportImage", region)
        image = Image(self._new_image_id(), region, name, architecture, platform, boot_mode, fmt, size,
                      (bucket, key), Progress(self.timing, fault), description=description, tags=tags)
        self.images[image.id] = image
        task = Task(f"t-{image.id[2:]}", region, "ImportImage", image.id)
        self.tasks[task.id] = task
        if "ClientToken" in params:
            self.tokens[("ImportImage", region, params["ClientToken"])] = image.id
        return {"ImageId": image.id, "TaskId": task.id, "RegionId": region}

    def _describe_images(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        page_size, page_number = int(params.get("PageSize", "10")), int(params.get("PageNumber", "1"))
        if not 1 <= page_size <= 100 or page_number < 1:
            raise _bad("InvalidParameter", "PageSize must be 1 to 100 and PageNumber at least 1.")
        wanted = params.get("Status", "Available").split(",")  # DescribeImagesRequest.Status: default Available
        if any(s not in STATES for s in wanted):
            raise _bad("InvalidStatus.ValueNotSupported", f"Status {params.get('Status')!r} is not supported.")
        if params.get("ImageOwnerAlias", "self") not in ("system", "self", "others", "marketplace"):
            raise _bad("InvalidImageOwnerAlias.ValueNotSupported", "ImageOwnerAlias is not supported.")
        tags = _tags(params)
        ids = set(params["ImageId"].split(",")) if params.get("ImageId") else None
        found = []
        for image in reversed(list(self.images.values())):  # newest first
            if image.region != region or (ids is not None and image.id not in ids):
                continue
            if params.get("ImageName") and image.name != params["ImageName"]:
                continue
            if any(image.tags.get(k) != v for k, v in tags.items()):
                continue
            self._look(image)
            if image.status in wanted:
                found.append(image)
        page = found[(page_number - 1) * page_size:page_number * page_size]
        return {"Images": {"Image": [image.wire() for image in page]}, "TotalCount": len(found),
                "PageNumber": page_number, "PageSize": page_size, "RegionId": region}

    def _copy_image(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        repeated = self._repeat("CopyImage", region, params)
        if repeated is not None:
            return {"ImageId": repeated.id}
        source = self._own_image(region, params.get("ImageId"))
        if source.status != "Available":
            raise _bad("IncorrectImageStatus", f"The image {source.id} is {source.status}.")
        destination = params.get("DestinationRegionId", "")
        if destination not in self.regions:
            raise EcsError(404, "InvalidRegionId.NotFound", f"The DestinationRegionId {destination!r} does not "
                                                            "exist.")
        name = params.get("DestinationImageName") or source.name
        _check_name(name)
        description = _check_description(params.get("DestinationDescription")) or source.description
        tags = _tags(params)
        if any(i.name == name and i.region == destination for i in self.images.values()):
            raise _bad("InvalidImageName.Duplicated", f"The image name {name!r} is already used in {destination}.")
        fault = self.faults.take((FAIL, STUCK), "CopyImage", destination)
        copy = Image(self._new_image_id(), destination, name, source.architecture, source.platform, source.boot_mode,
                     source.format, source.size_gib, None, Progress(self.timing, fault), description=description,
                     tags=tags, copied_from=source.id)
        self.images[copy.id] = copy
        if "ClientToken" in params:
            self.tokens[("CopyImage", region, params["ClientToken"])] = copy.id
        return {"ImageId": copy.id}

    def _modify_share(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        image = self._own_image(region, params.get("ImageId"))
        # AddAccount.N / RemoveAccount.N: N from 1 to 10; "the system processes only the first 10".
        add = [v for k, v in sorted(params.items()) if re.fullmatch(r"AddAccount\.([1-9]|10)", k)]
        remove = [v for k, v in sorted(params.items()) if re.fullmatch(r"RemoveAccount\.([1-9]|10)", k)]
        if image.status != "Available":
            raise _bad("IncorrectImageStatus", f"The image {image.id} is {image.status}.")
        for account in add + remove:
            if not re.fullmatch(r"\d{10,20}", account):
                raise _bad("InvalidAccount.NotFound", f"The account {account} does not exist.")
            if account == self.account_id:
                raise _bad("InvalidAccount.Forbidden", "An image cannot be shared with its own account.")
        for account in add:
            image.shared_with.setdefault(account, utc_iso())
        for account in remove:
            image.shared_with.pop(account, None)
        return {}

    def _describe_share(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        image = self._own_image(region, params.get("ImageId"))
        return {"ImageId": image.id, "RegionId": region, "TotalCount": len(image.shared_with),
                "Accounts": {"Account": [{"AliyunId": a, "SharedTime": t} for a, t in image.shared_with.items()]},
                "ShareGroups": {"ShareGroup": []}}

    def _delete_image(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        """ECS API reference, DeleteImage error codes: 403 ImageIsImporting, OperationDenied.ImageCopying,
        ImageUseShared. The image's snapshot stays (DeleteSnapshot: delete the images first, then the snapshot)."""
        image = self._own_image(region, params.get("ImageId"))
        if image.status in ("Creating", "Waiting"):
            if image.copied_from is None:
                raise EcsError(403, "ImageIsImporting", "The specified Image is importing.")
            raise EcsError(403, "OperationDenied.ImageCopying", "The Image is coping.")
        if image.shared_with:
            raise EcsError(403, "ImageUseShared", "The specified image has been shared to others.")
        del self.images[image.id]
        return {}

    def _describe_tasks(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        """DescribeTasks: TaskAction, TaskStatus (Finished, Processing, Failed), TaskIds (comma-separated) and
        ResourceIds filters; PageSize 1-100 (SDK model `DescribeTasksRequest`)."""
        page_size, page_number = int(params.get("PageSize", "10")), int(params.get("PageNumber", "1"))
        if not 1 <= page_size <= 100 or page_number < 1:
            raise _bad("InvalidParameter", "PageSize must be 1 to 100 and PageNumber at least 1.")
        action, status = params.get("TaskAction"), params.get("TaskStatus")
        if action is not None and action not in ("ImportImage", "ExportImage", "RedeployInstance", "ModifyDiskSpec",
                                                 "ArchiveSnapshot"):
            raise _bad("InvalidTaskAction.Malformed", f"TaskAction {action!r} is not supported.")
        ids = set(params["TaskIds"].split(",")) if params.get("TaskIds") else None
        resources = set(_list_param(params, "ResourceIds")) or None
        found = [t for t in reversed(list(self.tasks.values()))
                 if t.region == region and (action is None or t.action == action)
                 and (status is None or t.status == status) and (ids is None or t.id in ids)
                 and (resources is None or t.resource_id in resources)]
        page = found[(page_number - 1) * page_size:page_number * page_size]
        return {"TaskSet": {"Task": [t.wire() for t in page]}, "TotalCount": len(found), "PageNumber": page_number,
                "PageSize": page_size, "RegionId": region}

    def _describe_task_attribute(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        """DescribeTaskAttribute: the task and its OperationProgressSet (ErrorCode, ErrorMsg, OperationStatus;
        SDK model `DescribeTaskAttributeResponseBody`)."""
        task = self.tasks.get(params.get("TaskId", ""))
        if task is None or task.region != region:
            raise EcsError(404, "InvalidTaskId.NotFound", f"The specified TaskId {params.get('TaskId')!r} does not "
                                                          "exist.")
        image = self.images.get(task.resource_id)
        if image is not None:
            self._look(image)
        progress = {"OperationStatus": {"Failed": "Failed", "Finished": "Success"}.get(task.status, "Processing"),
                    "ErrorCode": task.error_code, "ErrorMsg": task.error_msg,
                    "RelatedItemSet": {"RelatedItem": [{"Name": "ImageId", "Value": task.resource_id}]}}
        done = task.status != "Processing"
        return {**task.wire(), "RegionId": region, "TaskProcess": "100%" if done else "50%",
                "TotalCount": 1, "SuccessCount": int(task.status == "Finished"),
                "FailedCount": int(task.status == "Failed"),
                "OperationProgressSet": {"OperationProgress": [progress]}}

    def _snapshot_used(self, snapshot: Snapshot) -> bool:
        return any(image.snapshot_id == snapshot.id for image in self.images.values())

    def _describe_snapshots(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        """DescribeSnapshots: SnapshotIds (a JSON array), Tag.N and Usage filters; PageSize 1-100; each answers
        SnapshotId, CreationTime, Status, Usage (image or none) and Tags (SDK model `DescribeSnapshotsRequest`)."""
        page_size, page_number = int(params.get("PageSize", "10")), int(params.get("PageNumber", "1"))
        if not 1 <= page_size <= 100 or page_number < 1:
            raise _bad("InvalidParameter", "PageSize must be 1 to 100 and PageNumber at least 1.")
        ids = set(json.loads(params["SnapshotIds"])) if params.get("SnapshotIds") else None
        tags, usage = _tags(params), params.get("Usage")
        found = []
        for snapshot in reversed(list(self.snapshots.values())):
            used = "image" if self._snapshot_used(snapshot) else "none"
            if snapshot.region != region or (ids is not None and snapshot.id not in ids):
                continue
            if any(snapshot.tags.get(k) != v for k, v in tags.items()) or usage not in (None, used):
                continue
            found.append({"SnapshotId": snapshot.id, "CreationTime": snapshot.created_at, "Status": "accomplished",
                          "Usage": used, "SourceDiskSize": str(snapshot.size_gib), "SourceDiskType": "system",
                          "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in snapshot.tags.items()]}})
        page = found[(page_number - 1) * page_size:page_number * page_size]
        return {"Snapshots": {"Snapshot": page}, "TotalCount": len(found), "PageNumber": page_number,
                "PageSize": page_size}

    def _delete_snapshot(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        """ECS API reference, DeleteSnapshot: a snapshot that does not exist is ignored; one an image was made
        from is refused (403 SnapshotCreatedImage) until DeleteImage removed the image."""
        snapshot = self.snapshots.get(params.get("SnapshotId") or "")
        if not params.get("SnapshotId"):
            raise _bad("MissingParameter", "The input parameter SnapshotId that is mandatory for processing this "
                                           "request is not supplied.")
        if snapshot is None or region not in ("", snapshot.region):
            return {}
        if self._snapshot_used(snapshot):
            raise EcsError(403, "SnapshotCreatedImage", "The snapshot has been used to create user defined image(s).")
        del self.snapshots[snapshot.id]
        return {}

    def _tag_resources(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        """TagResources for snapshots and images: ResourceId.N 1-50, Tag.N 1-20 (SDK model `TagResourcesRequest`)."""
        kind = params.get("ResourceType")
        if kind not in ("snapshot", "image"):
            raise _bad("InvalidResourceType.NotSupported", f"ResourceType {kind!r} is not supported here.")
        resources, tags = _list_param(params, "ResourceId"), _tags(params)
        if not 1 <= len(resources) <= 50 or not tags:
            raise _bad("MissingParameter", "ResourceId.N (1 to 50) and Tag.N (1 to 20) are required.")
        table: dict[str, Any] = self.snapshots if kind == "snapshot" else self.images
        for resource in resources:
            target = table.get(resource)
            if target is None or target.region != region:
                raise EcsError(404, "InvalidResourceId.NotFound", f"The specified ResourceId {resource} is not found.")
            target.tags.update(tags)
        return {}

    def _get_role(self, params: dict[str, str]) -> dict[str, Any]:
        name = params.get("RoleName", "")
        if name != IMPORT_ROLE or self.import_role is None:
            raise EcsError(404, "EntityNotExist.Role", f"The role not exists: {name}.")
        return {"Role": {"RoleName": name, "Arn": f"acs:ram::{self.account_id}:role/{name.lower()}",
                         "AssumeRolePolicyDocument": self.import_role, "CreateDate": utc_iso()}}


def _list_param(params: dict[str, str], name: str) -> list[str]:
    """An RPC list parameter as the SDK sends it: `Name.1`, `Name.2`... in order."""
    numbered = [(int(m[1]), v) for k, v in params.items() if (m := re.fullmatch(rf"{re.escape(name)}\.(\d+)", k))]
    return [v for _, v in sorted(numbered)]


def _check_name(name: str) -> None:
    if not IMAGE_NAME.match(name) or name.lower().startswith(("aliyun", "acs:")):
        raise _bad("InvalidImageName.Malformed", f"The image name {name!r} is not valid (2-128 characters, "
                                                 "starting with a letter; digits . : _ -; not aliyun or acs:).")


def _check_description(description: str | None) -> str:
    if description is None:
        return ""
    if not 2 <= len(description) <= 256 or description.startswith(("http://", "https://")):
        raise _bad("InvalidDescription.Malformed", "The description must be 2 to 256 characters and not a URL.")
    return description


def _tags(params: dict[str, str]) -> dict[str, str]:
    """Tag.N.Key / Tag.N.Value, N from 1 to 20; keys non-empty, at most 128 characters, not aliyun/acs:."""
    tags: dict[str, str] = {}
    for name, key in params.items():
        match = re.fullmatch(r"Tag\.(\d+)\.Key", name)
        if not match:
            continue
        if not 1 <= int(match[1]) <= 20:
            raise _bad("InvalidTagCount", "At most 20 tags.")
        if not key or len(key) > 128 or key.startswith(("aliyun", "acs:")):
            raise _bad("InvalidTagKey.Malformed", f"The tag key {key!r} is not valid.")
        tags[key] = params.get(f"Tag.{match[1]}.Value", "")
    return tags


def _verify_acs3(request: HttpRequest, query: dict[str, str], secret_for: Callable[[str], str | None],
                 nonces: set[str], max_skew: float) -> tuple[str, list[str]]:
    """ACS3-HMAC-SHA256 (tea-openapi `Utils.get_authorization`): canonical request = METHOD \\n path \\n sorted
    query (values percent-encoded, '~' kept) \\n "name:value\\n" for each signed header \\n signed;headers \\n
    x-acs-content-sha256; signature = hex(HMAC-SHA256(secret, "ACS3-HMAC-SHA256\\n" + sha256hex(canonical))).
    Returns the access key and the signed header names."""
    match = re.fullmatch(r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)",
                         request.header("Authorization") or "")
    if not match:
        raise _bad("IncompleteSignature", "The request signature does not conform to Aliyun standards.")
    access_key, signed, signature = match.groups()
    secret = secret_for(access_key)
    if secret is None:
        raise EcsError(404, "InvalidAccessKeyId.NotFound", f"Specified access key {access_key} is not found.")
    payload = request.header("x-acs-content-sha256") or ""
    if payload != hashlib.sha256(request.body).hexdigest():
        raise _bad("IncompleteSignature", "x-acs-content-sha256 does not match the body.")
    date = request.header("x-acs-date") or ""
    try:
        signed_at = datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise _bad("InvalidTimeStamp.Format", f"x-acs-date {date!r} is not ISO 8601 UTC.") from None
    if abs(time.time() - signed_at) > max_skew:
        raise _bad("InvalidTimeStamp.Expired", f"Specified time stamp {date} is expired.")
    names = signed.split(";")
    if not {"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"} <= set(names):
        raise _bad("IncompleteSignature", "host and the x-acs-* headers must be signed.")
    headers = "".join(f"{name}:{(request.header(name) or '').strip()}\n" for name in names)
    canonical_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(query.items()))
    canonical = "\n".join([request.method, request.path or "/", canonical_query, headers, signed, payload])
    string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    expected = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise _bad("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
    nonce = request.header("x-acs-signature-nonce") or ""
    if not nonce or nonce in nonces:
        raise _bad("SignatureNonceUsed", "Specified signature nonce was used already.")
    nonces.add(nonce)
    return access_key, names


def _check_sts(request: HttpRequest, access_key: str, signed: list[str], sts: StsIssuer) -> None:
    """An STS key's request carries its token in the signed `x-acs-security-token` (tea-openapi sets it, with
    `x-acs-accesskey-id`, before signing every x-acs-* header); tests.emulators.sts says which token passes. The
    codes are the POP gateway's as the SDKs report them (InvalidSecurityToken.*, MissingSecurityToken); the ECS API
    reference does not list them."""
    token = request.header("x-acs-security-token")
    if token and "x-acs-security-token" not in signed:
        raise _bad("IncompleteSignature", "x-acs-security-token must be signed.")
    failure = sts.check(access_key, token)
    if failure == "missing":
        raise _bad("MissingSecurityToken", "SecurityToken is mandatory for this action.")
    if failure == "mismatch":
        raise _bad("InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the "
                                                                 "AccessKey.")
    if failure == "expired":
        raise _bad("InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")


def _error(request_id: str, error: EcsError) -> HttpResponse:
    return HttpResponse.json(error.status, {"RequestId": request_id, "HostId": "ecs.emulator", "Code": error.code,
                                            "Message": error.message})
