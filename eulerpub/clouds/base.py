"""The cloud adapter interface and the small models that cross it.

`eulerpub.publish` drives every cloud through `CloudAdapter` and never imports an SDK; each cloud module
(`aws`, `huawei`, `tencent`) implements the Protocol with its own API calls. Every adapter method is safe to
call again after a crash or on a re-run: its docstring states how it stays idempotent.

The pipeline the publish core runs with these methods, per build:

    source region:  find_image? ─► upload ─► start_import ─► wait_import ─► register ─► share ─► discard_upload
    each copy-to:   find_image? ─► copy_image ─► wait_image ─► share          (in parallel, one thread per region)

and for prune: list_images ─► delete_image, list_leftovers ─► delete_leftover.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from eulerpub.profiles import Arch, Format

# Tag keys put on every resource at creation: they let a re-run find what exists, a lost journal be rebuilt
# from the cloud, and prune find orphans.
TAG_BUILD_ID = "eulerpub:build-id"
TAG_PROFILE = "eulerpub:profile"
TAG_RELEASE = "eulerpub:release"
TAG_ARCH = "eulerpub:arch"
TAG_MANAGED_BY = "managed-by"
MANAGED_BY = "eulerpub"
OBJECT_PREFIX = "eulerpub/"  # every uploaded object's key starts with this (see `PublishSpec.object_key`)

ProgressCallback = Callable[[int], None]
"""`advance(n)`: n more bytes have been sent."""

PercentCallback = Callable[[int], None]
"""`report(p)`: a cloud-side job is now p percent done (0-100), as the cloud says."""

ImageState = Literal["available", "pending", "failed"]
BootMode = Literal["uefi", "legacy-bios", "uefi-preferred"]
UploadMethod = Literal["ebs", "s3"]
LeftoverKind = Literal["snapshot", "object"]

GiB = 1024**3


def whole_gib(nbytes: int) -> int:
    """A size in whole GiB, rounded up and at least 1: how every cloud sizes volumes and images."""
    return max(1, -(-nbytes // GiB))


@dataclass(frozen=True)
class DiskImage:
    """The file to publish, as the build record (or the user) describes it."""

    path: Path
    format: Format
    size: int
    virtual_size: int
    sha256: str


@dataclass(frozen=True)
class BuildIdentity:
    """What the image is: the values every resource is tagged with."""

    build_id: str
    profile: str
    release: str
    arch: Arch

    def tags(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The tags for a resource of this build; `extra` (profile/CLI tags) never overrides eulerpub's own."""
        return {**(extra or {}), TAG_BUILD_ID: self.build_id, TAG_PROFILE: self.profile,
                TAG_RELEASE: self.release, TAG_ARCH: self.arch, TAG_MANAGED_BY: MANAGED_BY}


@dataclass(frozen=True)
class WaitParams:
    """How long to wait for cloud-side jobs. Real imports take 5-60 minutes, so the default is generous."""

    timeout: float = 3 * 60 * 60  # seconds; an import or a cross-region copy of a large image can take hours
    interval: float = 15.0  # seconds between polls; well under every cloud's describe-call rate limit


@dataclass(frozen=True)
class PublishSpec:
    """Everything an adapter needs to know about one publish, fixed before any call is made."""

    cloud: str
    image: DiskImage
    identity: BuildIdentity
    name: str
    source_region: str
    copy_to: tuple[str, ...] = ()
    share_with: tuple[str, ...] = ()
    public: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    upload: UploadMethod | None = None  # AWS only: EBS direct or S3 + VM Import
    bucket: str | None = None
    boot_mode: BootMode | None = None
    keep_object: bool = False
    quick_import: bool = False  # Huawei only: IMS fast import, which the adapter refuses (see huawei.py)
    agency: str | None = None  # Huawei only: the IAM agency IMS copies images across regions with
    wait: WaitParams = field(default_factory=WaitParams)
    description: str = ""

    @property
    def regions(self) -> tuple[str, ...]:
        return (self.source_region, *self.copy_to)

    @property
    def all_tags(self) -> dict[str, str]:
        return self.identity.tags(self.tags)

    @property
    def object_key(self) -> str:
        """Where the upload lives in object storage: one key per build and file, so re-runs find it."""
        return f"{OBJECT_PREFIX}{self.identity.build_id}/{self.image.path.name}"


@dataclass(frozen=True)
class ImageRef:
    """A launchable image (or one being made) in one region."""

    cloud: str
    region: str
    image_id: str
    name: str
    state: ImageState
    snapshot_ids: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def build_id(self) -> str | None:
        return self.tags.get(TAG_BUILD_ID)


@dataclass(frozen=True)
class Leftover:
    """A snapshot or uploaded object in one region that eulerpub may have left behind, as `list_leftovers`
    finds it: prune decides (`eulerpub.release.prune.find_orphans`) whether it is an orphan."""

    kind: LeftoverKind
    id: str  # snapshot id, or object key
    created: str = ""  # ISO 8601, as the cloud reports it
    tags: Mapping[str, str] = field(default_factory=dict)  # eulerpub's tags (an object's, from its metadata)
    bucket: str | None = None  # objects only

    @property
    def build_id(self) -> str | None:
        return self.tags.get(TAG_BUILD_ID)


@dataclass(frozen=True)
class Upload:
    """The disk as it sits in the cloud after `upload`: an object in a bucket, or a snapshot (EBS direct)."""

    kind: Literal["object", "snapshot"]
    id: str  # object key or snapshot id
    bucket: str | None = None
    sent_bytes: int = 0  # bytes this run actually sent (0 when everything was already there)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "bucket": self.bucket, "sent_bytes": self.sent_bytes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Upload:
        return cls(kind=data["kind"], id=data["id"], bucket=data.get("bucket"),
                   sent_bytes=int(data.get("sent_bytes", 0)))


@dataclass(frozen=True)
class Imported:
    """What an import produced: a snapshot still to be registered (AWS) or an image already made (IMS, CVM)."""

    snapshot_id: str | None = None
    image_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "image_id": self.image_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Imported:
        return cls(snapshot_id=data.get("snapshot_id"), image_id=data.get("image_id"))


class Checkpoint:
    """A step's resumable state: a JSON-able dict an adapter updates while it works, and `save()`s.

    The publish core backs it with the region's journal, so whatever an adapter saves (an upload id, the
    parts or blocks done) survives a kill -9 and is handed back on the re-run. Thread safe: uploaders call
    `update` from worker threads.
    """

    def __init__(self, data: dict[str, Any] | None = None,
                 persist: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._data = dict(data or {})
        self._persist = persist
        self._lock = threading.Lock()

    @property
    def data(self) -> dict[str, Any]:
        """A copy of the state; change it with `update` or `clear`."""
        with self._lock:
            return dict(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._data.get(key, default)

    def update(self, save: bool = True, **values: Any) -> None:
        """Merge `values` in and (by default) persist at once; pass save=False to batch."""
        with self._lock:
            self._data.update(values)
            snapshot = dict(self._data)
        if save and self._persist:
            self._persist(snapshot)

    def clear(self) -> None:
        """Forget the state (e.g. an upload that cannot be resumed) and persist that."""
        with self._lock:
            self._data.clear()
        if self._persist:
            self._persist({})

    def save(self) -> None:
        if self._persist:
            self._persist(self.data)


def pick_usable(images: Sequence[ImageRef]) -> ImageRef | None:
    """`CloudAdapter.find_image`'s choice among one build's images in a region: never a failed one; an available
    one before one still being made; the newest of those."""
    usable = [i for i in images if i.state != "failed"]
    return max(usable, key=lambda i: (i.state == "available", i.created), default=None)


@runtime_checkable
class CloudAdapter(Protocol):
    """One cloud's API steps. Implementations raise eulerpub errors only: `CredentialsError` (no usable
    credentials), `UsageError` (bad region, bucket, name...), `CloudError` (a call failed for good, after
    `eulerpub.retry`), `WaitTimeout` (a job is still running; a re-run picks it up)."""

    name: str
    leftover_kinds: tuple[LeftoverKind, ...]  # what `list_leftovers` can find (objects only when given a bucket)

    def preflight(self, spec: PublishSpec) -> None:
        """Check, before anything is created or uploaded: credentials, that every region exists, bucket access,
        import permissions, and (with `spec.public`) the public-image quota and block-public-access state where
        the cloud exposes them. Read-only; raises on the first problem with one sentence saying what to do.
        Name collisions are checked by the core with `list_images` in every target region."""
        ...

    def find_image(self, region: str, build_id: str) -> ImageRef | None:
        """This build's image in `region`, or None. The same meaning for every adapter: among the account's
        images of the region carrying this build id (its `eulerpub:build-id` tag; where a cloud's copies lose
        their tags, the build marker in the description, `sdkutil.build_marker`), never a failed or deleted one;
        an available image before one still being made; the newest of those (`pick_usable`). Read-only: the core
        calls it before every create step, which is what makes a lost journal harmless."""
        ...

    def list_images(self, region: str, *, name: str | None = None, profile: str | None = None) -> list[ImageRef]:
        """Images in `region` owned by this account and tagged `managed-by=eulerpub`, optionally only those with
        exactly `name` or of `profile`; newest first. With `name`, also images WITHOUT eulerpub's tags, so the
        core can report any name collision. Read-only."""
        ...

    def upload(self, spec: PublishSpec, checkpoint: Checkpoint, progress: ProgressCallback) -> Upload:
        """Put `spec.image` into the source region (object storage, or an EBS snapshot). Resumable: state saved
        in `checkpoint` (upload id, parts/blocks done) lets a call after a crash send only what is missing; a
        call after success finds the finished object/snapshot (matching size and sha256) and sends nothing.
        On a permanent failure the adapter removes what cannot be resumed (aborted upload, incomplete
        snapshot) before raising."""
        ...

    def start_import(self, spec: PublishSpec, upload: Upload, token: str) -> str:
        """Start turning the upload into a snapshot or image; return the task id to wait on. Idempotent: the
        request carries `token` (the core derives it from build id, region and attempt; an adapter may hash it
        to the cloud's format) as its client token, or the cloud is asked first, so a repeated call returns the
        same task. Where nothing needs importing (EBS direct) it returns the snapshot id."""
        ...

    def wait_import(self, spec: PublishSpec, task_id: str, progress: PercentCallback) -> Imported:
        """Block until the import task finishes, reporting percent progress; `CloudError` with the cloud's
        reason when it fails, `WaitTimeout` after `spec.wait.timeout`. Read-only, so safe to repeat."""
        ...

    def register(self, spec: PublishSpec, imported: Imported) -> ImageRef:
        """Make the launchable image in the source region named `spec.name`, tagged `spec.all_tags` at creation,
        with the arch and boot mode. Idempotent: if this build's image already exists it is returned instead.
        Where the import already made the image (IMS, CVM) this verifies and tags it."""
        ...

    def copy_image(self, spec: PublishSpec, source: ImageRef, region: str, token: str) -> str:
        """Start copying `source` into `region` (named `spec.name`, tagged `spec.all_tags`); return a handle for
        `wait_image` (the new image id, or the cloud's job id). Idempotent: `token` (from the core: build id,
        region, attempt) is the client token, so a repeated call returns the same copy."""
        ...

    def wait_image(self, spec: PublishSpec, region: str, handle: str, progress: PercentCallback) -> ImageRef:
        """Block until the image behind `handle` (from `copy_image`, or an image id) is available and return it;
        `CloudError` if it failed, `WaitTimeout` after `spec.wait.timeout`. Read-only."""
        ...

    def share(self, spec: PublishSpec, image: ImageRef, accounts: Sequence[str], public: bool) -> list[str]:
        """Let `accounts` (and everyone, with `public`) launch `image`, on the image and its snapshots. Adding a
        permission that exists is a no-op, so this is idempotent. Returns the grants now in place
        (account ids, plus "public")."""
        ...

    def discard_upload(self, spec: PublishSpec, upload: Upload) -> None:
        """Delete the temporary uploaded object after a successful import. Idempotent: an object already gone
        is fine; a snapshot upload (nothing temporary) is left alone."""
        ...

    def delete_image(self, region: str, image_id: str) -> None:
        """Remove the image and the snapshots behind it (for prune, and a failed registration), first taking
        back any sharing that stops the cloud from deleting it. Idempotent: an image already gone is fine."""
        ...

    def list_leftovers(self, region: str, *, bucket: str | None = None) -> list[Leftover]:
        """What prune judges for orphans: snapshots in `region` tagged `managed-by=eulerpub` that no image of
        the account uses (where the cloud has snapshots of its own to list), and, with `bucket`, the objects
        under `OBJECT_PREFIX` whose metadata says eulerpub uploaded them (`eulerpub.clouds.objectstore`).
        Snapshots still being written are left out. Read-only; age and build are judged by prune."""
        ...

    def delete_leftover(self, region: str, leftover: Leftover) -> None:
        """Delete one snapshot or object from `list_leftovers`. Idempotent: one already gone is fine."""
        ...
