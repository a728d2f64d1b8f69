"""The publish runner when a step breaks in an unexpected way or a cloud job outlives the wait: every region's
failure is that region's row (the source region too, issue 15 item 5), and a job still running is waited on
again by the next run, never started twice (the one start-or-resume path, item 7)."""

from __future__ import annotations

import pytest

from eulerpub.clouds.base import BuildIdentity, DiskImage, PublishSpec
from eulerpub.errors import WaitTimeout
from eulerpub.publish.journal import JournalStore
from eulerpub.publish.runner import publish
from tests.unit.fake_cloud import FakeAdapter, FakeCloud

COPIES = ("r-one-1", "r-two-1")


class BuggyAdapter(FakeAdapter):
    """The fake cloud with a programming error (not an EulerpubError) in `share` for the regions named."""

    def __init__(self, cloud: FakeCloud, broken: set[str]) -> None:
        super().__init__(cloud)
        self.broken = broken

    def share(self, spec, image, accounts, public):
        if image.region in self.broken:
            raise KeyError("grants")
        return super().share(spec, image, accounts, public)


class SlowImportAdapter(FakeAdapter):
    """The fake cloud whose first wait for the import task gives up while the task still runs."""

    waits_to_time_out = 1

    def wait_import(self, spec, task_id, progress):
        if self.waits_to_time_out:
            type(self).waits_to_time_out -= 1
            self.cloud.calls["wait_import"] += 1
            raise WaitTimeout(f"import {task_id} still running")
        return super().wait_import(spec, task_id, progress)


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "disk.raw"
    path.write_bytes(b"0123456789abcdefghijklmnopqrstuv")
    return PublishSpec(
        cloud="fake",
        image=DiskImage(path=path, format="raw", size=32, virtual_size=32, sha256="ab" * 32),
        identity=BuildIdentity(build_id="b-1234", profile="minimal", release="24.03-LTS-SP1", arch="x86_64"),
        name="openEuler-24.03-LTS-SP1-x86_64-minimal-20250101",
        source_region="r-src-1",
        copy_to=COPIES,
        share_with=("111122223333",),
        bucket="bkt",
    )


def test_an_unexpected_error_in_the_source_region_is_its_row_and_the_copies_are_skipped(spec, tmp_path):
    cloud, store = FakeCloud(), JournalStore(tmp_path / "journal")

    result = publish(spec, BuggyAdapter(cloud, {"r-src-1"}), store)

    by_region = {r.region: r for r in result.regions}
    assert not result.ok
    assert by_region["r-src-1"].status == "failed" and by_region["r-src-1"].error == "KeyError: 'grants'"
    assert [by_region[r].status for r in COPIES] == ["skipped", "skipped"]
    assert cloud.calls["copy_image"] == 0

    second = publish(spec, FakeAdapter(cloud), store)  # the bug fixed: the rerun finishes, nothing made twice

    assert second.ok and cloud.calls["upload"] == 1 and cloud.calls["register"] == 1
    assert len(cloud.images["r-src-1"]) == 1


def test_an_unexpected_error_in_one_copy_region_leaves_the_others_done(spec, tmp_path):
    cloud = FakeCloud()

    result = publish(spec, BuggyAdapter(cloud, {"r-one-1"}), JournalStore(tmp_path / "journal"))

    by_region = {r.region: r for r in result.regions}
    assert by_region["r-one-1"].status == "failed" and by_region["r-one-1"].error == "KeyError: 'grants'"
    assert by_region["r-src-1"].status == by_region["r-two-1"].status == "done"


def test_an_import_still_running_is_waited_on_by_the_next_run_not_started_again(spec, tmp_path):
    cloud, store = FakeCloud(), JournalStore(tmp_path / "journal")

    first = publish(spec, SlowImportAdapter(cloud), store)

    assert first.regions[0].status == "failed" and "still running" in first.regions[0].error
    step = store.read("fake", "r-src-1").step("import")
    assert step.status == "running" and step.attempt == 1
    task = step.id

    second = publish(spec, SlowImportAdapter(cloud), store)

    assert second.ok
    assert cloud.calls["start_import"] == 1, "the running task is resumed, not started again"
    assert cloud.calls["wait_import"] == 2
    assert store.read("fake", "r-src-1").step("import").id == task
