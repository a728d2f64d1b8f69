"""An in-memory cloud implementing `CloudAdapter`, with knobs to make steps fail, for the runner's unit tests."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from eulerpub.clouds.base import (
    MANAGED_BY,
    TAG_MANAGED_BY,
    TAG_PROFILE,
    Checkpoint,
    ImageRef,
    Imported,
    Leftover,
    LeftoverKind,
    PercentCallback,
    ProgressCallback,
    PublishSpec,
    Upload,
)
from eulerpub.errors import CloudError, UsageError

PART = 4  # bytes per fake "part" by default; the fake image is a few parts long


class Interrupted(BaseException):
    """Stands in for a kill -9: raised from inside a step after its checkpoint was saved. A BaseException, like
    Ctrl-C's KeyboardInterrupt: it ends the run, where an Exception would be one region's failure."""


@dataclass
class FakeCloud:
    regions: tuple[str, ...] = ("r-src-1", "r-one-1", "r-two-1", "r-three-1")
    images: dict[str, dict[str, ImageRef]] = field(default_factory=dict)  # region -> id -> image
    objects: dict[str, bytes] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)  # task id -> token
    calls: Counter = field(default_factory=Counter)
    tokens: dict[str, str] = field(default_factory=dict)  # client token -> resource id
    shares: dict[str, set[str]] = field(default_factory=dict)  # image id -> grants
    leftovers: list[Leftover] = field(default_factory=list)  # what list_leftovers finds, in every region
    parts_sent: int = 0
    part_size: int = PART  # a disk with a real partition table is kilobytes: send it in fewer parts
    # fault knobs
    fail_copy_to: set[str] = field(default_factory=set)
    interrupt_upload_after_parts: int | None = None
    fail_import_times: int = 0
    _ids: itertools.count = field(default_factory=itertools.count)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}"

    def now(self) -> str:
        """A creation time for a new image, later for each."""
        return f"2025-06-01T00:{next(self._ids) % 60:02d}:00Z"


class FakeAdapter:
    name = "fake"
    leftover_kinds: tuple[LeftoverKind, ...] = ("snapshot", "object")

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def _region(self, region: str) -> dict[str, ImageRef]:
        if region not in self.cloud.regions:
            raise UsageError(f"unknown region {region}")
        return self.cloud.images.setdefault(region, {})

    def preflight(self, spec: PublishSpec) -> None:
        self.cloud.calls["preflight"] += 1
        for region in spec.regions:
            self._region(region)

    def find_image(self, region: str, build_id: str) -> ImageRef | None:
        self.cloud.calls["find_image"] += 1
        for image in self._region(region).values():
            if image.build_id == build_id and image.state != "failed":
                return image
        return None

    def list_images(self, region: str, *, name: str | None = None, profile: str | None = None) -> list[ImageRef]:
        """The contract of `CloudAdapter.list_images`: only images tagged managed-by=eulerpub, except that with
        `name` every image of exactly that name counts (so the core can report a collision); newest first."""
        found = [i for i in self._region(region).values()
                 if (i.name == name if name is not None else i.tags.get(TAG_MANAGED_BY) == MANAGED_BY)
                 and (profile is None or i.tags.get(TAG_PROFILE) == profile)]
        return sorted(found, key=lambda i: i.created, reverse=True)

    def upload(self, spec: PublishSpec, checkpoint: Checkpoint, progress: ProgressCallback) -> Upload:
        self.cloud.calls["upload"] += 1
        data = spec.image.path.read_bytes()
        size = self.cloud.part_size
        parts = [data[i:i + size] for i in range(0, len(data), size)]
        done = set(checkpoint.get("parts", []))
        sent = 0
        for number, chunk in enumerate(parts):
            if number in done:
                continue
            if (self.cloud.interrupt_upload_after_parts is not None
                    and len(done) >= self.cloud.interrupt_upload_after_parts):
                self.cloud.interrupt_upload_after_parts = None
                raise Interrupted()
            self.cloud.parts_sent += 1
            sent += len(chunk)
            progress(len(chunk))
            done.add(number)
            checkpoint.update(parts=sorted(done), upload_id="u-1")
        self.cloud.objects[spec.object_key] = data
        return Upload(kind="object", id=spec.object_key, bucket=spec.bucket, sent_bytes=sent)

    def start_import(self, spec: PublishSpec, upload: Upload, token: str) -> str:
        self.cloud.calls["start_import"] += 1
        assert upload.id in self.cloud.objects
        if token not in self.cloud.tokens:
            self.cloud.tokens[token] = self.cloud.new_id("import")
        return self.cloud.tokens[token]

    def wait_import(self, spec: PublishSpec, task_id: str, progress: PercentCallback) -> Imported:
        self.cloud.calls["wait_import"] += 1
        progress(50)
        if self.cloud.fail_import_times:
            self.cloud.fail_import_times -= 1
            raise CloudError(self.name, spec.source_region, "import", "task ended in error", task_id)
        progress(100)
        return Imported(snapshot_id=f"snap-of-{task_id}")

    def register(self, spec: PublishSpec, imported: Imported) -> ImageRef:
        self.cloud.calls["register"] += 1
        existing = self.find_image(spec.source_region, spec.identity.build_id)
        if existing:
            return existing
        image = ImageRef(self.name, spec.source_region, self.cloud.new_id("img"), spec.name, "pending",
                         (imported.snapshot_id or "",), spec.all_tags, self.cloud.now())
        self._region(spec.source_region)[image.image_id] = image
        return image

    def copy_image(self, spec: PublishSpec, source: ImageRef, region: str, token: str) -> str:
        self.cloud.calls["copy_image"] += 1
        if region in self.cloud.fail_copy_to:
            raise CloudError(self.name, region, "copy_image", "the region is broken")
        if token in self.cloud.tokens:
            return self.cloud.tokens[token]
        image = ImageRef(self.name, region, self.cloud.new_id("img"), spec.name, "pending",
                         (self.cloud.new_id("snap"),), spec.all_tags, self.cloud.now())
        self._region(region)[image.image_id] = image
        self.cloud.tokens[token] = image.image_id
        return image.image_id

    def wait_image(self, spec: PublishSpec, region: str, handle: str, progress: PercentCallback) -> ImageRef:
        self.cloud.calls["wait_image"] += 1
        images = self._region(region)
        if handle not in images:
            raise CloudError(self.name, region, "wait", "no such image", handle)
        images[handle] = replace(images[handle], state="available")
        progress(100)
        return images[handle]

    def share(self, spec: PublishSpec, image: ImageRef, accounts: Sequence[str], public: bool) -> list[str]:
        self.cloud.calls["share"] += 1
        grants = self.cloud.shares.setdefault(image.image_id, set())
        grants.update(accounts)
        if public:
            grants.add("public")
        return sorted(grants)

    def discard_upload(self, spec: PublishSpec, upload: Upload) -> None:
        self.cloud.calls["discard_upload"] += 1
        self.cloud.objects.pop(upload.id, None)

    def delete_image(self, region: str, image_id: str) -> None:
        self._region(region).pop(image_id, None)

    def list_leftovers(self, region: str, *, bucket: str | None = None) -> list[Leftover]:
        self._region(region)
        return [o for o in self.cloud.leftovers if o.kind == "snapshot" or (bucket and o.bucket == bucket)]

    def delete_leftover(self, region: str, leftover: Leftover) -> None:
        self.cloud.calls["delete_leftover"] += 1
        self.cloud.leftovers = [o for o in self.cloud.leftovers if o.id != leftover.id]
