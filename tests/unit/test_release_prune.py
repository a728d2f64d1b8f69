"""Prune selection: keep the newest N per profile/release/arch, never the index's current image, orphans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eulerpub.clouds.base import BuildIdentity, ImageRef, Leftover
from eulerpub.release.index import parse_created
from eulerpub.release.prune import find_orphans, select

NOW = datetime(2025, 6, 10, tzinfo=UTC)


def image(image_id: str, day: int, *, profile: str = "min", arch: str = "x86_64", release: str = "24.03",
          state: str = "available", snapshots: tuple[str, ...] = (), tagged: bool = True,
          created: str | None = None) -> ImageRef:
    tags = BuildIdentity(f"build-{image_id}", profile, release, arch).tags() if tagged else {}  # type: ignore[arg-type]
    return ImageRef("aws", "us-east-1", image_id, f"openEuler-{release}-{arch}-{profile}-202506{day:02d}", state,
                    snapshot_ids=snapshots, tags=tags,
                    created=created if created is not None else f"2025-06-{day:02d}T03:00:00.000Z")


def ids(decisions) -> list[str]:
    return [d.image.image_id for d in decisions]


def test_keeps_the_newest_n_per_series_and_deletes_the_rest():
    images = [image("a1", 1), image("a3", 3), image("a2", 2),
              image("b1", 1, arch="aarch64"), image("c1", 1, profile="hpc"), image("c2", 2, profile="hpc")]
    plan = select(images, keep=1, current=set())
    assert sorted(ids(plan.keep)) == ["a3", "b1", "c2"]
    assert sorted(ids(plan.delete)) == ["a1", "a2", "c1"]
    assert plan.untouched == ()
    reasons = {d.image.image_id: d.reason for d in plan.delete}
    assert reasons["a1"] == "older than the newest 1 of min/24.03/x86_64"


def test_keep_two():
    plan = select([image("a1", 1), image("a2", 2), image("a3", 3)], keep=2, current=set())
    assert ids(plan.keep) == ["a3", "a2"]
    assert ids(plan.delete) == ["a1"]


def test_never_deletes_the_image_the_index_marks_current():
    plan = select([image("a1", 1), image("a2", 2), image("a3", 3)], keep=1, current={"a1"})
    assert sorted(ids(plan.keep)) == ["a1", "a3"]
    assert ids(plan.delete) == ["a2"]
    assert next(d for d in plan.keep if d.image.image_id == "a1").reason == "current in the release index"


def test_profile_filter_limits_what_is_judged():
    plan = select([image("a1", 1), image("a2", 2), image("c1", 1, profile="hpc"), image("c2", 2, profile="hpc")],
                  keep=1, current=set(), profile="hpc")
    assert ids(plan.keep) == ["c2"]
    assert ids(plan.delete) == ["c1"]


def test_pending_untagged_and_undated_images_are_left_alone_and_failed_ones_go():
    images = [image("p", 9, state="pending"), image("u", 1, tagged=False), image("d", 1, created="yesterday"),
              image("f", 1, state="failed"), image("ok", 2)]
    plan = select(images, keep=1, current=set())
    assert sorted(ids(plan.untouched)) == ["d", "p", "u"]
    assert ids(plan.delete) == ["f"]
    assert ids(plan.keep) == ["ok"]


def test_same_day_ties_break_on_the_name_so_the_choice_is_stable():
    first = image("x", 1)
    second = ImageRef(**{**vars(first), "image_id": "y", "name": first.name + "-r2"})
    assert ids(select([first, second], keep=1, current=set()).keep) == ["y"]
    assert ids(select([second, first], keep=1, current=set()).keep) == ["y"]


def test_keep_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        select([], keep=0, current=set())


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-06-01T03:58:41.000Z", datetime(2025, 6, 1, 3, 58, 41, tzinfo=UTC)),
    ("2025-06-01T11:58:41+08:00", datetime(2025, 6, 1, 3, 58, 41, tzinfo=UTC)),
    ("2025-06-01 03:58:41", datetime(2025, 6, 1, 3, 58, 41, tzinfo=UTC)),
    ("", None), ("soon", None),
])
def test_parse_created_reads_each_clouds_format(text, expected):
    assert parse_created(text) == expected


def leftover(kind: str, leftover_id: str, *, build: str, age: timedelta = timedelta(days=3),
             managed: bool = True, profile: str = "min") -> Leftover:
    tags = BuildIdentity(build, profile, "24.03", "x86_64").tags() if managed else {}
    return Leftover(kind, leftover_id, (NOW - age).isoformat(), tags)  # type: ignore[arg-type]


def test_orphans_are_old_managed_leftovers_no_image_uses():
    images = [image("a1", 1, snapshots=("snap-used",))]
    leftovers = [
        leftover("snapshot", "snap-used", build="build-a1"),
        leftover("snapshot", "snap-lost", build="build-gone"),
        leftover("snapshot", "snap-young", build="build-new", age=timedelta(hours=2)),
        leftover("snapshot", "snap-foreign", build="x", managed=False),
        leftover("object", "eulerpub/build-gone/disk.qcow2", build="build-gone"),
        leftover("object", "eulerpub/build-a1/disk.raw", build="build-a1"),  # kept with --keep-object
        leftover("snapshot", "snap-hpc", build="build-h", profile="hpc"),
    ]
    found = [o.id for o in find_orphans(leftovers, images, now=NOW)]
    assert found == ["snap-lost", "eulerpub/build-gone/disk.qcow2", "snap-hpc"]
    assert [o.id for o in find_orphans(leftovers, images, now=NOW, profile="hpc")] == ["snap-hpc"]
