"""Which published images to keep and which to delete, and which leftovers are orphans. Pure: no cloud calls.

Per (profile, release, arch) the newest `keep` available images stay; older ones go, except any image the
release index marks as current. Images still being made are never touched; failed ones always go (nothing
can launch them). Images whose eulerpub tags or creation time cannot be read are left alone and reported.
An orphan is a snapshot or uploaded object tagged by eulerpub that no image uses, older than
`ORPHAN_MIN_AGE` (younger ones may belong to a publish still running).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from eulerpub.clouds.base import MANAGED_BY, TAG_ARCH, TAG_MANAGED_BY, TAG_PROFILE, TAG_RELEASE, ImageRef, Leftover
from eulerpub.release.index import parse_created
from eulerpub.release.matrix import BuildKey

# A publish that is still uploading or importing owns snapshots and objects with no image yet. The slowest
# step (a large import, or a copy) takes hours; a day is well past any publish eulerpub waits for.
ORPHAN_MIN_AGE = timedelta(days=1)


@dataclass(frozen=True)
class Decision:
    image: ImageRef
    reason: str  # why it is kept or deleted, for the dry-run listing


@dataclass(frozen=True)
class PrunePlan:
    keep: tuple[Decision, ...] = ()
    delete: tuple[Decision, ...] = ()
    untouched: tuple[Decision, ...] = ()  # images prune cannot judge (missing tags, unreadable date, pending)


def series_of(image: ImageRef) -> BuildKey | None:
    tags = image.tags
    if tags.get(TAG_MANAGED_BY) != MANAGED_BY or not all(tags.get(t) for t in (TAG_PROFILE, TAG_RELEASE, TAG_ARCH)):
        return None
    return BuildKey(tags[TAG_PROFILE], tags[TAG_RELEASE], tags[TAG_ARCH])


def select(images: Iterable[ImageRef], *, keep: int, current: Collection[str],
           profile: str | None = None) -> PrunePlan:
    """Decide for every image (of `profile`, if given) whether it stays or goes."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    kept: list[Decision] = []
    doomed: list[Decision] = []
    untouched: list[Decision] = []
    groups: dict[BuildKey, list[tuple[datetime, ImageRef]]] = {}
    for image in images:
        series = series_of(image)
        created = parse_created(image.created)
        if series is None:
            untouched.append(Decision(image, "not tagged as an eulerpub image of a profile/release/arch"))
        elif profile is not None and series.profile != profile:
            continue
        elif image.state == "pending":
            untouched.append(Decision(image, "still being made"))
        elif image.image_id in current:
            kept.append(Decision(image, "current in the release index"))
        elif image.state == "failed":
            doomed.append(Decision(image, "failed (cannot be launched)"))
        elif created is None:
            untouched.append(Decision(image, f"creation time {image.created!r} unreadable"))
        else:
            groups.setdefault(series, []).append((created, image))
    for series, members in sorted(groups.items(), key=lambda item: str(item[0])):
        members.sort(key=lambda m: (m[0], m[1].name), reverse=True)
        for rank, (_, image) in enumerate(members, start=1):
            if rank <= keep:
                kept.append(Decision(image, f"newest {rank} of {series}"))
            else:
                doomed.append(Decision(image, f"older than the newest {keep} of {series}"))
    return PrunePlan(tuple(kept), tuple(doomed), tuple(untouched))


def find_orphans(leftovers: Iterable[Leftover], images: Iterable[ImageRef], *, now: datetime,
                 profile: str | None = None, min_age: timedelta = ORPHAN_MIN_AGE) -> list[Leftover]:
    """Leftovers tagged by eulerpub (of `profile`, if given) that no image in the region uses: a snapshot no
    image is made from, an uploaded object whose build has no image (one whose build has an image was kept
    on purpose with --keep-object). Only those older than `min_age`: a publish still running keeps its own."""
    images = list(images)
    used_snapshots = {snapshot for image in images for snapshot in image.snapshot_ids}
    imaged_builds = {image.build_id for image in images if image.build_id}
    orphans = []
    for leftover in leftovers:
        if leftover.tags.get(TAG_MANAGED_BY) != MANAGED_BY:
            continue
        if profile is not None and leftover.tags.get(TAG_PROFILE) != profile:
            continue
        created = parse_created(leftover.created)
        if created is None or now - created < min_age:
            continue
        if leftover.kind == "snapshot" and leftover.id in used_snapshots:
            continue
        if leftover.kind == "object" and leftover.build_id in imaged_builds:
            continue
        orphans.append(leftover)
    return orphans
