"""The publish journal: one versioned JSON record per cloud/region, rewritten atomically after every step.

It holds each step's status and resource id (object key, upload id and parts done, import task, snapshot,
image, copy, shares), so a killed run resumes where it stopped. It is a cache of what the cloud holds, not
the truth: the runner confirms with the adapter's `find_image` before trusting it, and a run without a
journal rebuilds one from the tags.

Layout: `{journal_dir}/{cloud}/{region}.json`.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from eulerpub.clouds.base import Checkpoint, ImageRef
from eulerpub.errors import UsageError
from eulerpub.jsonfile import write_json_atomic

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

StepName = Literal["upload", "import", "register", "copy", "share", "cleanup"]
StepStatus = Literal["running", "done", "failed"]
RegionRole = Literal["source", "copy"]


def _now() -> datetime:
    return datetime.now(UTC)


class StepRecord(BaseModel):
    status: StepStatus
    id: str | None = Field(None, description="the resource or task this step made: object key, task, image")
    attempt: int = Field(1, description="bumped when a failed step must start over with a fresh client token")
    data: dict[str, Any] = Field(default_factory=dict, description="the adapter's resumable state or result")
    error: str | None = None
    updated: datetime = Field(default_factory=_now)


class RegionJournal(BaseModel):
    schema_version: int = SCHEMA_VERSION
    cloud: str
    region: str
    role: RegionRole
    build_id: str
    name: str
    steps: dict[StepName, StepRecord] = Field(default_factory=dict)
    image_id: str | None = None
    snapshot_ids: list[str] = Field(default_factory=list)
    shares: list[str] = Field(default_factory=list)
    updated: datetime = Field(default_factory=_now)

    def step(self, name: StepName) -> StepRecord | None:
        return self.steps.get(name)

    def done(self, name: StepName) -> StepRecord | None:
        """The step's record if it finished, else None."""
        record = self.steps.get(name)
        return record if record and record.status == "done" else None


class RegionLog:
    """One region's journal plus the file it lives in; every change is written through at once.

    Thread safe: an uploader's workers save checkpoints while the region's own thread records steps.
    """

    def __init__(self, path: Path, journal: RegionJournal) -> None:
        self.path = path
        self.journal = journal
        self._lock = threading.RLock()

    def _write(self) -> None:
        self.journal.updated = _now()
        write_json_atomic(self.path, self.journal.model_dump(mode="json"))

    def record(self, step: StepName, status: StepStatus, *, id: str | None = None,
               data: dict[str, Any] | None = None, error: str | None = None, attempt: int | None = None) -> None:
        """Set a step's status (keeping its id, data and attempt unless given) and write the journal."""
        with self._lock:
            old = self.journal.steps.get(step)
            self.journal.steps[step] = StepRecord(
                status=status,
                id=id if id is not None else (old.id if old else None),
                attempt=attempt if attempt is not None else (old.attempt if old else 1),
                data=data if data is not None else (old.data if old else {}),
                error=error,
            )
            self._write()

    def restart(self, step: StepName, error: str) -> None:
        """Mark a step failed so the next run starts it over with a new client token (attempt + 1)."""
        with self._lock:
            old = self.journal.steps.get(step)
            attempt = (old.attempt if old else 0) + 1
            self.journal.steps[step] = StepRecord(status="failed", attempt=attempt, error=error)
            self._write()

    def set_image(self, image: ImageRef) -> None:
        with self._lock:
            self.journal.image_id = image.image_id
            self.journal.snapshot_ids = list(image.snapshot_ids)
            self._write()

    def set_shares(self, shares: list[str]) -> None:
        with self._lock:
            self.journal.shares = sorted(shares)
            self._write()

    def checkpoint(self, step: StepName) -> Checkpoint:
        """A Checkpoint backed by `step`'s data: whatever the adapter saves is written to the journal."""
        with self._lock:
            current = self.journal.steps.get(step)
            initial = dict(current.data) if current and current.status != "done" else {}

        def persist(data: dict[str, Any]) -> None:
            with self._lock:
                old = self.journal.steps.get(step)
                self.journal.steps[step] = StepRecord(status="running", id=old.id if old else None,
                                                      attempt=old.attempt if old else 1, data=data)
                self._write()

        return Checkpoint(initial, persist)


class JournalStore:
    """Where one build's journals live: `{root}/{cloud}/{region}.json`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, cloud: str, region: str) -> Path:
        return self.root / cloud / f"{region}.json"

    def read(self, cloud: str, region: str) -> RegionJournal | None:
        """The journal of one region, or None if there is none (or it belongs to another build)."""
        path = self.path(cloud, region)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path}: unreadable publish journal ({exc}); move it away to rebuild it from "
                             "the cloud's tags") from None
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if version != SCHEMA_VERSION:
            raise UsageError(f"{path}: publish journal schema {version} is not {SCHEMA_VERSION}; it was written "
                             "by another eulerpub version (move it away to rebuild it from the cloud's tags)")
        try:
            return RegionJournal.model_validate(raw)
        except ValidationError as exc:
            raise UsageError(f"{path}: invalid publish journal ({exc.errors()[0]['msg']})") from None

    def open(self, cloud: str, region: str, *, role: RegionRole, build_id: str, name: str) -> RegionLog:
        """The region's log, resumed from its journal when that journal is for the same build."""
        journal = self.read(cloud, region)
        if journal is not None and journal.build_id != build_id:
            log.warning("%s: journal is for build %s, not %s; starting a new one", self.path(cloud, region),
                        journal.build_id, build_id)
            journal = None
        if journal is None:
            journal = RegionJournal(cloud=cloud, region=region, role=role, build_id=build_id, name=name)
        else:
            journal.role = role
        return RegionLog(self.path(cloud, region), journal)

    def read_all(self, cloud: str, regions: tuple[str, ...]) -> dict[str, RegionJournal | None]:
        return {region: self.read(cloud, region) for region in regions}
