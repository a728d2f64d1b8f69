"""Fake release steps for the cell runner's tests: an in-memory build cache and cloud, counting every call."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from eulerpub.errors import CloudError, ToolError
from eulerpub.manifest import Artifact, BaseImage, BuildRecord
from eulerpub.release.matrix import BuildKey, Cell
from eulerpub.release.runner import BootTest, BuiltImage, PublishedImage, PublishOutcome, Slot, Steps


def make_record(key: BuildKey) -> BuildRecord:
    build_id = hashlib.sha256(str(key).encode()).hexdigest()[:16]
    return BuildRecord(build_id=build_id, profile=key.profile, release=key.release, arch=key.arch,
                       base=BaseImage(url="http://mirror/base.qcow2.xz", sha256="0" * 64),
                       elements_hash="e" * 64, elements=["vm"],
                       artifacts=[Artifact(format="qcow2", path="disk.qcow2", size=10, virtual_size=20,
                                           sha256=hashlib.sha256(build_id.encode()).hexdigest())])


@dataclass
class FakeSteps:
    """Builds are kept across runs (like build records on disk) and images like a cloud keeps them."""

    failing_builds: set[BuildKey] = field(default_factory=set)
    failing_tests: set[BuildKey] = field(default_factory=set)
    failing_publishes: set[str] = field(default_factory=set)  # cell keys
    failing_copies: set[str] = field(default_factory=set)  # regions
    records: dict[BuildKey, BuildRecord] = field(default_factory=dict)
    images: dict[tuple[str, str, str], PublishedImage] = field(default_factory=dict)  # (cloud, region, build_id)
    calls: list[tuple[str, str]] = field(default_factory=list)
    building_now: int = 0
    most_builds_at_once: int = 0
    # > 0: each build holds on for up to this long, until a second build runs alongside it. A runner that lets
    # builds overlap then shows it every time (the second build starts within the window), instead of only
    # when two threads happen to meet in a build that takes no time.
    overlap_window_s: float = 0.0
    # The most boot tests, uploads (inside the publish's slot) and cloud-side waits (after it) at once. With
    # `company`, phase -> (how many, seconds), each holds on until that many run alongside it, or for that long:
    # whatever overlap the runner allows then shows every time.
    company: dict[str, tuple[int, float]] = field(default_factory=dict)
    most_at_once: Counter = field(default_factory=Counter)
    _now: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _building: threading.Condition = field(default_factory=threading.Condition)
    _phases: threading.Condition = field(default_factory=threading.Condition)

    def steps(self) -> Steps:
        return Steps(find_build=self.find_build, build=self.build, boot_test=self.boot_test, publish=self.publish)

    def _note(self, step: str, what: object) -> None:
        with self._lock:
            self.calls.append((step, str(what)))

    def find_build(self, key: BuildKey) -> BuiltImage | None:
        self._note("find_build", key)
        record = self.records.get(key)
        return BuiltImage(Path("/builds") / record.build_id, record, reused=True) if record else None

    def build(self, key: BuildKey) -> BuiltImage:
        self._note("build", key)
        with self._building:
            self.building_now += 1
            self.most_builds_at_once = max(self.most_builds_at_once, self.building_now)
            self._building.notify_all()
            self._building.wait_for(lambda: self.building_now > 1, timeout=self.overlap_window_s)
        try:
            if key in self.failing_builds:
                raise ToolError(["disk-image-create", "vm"], 1, "no space left on device")
            record = make_record(key)
            self.records[key] = record
            return BuiltImage(Path("/builds") / record.build_id, record)
        finally:
            with self._building:
                self.building_now -= 1

    @contextmanager
    def _phase(self, name: str):
        with self._phases:
            self._now[name] += 1
            self.most_at_once[name] = max(self.most_at_once[name], self._now[name])
            self._phases.notify_all()
            wanted, seconds = self.company.get(name, (1, 0.0))
            self._phases.wait_for(lambda: self.most_at_once[name] >= wanted, timeout=seconds)
        try:
            yield
        finally:
            with self._phases:
                self._now[name] -= 1

    def boot_test(self, built: BuiltImage) -> BootTest:
        key = BuildKey(built.record.profile, built.record.release, built.record.arch)
        self._note("boot_test", key)
        with self._phase("boot_test"):
            pass
        if key in self.failing_tests:
            return BootTest(False, "cloud-init did not finish")
        return BootTest(True)

    def publish(self, cell: Cell, built: BuiltImage, upload_slot: Slot = nullcontext) -> PublishOutcome:
        self._note("publish", cell.key)
        with upload_slot(), self._phase("upload"):
            pass
        with self._phase("wait"):
            pass
        if cell.key in self.failing_publishes:
            raise CloudError(cell.cloud, cell.region, "import", "ImportTaskFailed")
        placed, failed = [], []
        for region in cell.regions:
            if region in self.failing_copies:
                failed.append((region, "copy failed"))
                continue
            slot = (cell.cloud, region, built.record.build_id)
            with self._lock:
                existing = self.images.get(slot)
                if existing is None:
                    image = PublishedImage(region, f"img-{len(self.images) + 1}", f"openEuler-{cell.release}",
                                           "2025-06-01T00:00:00+00:00", new=True)
                    self.images[slot] = image
                else:
                    image = PublishedImage(existing.region, existing.image_id, existing.name, existing.created,
                                           new=False)
            placed.append(image)
        return PublishOutcome(built.record.artifact().sha256, tuple(placed), tuple(failed))
