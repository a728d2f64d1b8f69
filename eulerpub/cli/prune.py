"""`eulerpub prune`: delete older published images (with their snapshots) and orphans; dry-run by default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from eulerpub import ui
from eulerpub.cli.cloud_options import Cloud, ProfileFilter, Region, ReleasesDir
from eulerpub.cli.options import Json, start
from eulerpub.clouds import get_adapter, rules
from eulerpub.errors import EXIT_FAILED, UsageError
from eulerpub.release import cleanup
from eulerpub.release import index as release_index
from eulerpub.release.prune import ORPHAN_MIN_AGE

MAX_ORPHAN_MIN_AGE_HOURS = 10 * 365 * 24  # nothing eulerpub tags is older; beyond it timedelta overflows anyway


def command(
    cloud: Cloud,
    region: Region,
    keep: Annotated[int, typer.Option("--keep", min=1, help="How many of the newest images to keep per "
                                      "profile/release/arch.")],
    profile: ProfileFilter = None,
    bucket: Annotated[str | None, typer.Option("--bucket", help="Also look for orphaned uploads in this "
                                               "bucket.")] = None,
    orphan_min_age: Annotated[float, typer.Option(
        "--orphan-min-age", min=0, metavar="HOURS", help="Leave alone snapshots and uploads younger than this: "
        "a publish still running owns them.")] = ORPHAN_MIN_AGE.total_seconds() / 3600,
    releases_dir: ReleasesDir = release_index.DEFAULT_RELEASES_DIR,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really delete. Without it, only say what would "
                                      "go.")] = False,
    json_output: Json = False,
) -> None:
    """Delete older published images (with their snapshots) and orphans; a dry run unless --yes.

    Keeps the newest N images per profile/release/arch in one region and deletes the older ones with their
    snapshots; an image the release index marks as current is never deleted. Also finds orphans: snapshots
    and uploaded objects (in `--bucket`) tagged by eulerpub that no image uses, older than `--orphan-min-age`.

    Examples:

    - `eulerpub prune --cloud aws --region us-east-1 --keep 2` (says what would go)
    - `eulerpub prune -c aws --region us-east-1 --keep 2 --bucket my-images --yes`
    - `eulerpub prune -c huawei --region cn-north-4 --keep 1 --profile hpc --json`
    """
    start(json_output)
    rules.check_region(cloud, region, what="--region")
    if not 0 <= orphan_min_age <= MAX_ORPHAN_MIN_AGE_HOURS:  # also refuses inf and nan
        raise UsageError(f"--orphan-min-age must be between 0 and {MAX_ORPHAN_MIN_AGE_HOURS} hours (ten years)")
    adapter = get_adapter(cloud)
    current = release_index.current_image_ids(release_index.read_index(releases_dir / release_index.INDEX_NAME),
                                              cloud, region)
    found = cleanup.survey(adapter, region, keep=keep, current=current, now=datetime.now(UTC), profile=profile,
                           bucket=bucket, orphan_min_age=timedelta(hours=orphan_min_age))
    deletions = cleanup.carry_out(adapter, found) if yes else []
    if json_output:
        ui.emit_json(_as_json(found, deletions, yes))
    else:
        _print(f"{cloud}/{region}", found, deletions, yes)
    if any(not d.ok for d in deletions):
        raise typer.Exit(EXIT_FAILED)


def _as_json(found: cleanup.Survey, deletions: list[cleanup.Deletion], applied: bool) -> dict[str, Any]:
    def images(decisions) -> list[dict[str, Any]]:
        return [{"image_id": d.image.image_id, "name": d.image.name, "created": d.image.created,
                 "snapshot_ids": list(d.image.snapshot_ids), "reason": d.reason} for d in decisions]

    return {
        "cloud": found.cloud, "region": found.region, "applied": applied,
        "keep": images(found.plan.keep), "delete": images(found.plan.delete),
        "untouched": images(found.plan.untouched),
        "orphans": [{"kind": o.kind, "id": o.id, "bucket": o.bucket, "created": o.created, "build_id": o.build_id}
                    for o in found.orphans],
        "not_searched": list(found.not_searched),
        "deleted": [{"kind": d.kind, "id": d.id, "ok": d.ok, "error": d.error} for d in deletions],
    }


def _print(where: str, found: cleanup.Survey, deletions: list[cleanup.Deletion], applied: bool) -> None:
    verb = "delete" if applied else "would delete"
    for d in found.plan.keep:
        print(f"keep          {d.image.image_id}  {d.image.name}  ({d.reason})")
    for d in found.plan.untouched:
        print(f"leave alone   {d.image.image_id}  {d.image.name}  ({d.reason})")
    for d in found.plan.delete:
        snapshots = f" with {', '.join(d.image.snapshot_ids)}" if d.image.snapshot_ids else ""
        print(f"{verb:<13} {d.image.image_id}{snapshots}  {d.image.name}  ({d.reason})")
    for o in found.orphans:
        where_from = f" in {o.bucket}" if o.bucket else ""
        print(f"{verb:<13} orphaned {o.kind} {o.id}{where_from}  (build {o.build_id or '?'}, created {o.created})")
    for what in found.not_searched:
        print(f"orphans: not searched: {what}")
    failed = [d for d in deletions if not d.ok]
    for d in failed:
        print(f"failed        {d.kind} {d.id}: {d.error}")
    count = len(found.plan.delete) + len(found.orphans)
    if applied:
        print(f"{where}: deleted {count - len(failed)} of {count}")
    else:
        print(f"{where}: {count} to delete; nothing was changed (pass --yes to delete)")
