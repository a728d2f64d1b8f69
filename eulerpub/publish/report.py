"""The per-region result of a publish: typed, rendered as a text table or as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from eulerpub import tables

RegionStatus = Literal["done", "failed", "skipped"]


@dataclass(frozen=True)
class RegionResult:
    region: str
    role: Literal["source", "copy"]
    status: RegionStatus
    image_id: str | None = None
    snapshot_ids: tuple[str, ...] = ()
    shares: tuple[str, ...] = ()
    created: bool = False  # the image was made by this run (False: found from an earlier run)
    created_at: str = ""  # when the cloud created the image, as the cloud reports it (ISO 8601)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"region": self.region, "role": self.role, "status": self.status, "image_id": self.image_id,
                "snapshot_ids": list(self.snapshot_ids), "shares": list(self.shares), "created": self.created,
                "created_at": self.created_at, "error": self.error}


@dataclass(frozen=True)
class PublishResult:
    cloud: str
    build_id: str
    name: str
    regions: tuple[RegionResult, ...]
    sent_bytes: int = 0
    image_size: int = 0
    journal_dir: str = ""

    @property
    def ok(self) -> bool:
        return all(r.status == "done" for r in self.regions)

    @property
    def failed(self) -> tuple[RegionResult, ...]:
        return tuple(r for r in self.regions if r.status != "done")

    def to_json(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "build_id": self.build_id, "name": self.name, "ok": self.ok,
                "sent_bytes": self.sent_bytes, "image_size": self.image_size, "journal_dir": self.journal_dir,
                "regions": [r.to_json() for r in self.regions]}


COLUMNS = ("REGION", "ROLE", "STATUS", "IMAGE", "SNAPSHOT", "SHARED", "NOTE")


def render_table(result: PublishResult) -> str:
    """A plain aligned table, one row per region, for stdout."""
    rows = [(r.region, r.role, r.status, r.image_id or "-", ",".join(r.snapshot_ids) or "-",
             ",".join(r.shares) or "-", r.error or ("new" if r.created else "already there"))
            for r in result.regions]
    return f"{result.name} ({result.cloud}, build {result.build_id})\n{tables.render(COLUMNS, rows)}"
