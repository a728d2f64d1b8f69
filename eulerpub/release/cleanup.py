"""Prune in one cloud region: survey what eulerpub published there, then delete what the survey condemned.

The decisions are `eulerpub.release.prune`'s (pure); this module only asks the adapter and carries them out.
Images go with `delete_image` (the image and the snapshots behind it). Orphaned snapshots and objects need an
adapter that can list them (`LeftoverLister`); with one that cannot, the survey says orphans were not searched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from eulerpub.clouds.base import CloudAdapter, ImageRef
from eulerpub.errors import EulerpubError
from eulerpub.release.prune import Leftover, PrunePlan, find_orphans, select

log = logging.getLogger(__name__)


@runtime_checkable
class LeftoverLister(Protocol):
    """What an adapter offers so prune can find orphans: eulerpub-tagged snapshots and uploaded objects."""

    def list_leftovers(self, region: str, *, bucket: str | None = None) -> list[Leftover]:
        """Snapshots in `region` (and objects under `eulerpub/` in `bucket`, if given) tagged
        `managed-by=eulerpub`, whether or not an image uses them. Read-only."""
        ...

    def delete_leftover(self, region: str, leftover: Leftover) -> None:
        """Delete one snapshot or object. Idempotent: one already gone is fine."""
        ...


@dataclass(frozen=True)
class Survey:
    cloud: str
    region: str
    plan: PrunePlan
    orphans: tuple[Leftover, ...]
    orphans_searched: bool


@dataclass(frozen=True)
class Deletion:
    kind: Literal["image", "snapshot", "object"]
    id: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def survey(adapter: CloudAdapter, region: str, *, keep: int, current: Collection[str], now: datetime,
           profile: str | None = None, bucket: str | None = None) -> Survey:
    """Read what is there and decide; changes nothing."""
    images: list[ImageRef] = adapter.list_images(region)  # every profile's: their snapshots are not orphans
    plan = select(images, keep=keep, current=current, profile=profile)
    if not isinstance(adapter, LeftoverLister):
        return Survey(adapter.name, region, plan, (), orphans_searched=False)
    doomed = {d.image.image_id for d in plan.delete}
    surviving = [image for image in images if image.image_id not in doomed]
    leftovers = adapter.list_leftovers(region, bucket=bucket)
    # A snapshot of an image about to be deleted goes with the image; it is not an orphan of its own.
    going = {snapshot for d in plan.delete for snapshot in d.image.snapshot_ids}
    orphans = [o for o in find_orphans(leftovers, surviving, now=now, profile=profile) if o.id not in going]
    return Survey(adapter.name, region, plan, tuple(orphans), orphans_searched=True)


def carry_out(adapter: CloudAdapter, found: Survey) -> list[Deletion]:
    """Delete the condemned images (with their snapshots), then the orphans. A failure is recorded and the
    rest go on; every deletion is idempotent, so a re-run finishes the job."""
    done: list[Deletion] = []
    for decision in found.plan.delete:
        done.append(_attempt("image", decision.image.image_id,
                             lambda i=decision.image: adapter.delete_image(found.region, i.image_id)))
    if found.orphans and isinstance(adapter, LeftoverLister):  # orphans are only ever found through it
        for orphan in found.orphans:
            done.append(_attempt(orphan.kind, orphan.id,
                                 lambda o=orphan: adapter.delete_leftover(found.region, o)))
    return done


def _attempt(kind: Literal["image", "snapshot", "object"], resource_id: str, delete: Callable[[], None]) -> Deletion:
    try:
        delete()
    except EulerpubError as exc:
        log.error("%s %s: %s", kind, resource_id, exc)
        return Deletion(kind, resource_id, exc.message)
    log.info("deleted %s %s", kind, resource_id)
    return Deletion(kind, resource_id)
