"""A release run's results as a summary table (stdout) or JSON. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eulerpub import tables
from eulerpub.release.runner import CellResult

COLUMNS = ("CELL", "STATUS", "BUILD", "IMAGES", "NOTE")


def _images(result: CellResult) -> str:
    return ", ".join(f"{i.region}={i.image_id}{'' if i.new else ' (existing)'}" for i in result.images) or "-"


def _build(result: CellResult) -> str:
    return "-" if result.build_id is None else f"{result.build_id[:12]}{' (new)' if result.built else ''}"


def render_summary(results: Sequence[CellResult]) -> str:
    """One row per cell, then a count line: `3 published, 1 failed`."""
    rows = [(r.cell.key, r.status.value, _build(r), _images(r), r.detail) for r in results]
    failed = sum(not r.ok for r in results)
    new = sum(i.new for r in results for i in r.images)
    return f"{tables.render(COLUMNS, rows)}\n{len(results) - failed} published, {failed} failed; {new} new image(s)"


def results_to_json(results: Sequence[CellResult]) -> list[dict[str, Any]]:
    return [{
        "profile": r.cell.profile, "release": r.cell.release, "arch": r.cell.arch, "cloud": r.cell.cloud,
        "region": r.cell.region, "status": r.status.value, "ok": r.ok, "detail": r.detail,
        "build_id": r.build_id, "built": r.built,
        "artifact_sha256": r.publish.artifact_sha256 if r.publish else None,
        "images": [{"region": i.region, "image_id": i.image_id, "name": i.name, "created": i.created,
                    "new": i.new} for i in r.images],
    } for r in results]
