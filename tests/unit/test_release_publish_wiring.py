"""The release runner through the real publish core (journal, fan-out, idempotence) on the in-memory cloud,
and prune's survey/carry-out on the same cloud."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eulerpub.clouds.base import BuildIdentity, ImageRef, Leftover
from eulerpub.manifest import Artifact, BaseImage, BuildRecord, write_record
from eulerpub.profiles import Profile
from eulerpub.release.cleanup import carry_out, survey
from eulerpub.release.matrix import BuildKey, Cell
from eulerpub.release.plan import make_plan
from eulerpub.release.runner import BootTest, BuiltImage, Status, Steps, run_cells
from eulerpub.release.wiring import Publisher
from tests.disks import hybrid_head
from tests.unit.fake_cloud import FakeAdapter, FakeCloud

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
PROFILES = {"min": Profile(name="min", releases=["24.03"], arches=["x86_64", "aarch64"])}
NOW = datetime(2025, 6, 10, tzinfo=UTC)


def built(tmp_path: Path, key: BuildKey) -> BuiltImage:
    directory = tmp_path / key.arch
    directory.mkdir()
    disk = directory / "disk.raw"
    disk.write_bytes(hybrid_head(1 << 20))  # a real partition table: publish inspects a disk before it spends
    digest = hashlib.sha256(disk.read_bytes()).hexdigest()
    record = BuildRecord(build_id=f"build-{key.arch}", profile=key.profile, release=key.release, arch=key.arch,
                         base=BaseImage(url="http://mirror/base", sha256="0" * 64), elements_hash="e",
                         elements=["vm"], image_name=f"openEuler-{key.release}-{key.arch}-min-20250601",
                         artifacts=[Artifact(format="raw", path="disk.raw", size=disk.stat().st_size,
                                             virtual_size=disk.stat().st_size, sha256=digest)])
    return BuiltImage(write_record(directory, record), record, reused=True)


def test_cells_publish_through_the_publish_core_and_a_re_run_creates_nothing(tmp_path):
    cloud = FakeCloud(regions=REGIONS, part_size=4096)
    builds = {key: built(tmp_path, key) for key in (BuildKey("min", "24.03", "x86_64"),
                                                    BuildKey("min", "24.03", "aarch64"))}
    steps = Steps(find_build=builds.get, build=lambda key: builds[key], boot_test=lambda b: BootTest(True),
                  publish=Publisher(PROFILES, adapter_for=lambda name: FakeAdapter(cloud)))
    cells = [Cell("min", "24.03", arch, "aws", "us-east-1", ("us-west-2",), ("123456789012",))
             for arch in ("x86_64", "aarch64")]
    first = run_cells(make_plan(cells, 2), steps)
    assert [r.status for r in first] == [Status.PUBLISHED, Status.PUBLISHED]
    assert all([i.region for i in r.images] == ["us-east-1", "us-west-2"] and all(i.new for i in r.images)
               for r in first)
    assert first[0].images[0].name == "openEuler-24.03-x86_64-min-20250601"
    made = {i.image_id: i.created for images in cloud.images.values() for i in images.values()}
    assert all(i.created and i.created == made[i.image_id] for r in first for i in r.images)
    # The creation times come with the publish result: nothing is looked up again after publishing.
    assert cloud.calls["find_image"] == 2 * 3  # per cell: source and copy checks, and register's own
    assert first[0].publish.artifact_sha256 == builds[cells[0].build].record.artifact().sha256
    assert all(cloud.shares[i.image_id] == {"123456789012"} for r in first for i in r.images)
    uploads = cloud.calls["upload"]

    second = run_cells(make_plan(cells, 2), steps)
    assert [r.status for r in second] == [Status.PUBLISHED, Status.PUBLISHED]
    assert not any(i.new for r in second for i in r.images)
    assert [i.image_id for r in second for i in r.images] == [i.image_id for r in first for i in r.images]
    assert cloud.calls["upload"] == uploads
    assert sum(len(images) for images in cloud.images.values()) == 4


def test_a_broken_copy_region_fails_its_cell_but_the_source_image_is_indexed(tmp_path):
    cloud = FakeCloud(regions=REGIONS, part_size=4096, fail_copy_to={"eu-west-1"})
    key = BuildKey("min", "24.03", "x86_64")
    image = built(tmp_path, key)
    steps = Steps(find_build=lambda k: image, build=lambda k: image, boot_test=lambda b: BootTest(True),
                  publish=Publisher(PROFILES, adapter_for=lambda name: FakeAdapter(cloud)))
    [result] = run_cells(make_plan([Cell("min", "24.03", "x86_64", "aws", "us-east-1", ("eu-west-1",))], 1), steps)
    assert result.status is Status.PUBLISH_FAILED
    assert result.detail.startswith("eu-west-1: ")
    assert [i.region for i in result.images] == ["us-east-1"]


def seed(cloud: FakeCloud, day: int, *, arch: str = "x86_64") -> ImageRef:
    tags = BuildIdentity(f"b{day}{arch}", "min", "24.03", arch).tags()  # type: ignore[arg-type]
    image = ImageRef("fake", "us-east-1", f"img-{arch}-{day}", f"openEuler-24.03-{arch}-min-2025060{day}",
                     "available", (f"snap-{arch}-{day}",), tags, f"2025-06-0{day}T00:00:00Z")
    cloud.images.setdefault("us-east-1", {})[image.image_id] = image
    return image


def test_prune_survey_then_carry_out_deletes_only_the_condemned(tmp_path):
    cloud = FakeCloud(regions=REGIONS, part_size=4096)
    for day in (1, 2, 3):
        seed(cloud, day)
    seed(cloud, 1, arch="aarch64")
    old = (NOW - timedelta(days=3)).isoformat()
    managed = BuildIdentity("gone", "min", "24.03", "x86_64").tags()
    young = (NOW - timedelta(hours=1)).isoformat()
    cloud.leftovers = [Leftover("snapshot", "snap-x86_64-1", old, managed),  # goes with its image, not an orphan
                       Leftover("snapshot", "snap-x86_64-3", old, managed),  # used by the kept image
                       Leftover("snapshot", "snap-lost", old, managed),
                       Leftover("snapshot", "snap-in-flight", young, managed)]
    adapter = FakeAdapter(cloud)
    found = survey(adapter, "us-east-1", keep=1, current={"img-x86_64-1"}, now=NOW)
    assert sorted(d.image.image_id for d in found.plan.delete) == ["img-x86_64-2"]
    assert [o.id for o in found.orphans] == ["snap-lost"]
    assert found.not_searched == ("uploaded objects (pass --bucket to search the upload bucket)",)
    done = carry_out(adapter, found)
    assert [(d.kind, d.id, d.ok) for d in done] == [("image", "img-x86_64-2", True), ("snapshot", "snap-lost", True)]
    assert sorted(cloud.images["us-east-1"]) == ["img-aarch64-1", "img-x86_64-1", "img-x86_64-3"]
    assert [o.id for o in cloud.leftovers] == ["snap-x86_64-1", "snap-x86_64-3", "snap-in-flight"]


def test_a_younger_orphan_threshold_finds_the_young_leftover_too():
    cloud = FakeCloud(regions=REGIONS, part_size=4096)
    managed = BuildIdentity("gone", "min", "24.03", "x86_64").tags()
    cloud.leftovers = [Leftover("object", "eulerpub/gone/disk.raw", (NOW - timedelta(hours=1)).isoformat(),
                                managed, "bkt")]
    default = survey(FakeAdapter(cloud), "us-east-1", keep=1, current=set(), now=NOW, bucket="bkt")
    assert default.orphans == () and default.not_searched == ()
    eager = survey(FakeAdapter(cloud), "us-east-1", keep=1, current=set(), now=NOW, bucket="bkt",
                   orphan_min_age=timedelta(0))
    assert [o.id for o in eager.orphans] == ["eulerpub/gone/disk.raw"]


def test_what_an_adapter_cannot_list_is_reported_not_guessed():
    cloud = FakeCloud(regions=REGIONS, part_size=4096)
    for day in (1, 2):
        seed(cloud, day)

    class ObjectsOnly(FakeAdapter):
        leftover_kinds = ("object",)

    found = survey(ObjectsOnly(cloud), "us-east-1", keep=1, current=set(), now=NOW)
    assert found.orphans == ()
    assert found.not_searched == ("snapshots (the fake adapter lists none)",
                                  "uploaded objects (pass --bucket to search the upload bucket)")
    assert [d.image.image_id for d in found.plan.delete] == ["img-x86_64-1"]


def test_a_failed_deletion_is_recorded_and_the_rest_go_on():
    cloud = FakeCloud(regions=REGIONS, part_size=4096)
    for day in (1, 2, 3):
        seed(cloud, day)

    class Stubborn(FakeAdapter):
        def delete_image(self, region: str, image_id: str) -> None:
            if image_id == "img-x86_64-1":
                from eulerpub.errors import CloudError

                raise CloudError("fake", region, "delete_image", "InvalidAMIID.InUse", image_id)
            super().delete_image(region, image_id)

    adapter = Stubborn(cloud)
    done = carry_out(adapter, survey(adapter, "us-east-1", keep=1, current=set(), now=NOW))
    assert {d.id: d.ok for d in done} == {"img-x86_64-2": True, "img-x86_64-1": False}
    assert sorted(cloud.images["us-east-1"]) == ["img-x86_64-1", "img-x86_64-3"]
    failed = next(d for d in done if not d.ok)
    assert failed.error == "fake/us-east-1: delete_image on img-x86_64-1 failed: InvalidAMIID.InUse"
