"""The publish runner against an in-memory cloud: fan-out, one region failing, resume, idempotent re-runs."""

from __future__ import annotations

import shutil

import pytest

from eulerpub.clouds.base import BuildIdentity, DiskImage, PublishSpec
from eulerpub.errors import UsageError
from eulerpub.publish.journal import JournalStore
from eulerpub.publish.runner import publish
from tests.unit.fake_cloud import FakeAdapter, FakeCloud, Interrupted

COPIES = ("r-one-1", "r-two-1", "r-three-1")


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "disk.raw"
    path.write_bytes(b"0123456789abcdefghijklmnopqrstuv")  # 8 fake parts
    return PublishSpec(
        cloud="fake",
        image=DiskImage(path=path, format="raw", size=32, virtual_size=32, sha256="ab" * 32),
        identity=BuildIdentity(build_id="b-1234", profile="minimal", release="24.03-LTS-SP1", arch="x86_64"),
        name="openEuler-24.03-LTS-SP1-x86_64-minimal-20250101",
        source_region="r-src-1",
        copy_to=COPIES,
        share_with=("111122223333",),
        tags={"team": "cloud"},
        bucket="bkt",
    )


@pytest.fixture
def cloud():
    return FakeCloud()


@pytest.fixture
def store(tmp_path):
    return JournalStore(tmp_path / "journal")


def image_ids(result):
    return {r.region: r.image_id for r in result.regions}


def test_publishes_source_then_copies_shares_and_tags_everywhere(spec, cloud, store):
    result = publish(spec, FakeAdapter(cloud), store)

    assert result.ok
    assert [r.region for r in result.regions] == ["r-src-1", *COPIES]
    assert all(r.created for r in result.regions)
    assert [r.created_at for r in result.regions] == [cloud.images[r.region][r.image_id].created
                                                      for r in result.regions]
    assert all(r.created_at for r in result.regions)
    for region in spec.regions:
        (image,) = cloud.images[region].values()
        assert image.state == "available"
        assert image.tags["eulerpub:build-id"] == "b-1234"
        assert image.tags["managed-by"] == "eulerpub"
        assert image.tags["team"] == "cloud"
        assert cloud.shares[image.image_id] == {"111122223333"}
    assert cloud.objects == {}, "the temporary object is deleted after the import"
    assert result.sent_bytes == 32
    journal = store.read("fake", "r-two-1")
    assert journal.image_id == result.regions[2].image_id
    assert journal.done("copy") and journal.shares == ["111122223333"]


def test_rerun_after_success_creates_nothing_and_reports_the_same_ids(spec, cloud, store):
    first = publish(spec, FakeAdapter(cloud), store)
    calls_before = dict(cloud.calls)

    second = publish(spec, FakeAdapter(cloud), store)

    assert second.ok and image_ids(second) == image_ids(first)
    assert not any(r.created for r in second.regions)
    assert [r.created_at for r in second.regions] == [r.created_at for r in first.regions]
    for create in ("upload", "start_import", "register", "copy_image", "share"):
        assert cloud.calls[create] == calls_before.get(create, 0), create
    assert sum(len(images) for images in cloud.images.values()) == 4


def test_lost_journal_is_rebuilt_from_tags_without_duplicates(spec, cloud, store, tmp_path):
    first = publish(spec, FakeAdapter(cloud), store)
    shutil.rmtree(store.root)

    second = publish(spec, FakeAdapter(cloud), store)

    assert image_ids(second) == image_ids(first)
    assert cloud.calls["upload"] == 1 and cloud.calls["copy_image"] == 3
    assert store.read("fake", "r-one-1").image_id == first.regions[1].image_id


def test_one_region_failing_does_not_stop_the_others_and_rerun_finishes_only_it(spec, cloud, store):
    cloud.fail_copy_to = {"r-two-1"}

    first = publish(spec, FakeAdapter(cloud), store)

    assert not first.ok
    by_region = {r.region: r for r in first.regions}
    assert by_region["r-two-1"].status == "failed"
    assert "the region is broken" in by_region["r-two-1"].error
    assert [r.region for r in first.failed] == ["r-two-1"]
    for region in ("r-src-1", "r-one-1", "r-three-1"):
        assert by_region[region].status == "done"
    assert "r-two-1" not in cloud.images or not cloud.images["r-two-1"]

    cloud.fail_copy_to = set()
    copies_before = cloud.calls["copy_image"]
    second = publish(spec, FakeAdapter(cloud), store)

    assert second.ok
    assert cloud.calls["copy_image"] == copies_before + 1, "only the missing region is copied"
    assert cloud.calls["upload"] == 1
    second_by_region = {r.region: r for r in second.regions}
    assert second_by_region["r-two-1"].created
    assert not second_by_region["r-one-1"].created
    assert second_by_region["r-one-1"].image_id == by_region["r-one-1"].image_id


def test_interrupted_upload_resumes_from_the_checkpoint(spec, cloud, store):
    cloud.interrupt_upload_after_parts = 3

    with pytest.raises(Interrupted):
        publish(spec, FakeAdapter(cloud), store)
    saved = store.read("fake", "r-src-1").step("upload")
    assert saved.status == "running" and saved.data["parts"] == [0, 1, 2]

    result = publish(spec, FakeAdapter(cloud), store)

    assert result.ok
    assert cloud.parts_sent == 8, "parts sent before the interruption are not sent again"
    assert result.sent_bytes == 32 - 3 * 4


def test_failed_import_is_reported_and_retried_with_a_new_token_from_the_kept_upload(spec, cloud, store):
    cloud.fail_import_times = 1

    first = publish(spec, FakeAdapter(cloud), store)

    assert not first.ok
    assert first.regions[0].status == "failed" and "task ended in error" in first.regions[0].error
    assert {r.status for r in first.regions[1:]} == {"skipped"}
    assert spec.object_key in cloud.objects, "the object is kept after a failed import"
    journal = store.read("fake", "r-src-1")
    assert journal.step("import").status == "failed" and journal.step("import").attempt == 2

    second = publish(spec, FakeAdapter(cloud), store)

    assert second.ok
    assert cloud.calls["upload"] == 1, "the kept upload is imported again, not re-uploaded"
    assert len(set(cloud.tokens)) == 1 + len(COPIES) + 1, "the second import used a fresh client token"
    assert spec.object_key not in cloud.objects


def test_name_taken_by_another_build_in_a_copy_region_stops_before_any_upload(spec, cloud, store):
    other = PublishSpec(**{**spec.__dict__, "identity": BuildIdentity("b-other", "minimal", "24.03-LTS-SP1",
                                                                      "x86_64"), "copy_to": ()})
    other = PublishSpec(**{**other.__dict__, "source_region": "r-three-1"})
    publish(other, FakeAdapter(cloud), JournalStore(store.root.parent / "other"))
    uploads = cloud.calls["upload"]

    with pytest.raises(UsageError, match=r"already exists in r-three-1"):
        publish(spec, FakeAdapter(cloud), store)
    assert cloud.calls["upload"] == uploads


def test_keep_object_leaves_the_upload_in_place(spec, cloud, store):
    spec = PublishSpec(**{**spec.__dict__, "keep_object": True, "copy_to": ()})
    publish(spec, FakeAdapter(cloud), store)
    assert spec.object_key in cloud.objects
    assert cloud.calls["discard_upload"] == 0
