"""Prune in one cloud region: survey what eulerpub published there, then delete what the survey condemned.

The decisions are `eulerpub.release.prune`'s (pure); this module only asks the adapter and carries them out.
Images go with `delete_image` (the image and the snapshots behind it); orphaned snapshots and objects, found with
`list_leftovers`, go with `delete_leftover`. What could not be searched (objects without a bucket, snapshots on a
cloud whose adapter lists none) is named in the survey, never guessed at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from eulerpub.clouds.base import CloudAdapter, ImageRef, Leftover
from eulerpub.errors import EulerpubError
from eulerpub.release.prune import ORPHAN_MIN_AGE, PrunePlan, find_orphans, select

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Survey:
    cloud: str
    region: str
    plan: PrunePlan
    orphans: tuple[Leftover, ...]
    not_searched: tuple[str, ...] = ()  # kinds of leftover this survey could not look for, and why


@dataclass(frozen=True)
class Deletion:
    kind: Literal["image", "snapshot", "object"]
    id: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def survey(adapter: CloudAdapter, region: str, *, keep: int, current: Collection[str], now: datetime,
           profile: str | None = None, bucket: str | None = None,
           orphan_min_age: timedelta = ORPHAN_MIN_AGE) -> Survey:
    """Read what is there and decide; changes nothing."""
    images: list[ImageRef] = adapter.list_images(region)  # every profile's: their snapshots are not orphans
    plan = select(images, keep=keep, current=current, profile=profile)
    doomed = {d.image.image_id for d in plan.delete}
    surviving = [image for image in images if image.image_id not in doomed]
    leftovers = adapter.list_leftovers(region, bucket=bucket)
    # A snapshot of an image about to be deleted goes with the image; it is not an orphan of its own.
    going = {snapshot for d in plan.delete for snapshot in d.image.snapshot_ids}
    orphans = [o for o in find_orphans(leftovers, surviving, now=now, profile=profile, min_age=orphan_min_age)
               if o.id not in going]
    not_searched = []
    if "snapshot" not in adapter.leftover_kinds:
        not_searched.append(f"snapshots (the {adapter.name} adapter lists none)")
    if "object" not in adapter.leftover_kinds:
        not_searched.append(f"uploaded objects (the {adapter.name} adapter lists none)")
    elif bucket is None:
        not_searched.append("uploaded objects (pass --bucket to search the upload bucket)")
    return Survey(adapter.name, region, plan, tuple(orphans), tuple(not_searched))


def carry_out(adapter: CloudAdapter, found: Survey) -> list[Deletion]:
    """Delete the condemned images (with their snapshots), then the orphans. A failure is recorded and the
    rest go on; every deletion is idempotent, so a re-run finishes the job."""
    done: list[Deletion] = []
    for decision in found.plan.delete:
        done.append(_attempt("image", decision.image.image_id,
                             lambda i=decision.image: adapter.delete_image(found.region, i.image_id)))
    for orphan in found.orphans:
        done.append(_attempt(orphan.kind, orphan.id, lambda o=orphan: adapter.delete_leftover(found.region, o)))
    return done


def _attempt(kind: Literal["image", "snapshot", "object"], resource_id: str, delete: Callable[[], None]) -> Deletion:
    try:
        delete()
    except EulerpubError as exc:
        log.error("%s %s: %s", kind, resource_id, exc)
        return Deletion(kind, resource_id, exc.message)
    log.info("deleted %s %s", kind, resource_id)
    return Deletion(kind, resource_id)
