"""The cell runner: per cell, build (or reuse) → boot test (the release gate) → publish, and collect results.

The steps are injected (`Steps`), so the runner is tested with fakes and wired to the real library functions
in `eulerpub.release.wiring`. Cells are independent: a cell that fails is recorded and the others go on.
Cells of one build share its build and boot test, which run once.

What the plan's concurrency bounds is the work that uses up the machine or its link: boot tests (a VM each)
and uploads (the bytes, and the conversion before them). Every cell runs on its own thread, so the rest of a
publish, which is waiting on the cloud (import and copy polls, registering, sharing), overlaps freely and a
release's wall time follows its critical path rather than the number of cells divided by the concurrency.
Builds are serialized: one diskimage-builder build at a time per host (it needs most of the machine's
memory, disk and loop devices).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from eulerpub.errors import EulerpubError
from eulerpub.manifest import BuildRecord
from eulerpub.release.matrix import BuildKey, Cell
from eulerpub.release.plan import Plan

log = logging.getLogger(__name__)

# Cells running at once, at most (a waiting cell costs a thread, not bandwidth): more than release.yaml's
# largest matrices, and the heavy work stays bounded by the plan's concurrency whatever this is.
MAX_CELL_THREADS = 64
Slot = Callable[[], AbstractContextManager[object]]
"""Held while doing work the concurrency bounds: `with slot(): upload()`."""


@dataclass(frozen=True)
class BuiltImage:
    """A build record and where it lives; `reused` when an existing record was found instead of building."""

    record_path: Path
    record: BuildRecord
    reused: bool = False


@dataclass(frozen=True)
class BootTest:
    passed: bool
    detail: str = ""  # what failed, or where the log is


@dataclass(frozen=True)
class PublishedImage:
    """One region's image after a publish; `new` when this run created it rather than finding it."""

    region: str
    image_id: str
    name: str
    created: str
    new: bool


@dataclass(frozen=True)
class PublishOutcome:
    """A cell's publish: the images in place (import region and copies) and the regions that failed."""

    artifact_sha256: str
    images: tuple[PublishedImage, ...]
    failed_regions: tuple[tuple[str, str], ...] = ()  # (region, reason)


@dataclass(frozen=True)
class Steps:
    """What the runner does at each stage. Steps raise `EulerpubError` on failure."""

    find_build: Callable[[BuildKey], BuiltImage | None]
    """The existing record for this build's current inputs, or None (then `build` runs)."""
    build: Callable[[BuildKey], BuiltImage]
    boot_test: Callable[[BuiltImage], BootTest]
    publish: Callable[[Cell, BuiltImage, Slot], PublishOutcome]
    """Publishes the cell, holding the slot (third argument) only while uploading."""


class Status(StrEnum):
    PUBLISHED = "published"
    TESTED = "tested, not published"  # a run that stops before publishing (--no-publish)
    BUILD_FAILED = "build failed"
    TEST_FAILED = "boot test failed"  # the gate: nothing was published
    PUBLISH_FAILED = "publish failed"


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    status: Status
    detail: str = ""
    build_id: str | None = None
    built: bool = False  # this run built the image (False: an existing record was reused)
    publish: PublishOutcome | None = None

    @property
    def ok(self) -> bool:
        return self.status in (Status.PUBLISHED, Status.TESTED)

    @property
    def images(self) -> tuple[PublishedImage, ...]:
        return self.publish.images if self.publish else ()


@dataclass
class _Prepared:
    """A build's outcome, shared by its cells: the image and its boot test, or why there is none."""

    built: BuiltImage | None = None
    test: BootTest | None = None
    error: str = ""


@dataclass
class _Gate:
    """Builds and boot-tests each BuildKey once, whichever of its cells asks first; builds one at a time."""

    steps: Steps
    heavy: Slot = nullcontext  # held during each boot test
    _build_lock: threading.Lock = field(default_factory=threading.Lock)
    _keys_lock: threading.Lock = field(default_factory=threading.Lock)
    _locks: dict[BuildKey, threading.Lock] = field(default_factory=dict)
    _done: dict[BuildKey, _Prepared] = field(default_factory=dict)

    def prepare(self, key: BuildKey) -> _Prepared:
        with self._keys_lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._done:
                self._done[key] = self._prepare(key)
            return self._done[key]

    def _prepare(self, key: BuildKey) -> _Prepared:
        prepared = _Prepared()
        try:
            prepared.built = self.steps.find_build(key)
            if prepared.built is None:
                with self._build_lock:
                    log.info("%s: building", key)
                    prepared.built = self.steps.build(key)
            else:
                log.info("%s: reusing build %s", key, prepared.built.record.build_id)
        except Exception as exc:  # recorded per cell; other builds go on
            prepared.error = _reason(exc)
            log.error("%s: build failed: %s", key, prepared.error)
            return prepared
        try:
            with self.heavy():
                log.info("%s: boot test", key)
                prepared.test = self.steps.boot_test(prepared.built)
        except Exception as exc:
            prepared.test = BootTest(False, _reason(exc))
        if not prepared.test.passed:
            log.error("%s: boot test failed, its cells are not published: %s", key, prepared.test.detail)
        return prepared


def run_cells(plan: Plan, steps: Steps, *, publish: bool = True,
              on_result: Callable[[CellResult], None] | None = None) -> list[CellResult]:
    """Run every cell of the plan and return their results in plan order. Never raises for a cell's failure.
    With `publish` false, cells stop after the boot test (a CI build job: build and gate, publish later).
    At most `plan.concurrency` boot tests and uploads run at once; everything else of every cell overlaps."""
    slots = threading.BoundedSemaphore(plan.concurrency)
    gate = _Gate(steps, heavy=lambda: slots)

    def run_one(cell: Cell) -> CellResult:
        result = _run_cell(cell, gate, steps, publish)
        if on_result:
            on_result(result)
        return result

    threads = max(1, min(len(plan.cells), MAX_CELL_THREADS))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cell") as pool:
        return list(pool.map(run_one, plan.cells))


def _run_cell(cell: Cell, gate: _Gate, steps: Steps, publish: bool) -> CellResult:
    prepared = gate.prepare(cell.build)
    if prepared.built is None:
        return CellResult(cell, Status.BUILD_FAILED, prepared.error)
    built = prepared.built
    common = {"build_id": built.record.build_id, "built": not built.reused}
    if prepared.test is None or not prepared.test.passed:
        detail = prepared.test.detail if prepared.test else ""
        return CellResult(cell, Status.TEST_FAILED, detail or "the boot test did not pass", **common)
    if not publish:
        return CellResult(cell, Status.TESTED, **common)
    try:
        log.info("%s: publishing", cell.key)
        outcome = steps.publish(cell, built, gate.heavy)
    except Exception as exc:  # one cell's failure never stops the others
        log.error("%s: publish failed: %s", cell.key, _reason(exc))
        return CellResult(cell, Status.PUBLISH_FAILED, _reason(exc), **common)
    if outcome.failed_regions:
        detail = "; ".join(f"{region}: {reason}" for region, reason in outcome.failed_regions)
        return CellResult(cell, Status.PUBLISH_FAILED, detail, publish=outcome, **common)
    return CellResult(cell, Status.PUBLISHED, publish=outcome, **common)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EulerpubError):
        return exc.message
    log.debug("unexpected error", exc_info=exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def exit_ok(results: Sequence[CellResult]) -> bool:
    """True when every cell was published in every region (or, without publishing, passed its boot test)."""
    return all(result.ok for result in results)
