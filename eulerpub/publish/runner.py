"""The publish runner: preflight, the source-region pipeline, then the fan-out to the copy regions.

Each step first looks for its result (the journal, then the cloud via `find_image`), does the work only if
it is missing, and writes the journal at once. Copy regions run in parallel, one thread each; a region that
fails is reported and left for the next run, and never rolls back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

from eulerpub.clouds.base import (
    CloudAdapter,
    ImageRef,
    Imported,
    PercentCallback,
    ProgressCallback,
    PublishSpec,
    Upload,
)
from eulerpub.errors import EulerpubError, UsageError, WaitTimeout
from eulerpub.publish.journal import JournalStore, RegionLog, StepName
from eulerpub.publish.report import PublishResult, RegionResult

log = logging.getLogger(__name__)

BytesProgress = Callable[[str, int | None], AbstractContextManager[ProgressCallback]]
T = TypeVar("T")
PUBLIC = "public"  # how a public launch permission is written in journals and reports


@contextmanager
def _quiet_progress(description: str, total: int | None) -> Iterator[ProgressCallback]:
    yield lambda n: None


def percent_logger(label: str) -> PercentCallback:
    """Log a cloud job's progress when it moves, not on every poll."""
    last: list[int] = []

    def report(percent: int) -> None:
        if not last or percent != last[-1]:
            last.append(percent)
            log.info("%s: %d%%", label, percent)

    return report


def token(spec: PublishSpec, region: str, step: StepName, attempt: int) -> str:
    """The client token of a create call: the same for every retry and re-run of one attempt of one step."""
    return f"eulerpub-{spec.identity.build_id}-{region}-{step}-{attempt}"


def preflight(spec: PublishSpec, adapter: CloudAdapter) -> None:
    """Every read-only check a run starts with (the adapter's preflight, then name collisions); `--dry-run`
    runs these too, so what would fail on a real account fails before anything is uploaded."""
    adapter.preflight(spec)
    check_name_collisions(adapter, spec)


def check_name_collisions(adapter: CloudAdapter, spec: PublishSpec) -> None:
    """Refuse to start when another build's image already has the name in ANY target region."""
    clashes = []
    for region in spec.regions:
        for image in adapter.list_images(region, name=spec.name):
            if image.build_id != spec.identity.build_id:
                clashes.append(f"{region} ({image.image_id})")
    if clashes:
        raise UsageError(f"an image named {spec.name!r} from another build already exists in "
                         f"{', '.join(clashes)}; pass --name or delete it")


UploadSlot = Callable[[], AbstractContextManager[object]]
"""Entered around the conversion and upload: `with upload_slot(): ...` (nullcontext when nothing bounds them)."""

class Runner:
    def __init__(self, spec: PublishSpec, adapter: CloudAdapter, store: JournalStore, *,
                 byte_progress: BytesProgress = _quiet_progress,
                 upload_slot: UploadSlot = nullcontext) -> None:
        self.spec = spec
        self.adapter = adapter
        self.store = store
        self.byte_progress = byte_progress
        self.upload_slot = upload_slot  # held while uploading: a release bounds its uploads, not its waits
        self.sent_bytes = 0

    def _open(self, region: str, role: str) -> RegionLog:
        return self.store.open(self.spec.cloud, region, role=role,  # type: ignore[arg-type]
                               build_id=self.spec.identity.build_id, name=self.spec.name)

    # -- the whole run ------------------------------------------------------------------------------------

    def run(self) -> PublishResult:
        preflight(self.spec, self.adapter)
        source_log = self._open(self.spec.source_region, "source")
        try:
            source, created = self._source_image(source_log)
            source_result = self._finish_region(source_log, source, created)
        except Exception as exc:  # like a copy region's: even a bug is this region's failure, reported in its row
            source_result = RegionResult(self.spec.source_region, "source", "failed",
                                         error=_failure(self.spec.source_region, exc))
            skipped = tuple(RegionResult(r, "copy", "skipped", error=f"source region {self.spec.source_region} "
                                         "failed") for r in self.spec.copy_to)
            return self._result((source_result, *skipped))
        return self._result((source_result, *self._fan_out(source)))

    def _result(self, regions: tuple[RegionResult, ...]) -> PublishResult:
        return PublishResult(cloud=self.spec.cloud, build_id=self.spec.identity.build_id, name=self.spec.name,
                             regions=regions, sent_bytes=self.sent_bytes, image_size=self.spec.image.size,
                             journal_dir=str(self.store.root))

    # -- source region ------------------------------------------------------------------------------------

    def _existing(self, region_log: RegionLog, region: str) -> ImageRef | None:
        """This build's image in `region` if it exists (waited for if still pending)."""
        found = self.adapter.find_image(region, self.spec.identity.build_id)
        if found is None:
            return None
        if found.state == "pending":
            log.info("%s: %s exists and is still being made; waiting for it", region, found.image_id)
            found = self.adapter.wait_image(self.spec, region, found.image_id, percent_logger(f"{region}: image"))
        region_log.set_image(found)
        return found

    def _source_image(self, region_log: RegionLog) -> tuple[ImageRef, bool]:
        spec, region = self.spec, self.spec.source_region
        existing = self._existing(region_log, region)
        if existing is not None:
            log.info("%s: image %s of build %s already exists", region, existing.image_id, spec.identity.build_id)
            self._cleanup(region_log)
            return existing, False
        upload = self._upload(region_log)
        imported = self._import(region_log, upload)
        self._cleanup(region_log)
        image = self.adapter.register(spec, imported)
        region_log.record("register", "running", id=image.image_id)
        if image.state != "available":
            image = self.adapter.wait_image(spec, region, image.image_id, percent_logger(f"{region}: image"))
        region_log.set_image(image)
        region_log.record("register", "done", id=image.image_id)
        return image, True

    def _upload(self, region_log: RegionLog) -> Upload:
        done = region_log.journal.done("upload")
        if done is not None:
            return Upload.from_json(done.data)
        image = self.spec.image
        with self.upload_slot(), \
                self.byte_progress(f"{self.spec.source_region}: upload {image.path.name}", image.size) as advance:
            upload = self.adapter.upload(self.spec, region_log.checkpoint("upload"), advance)
        self.sent_bytes += upload.sent_bytes
        region_log.record("upload", "done", id=upload.id, data=upload.to_json())
        return upload

    def _import(self, region_log: RegionLog, upload: Upload) -> Imported:
        done = region_log.journal.done("import")
        if done is not None:
            return Imported.from_json(done.data)
        task_id, imported = self._start_or_resume(
            region_log, "import", self.spec.source_region,
            start=lambda client_token: self.adapter.start_import(self.spec, upload, client_token),
            wait=lambda task: self.adapter.wait_import(self.spec, task,
                                                       percent_logger(f"{self.spec.source_region}: import {task}")))
        region_log.record("import", "done", id=task_id, data=imported.to_json())
        return imported

    def _cleanup(self, region_log: RegionLog) -> None:
        """Delete the temporary object once the import is done (kept with --keep-object, or if it failed)."""
        upload_step = region_log.journal.done("upload")
        if self.spec.keep_object or upload_step is None or region_log.journal.done("cleanup"):
            return
        upload = Upload.from_json(upload_step.data)
        if upload.kind != "object":
            return
        self.adapter.discard_upload(self.spec, upload)
        region_log.record("cleanup", "done", id=upload.id)

    # -- every region: sharing and the result row -------------------------------------------------------------

    def _finish_region(self, region_log: RegionLog, image: ImageRef, created: bool) -> RegionResult:
        wanted = sorted({*self.spec.share_with, *([PUBLIC] if self.spec.public else [])})
        journal = region_log.journal
        if wanted and not (journal.done("share") and set(wanted) <= set(journal.shares)
                           and journal.image_id == image.image_id):
            granted = self.adapter.share(self.spec, image, list(self.spec.share_with), self.spec.public)
            region_log.set_shares(granted)
            region_log.record("share", "done", id=image.image_id)
        return RegionResult(region_log.journal.region, region_log.journal.role, "done", image_id=image.image_id,
                            snapshot_ids=tuple(image.snapshot_ids), shares=tuple(region_log.journal.shares),
                            created=created, created_at=image.created)

    # -- copy regions -------------------------------------------------------------------------------------

    def _fan_out(self, source: ImageRef) -> list[RegionResult]:
        if not self.spec.copy_to:
            return []
        with ThreadPoolExecutor(max_workers=len(self.spec.copy_to), thread_name_prefix="copy") as pool:
            futures = [pool.submit(self._copy_region, source, region) for region in self.spec.copy_to]
            return [future.result() for future in futures]

    def _copy_region(self, source: ImageRef, region: str) -> RegionResult:
        """One copy region from start to finish; every failure becomes this region's row, never an exception."""
        try:
            region_log = self._open(region, "copy")
            image, created = self._copy_image(region_log, source, region)
            return self._finish_region(region_log, image, created)
        except Exception as exc:  # one region's failure, even a bug, must not stop the others
            return RegionResult(region, "copy", "failed", error=_failure(region, exc))

    def _copy_image(self, region_log: RegionLog, source: ImageRef, region: str) -> tuple[ImageRef, bool]:
        existing = self._existing(region_log, region)
        if existing is not None:
            region_log.record("copy", "done", id=existing.image_id)
            return existing, False
        _, image = self._start_or_resume(
            region_log, "copy", region,
            start=lambda client_token: self.adapter.copy_image(self.spec, source, region, client_token),
            wait=lambda handle: self.adapter.wait_image(self.spec, region, handle,
                                                        percent_logger(f"{region}: copy {handle}")))
        region_log.set_image(image)
        region_log.record("copy", "done", id=image.image_id)
        return image, True


    # -- the cloud jobs (import, copy): started once, resumed by every later run ----------------------------

    def _start_or_resume(self, region_log: RegionLog, step: StepName, region: str, *,
                         start: Callable[[str], str], wait: Callable[[str], T]) -> tuple[str, T]:
        """Wait for the step's cloud job: the one the journal says is running (a re-run waits on the same task),
        else a new one started with this attempt's client token. A job still running when the wait gives up
        (WaitTimeout) stays recorded for the next run; one that failed for good marks the step failed, so the
        next run starts a new attempt with a new token."""
        entry = region_log.journal.step(step)
        attempt = entry.attempt if entry else 1
        handle = entry.id if entry and entry.status == "running" and entry.id else None
        if handle is None:
            handle = start(token(self.spec, region, step, attempt))
            region_log.record(step, "running", id=handle, attempt=attempt, data={})
        try:
            return handle, wait(handle)
        except WaitTimeout:
            raise
        except EulerpubError as exc:
            region_log.restart(step, str(exc))
            raise


def _failure(region: str, exc: Exception) -> str:
    """A failed region's error for its row and the log: eulerpub's sentence, or the type and text of a bug (with
    its traceback at debug level)."""
    if isinstance(exc, EulerpubError):
        message = str(exc)
    else:
        log.debug("%s: unexpected failure", region, exc_info=True)
        message = f"{type(exc).__name__}: {exc}"
    log.error("%s: %s", region, message)
    return message


def publish(spec: PublishSpec, adapter: CloudAdapter, store: JournalStore, *,
            byte_progress: BytesProgress = _quiet_progress,
            upload_slot: UploadSlot = nullcontext) -> PublishResult:
    """Publish `spec` with `adapter`, journaling into `store`; returns the per-region result. `upload_slot` is
    held while the image is converted and uploaded (the release runner bounds concurrent uploads with it)."""
    return Runner(spec, adapter, store, byte_progress=byte_progress, upload_slot=upload_slot).run()
