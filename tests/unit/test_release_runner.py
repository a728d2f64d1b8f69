"""The cell runner with fake steps: the boot-test gate, independent cells, serialized builds, cheap re-runs."""

from __future__ import annotations

import pytest

from eulerpub.release.matrix import BuildKey, Cell
from eulerpub.release.plan import make_plan
from eulerpub.release.runner import Status, exit_ok, run_cells
from tests.unit.release_fakes import FakeSteps

A = BuildKey("min", "24.03", "x86_64")
B = BuildKey("min", "24.03", "aarch64")
C = BuildKey("hpc", "24.03", "x86_64")


def cells_of(key: BuildKey) -> list[Cell]:
    return [Cell(key.profile, key.release, key.arch, "aws", "us-east-1", ("us-west-2",)),
            Cell(key.profile, key.release, key.arch, "huawei", "cn-north-4")]


def plan(*keys: BuildKey, concurrency: int = 4):
    return make_plan([cell for key in keys for cell in cells_of(key)], concurrency)


def statuses(results) -> dict[str, Status]:
    return {r.cell.key: r.status for r in results}


def test_all_cells_published_and_each_build_built_and_tested_once():
    fake = FakeSteps()
    results = run_cells(plan(A, B, C), fake.steps())
    assert [r.cell for r in results] == plan(A, B, C).cells  # plan order, whatever finished first
    assert all(r.status is Status.PUBLISHED and r.built for r in results)
    assert exit_ok(results)
    assert sorted(w for step, w in fake.calls if step == "build") == sorted(map(str, (A, B, C)))
    assert sorted(w for step, w in fake.calls if step == "boot_test") == sorted(map(str, (A, B, C)))
    aws = next(r for r in results if r.cell.cloud == "aws")
    assert [i.region for i in aws.images] == ["us-east-1", "us-west-2"]
    assert aws.publish.artifact_sha256 == fake.records[aws.cell.build].artifact().sha256


def test_a_failing_boot_test_blocks_publishing_that_build_only():
    fake = FakeSteps(failing_tests={B})
    results = run_cells(plan(A, B), fake.steps())
    blocked = [r for r in results if r.cell.build == B]
    assert [r.status for r in blocked] == [Status.TEST_FAILED, Status.TEST_FAILED]
    assert all(r.detail == "cloud-init did not finish" and not r.images for r in blocked)
    assert not any(step == "publish" and what.startswith(str(B)) for step, what in fake.calls)
    assert all(r.status is Status.PUBLISHED for r in results if r.cell.build == A)
    assert not exit_ok(results)


def test_one_failing_cell_does_not_stop_the_others():
    fake = FakeSteps(failing_builds={A}, failing_publishes={cells_of(B)[0].key})
    results = statuses(run_cells(plan(A, B, C), fake.steps()))
    assert results == {
        "min/24.03/x86_64/aws/us-east-1": Status.BUILD_FAILED,
        "min/24.03/x86_64/huawei/cn-north-4": Status.BUILD_FAILED,
        "min/24.03/aarch64/aws/us-east-1": Status.PUBLISH_FAILED,
        "min/24.03/aarch64/huawei/cn-north-4": Status.PUBLISHED,
        "hpc/24.03/x86_64/aws/us-east-1": Status.PUBLISHED,
        "hpc/24.03/x86_64/huawei/cn-north-4": Status.PUBLISHED,
    }


def test_failure_details_carry_the_one_line_reason():
    fake = FakeSteps(failing_builds={A}, failing_publishes={cells_of(C)[1].key})
    results = {r.cell.key: r for r in run_cells(plan(A, C), fake.steps())}
    assert results["min/24.03/x86_64/aws/us-east-1"].detail.startswith("`disk-image-create vm` failed")
    assert results["hpc/24.03/x86_64/huawei/cn-north-4"].detail == \
        "huawei/cn-north-4: import failed: ImportTaskFailed"


def test_a_failed_copy_region_fails_the_cell_but_keeps_the_images_in_place():
    fake = FakeSteps(failing_copies={"us-west-2"})
    result = next(r for r in run_cells(plan(A), fake.steps()) if r.cell.cloud == "aws")
    assert result.status is Status.PUBLISH_FAILED
    assert result.detail == "us-west-2: copy failed"
    assert [i.region for i in result.images] == ["us-east-1"]


def test_an_unexpected_exception_is_contained_in_its_cell():
    fake = FakeSteps()
    steps = fake.steps()

    def broken_publish(cell, built, upload_slot):
        if cell.cloud == "huawei":
            raise KeyError("ImageId")
        return fake.publish(cell, built, upload_slot)

    results = statuses(run_cells(plan(A), type(steps)(steps.find_build, steps.build, steps.boot_test,
                                                       broken_publish)))
    assert results == {"min/24.03/x86_64/aws/us-east-1": Status.PUBLISHED,
                       "min/24.03/x86_64/huawei/cn-north-4": Status.PUBLISH_FAILED}


@pytest.mark.parametrize("concurrency", [3, 8])
def test_builds_never_overlap(concurrency):
    fake = FakeSteps(overlap_window_s=0.3)  # each build waits up to 0.3 s for a second one to join it
    run_cells(plan(A, B, C, concurrency=concurrency), fake.steps())
    assert fake.most_builds_at_once == 1
    assert len([c for c in fake.calls if c[0] == "build"]) == 3


def test_the_concurrency_bounds_boot_tests_and_uploads_while_every_cell_waits_at_once():
    """release.yaml's concurrency is for the machine and its link (a VM per boot test, the bytes of an upload);
    a cell waiting on the cloud (import and copy polls) holds neither, so every cell waits at the same time."""
    keys = [BuildKey("min", f"24.{n:02d}", "x86_64") for n in range(1, 7)]
    # a boot test or an upload holds on for a third (never to come) for 50 ms; a wait until all 12 wait, up to 5 s
    fake = FakeSteps(company={"boot_test": (3, 0.05), "upload": (3, 0.05), "wait": (12, 5.0)})
    results = run_cells(plan(*keys, concurrency=2), fake.steps())
    assert all(r.status is Status.PUBLISHED for r in results) and len(results) == 12
    assert fake.most_at_once["boot_test"] == 2  # as many as allowed, never more
    assert fake.most_at_once["upload"] == 2
    assert fake.most_at_once["wait"] == 12  # every cell's cloud-side wait overlaps every other's


def test_a_re_run_reuses_builds_and_creates_no_image():
    fake = FakeSteps()
    first = run_cells(plan(A, C), fake.steps())
    images_after_first = dict(fake.images)
    fake.calls.clear()
    second = run_cells(plan(A, C), fake.steps())
    assert fake.images == images_after_first
    assert not any(step == "build" for step, _ in fake.calls)
    assert all(r.status is Status.PUBLISHED and not r.built for r in second)
    assert not any(image.new for r in second for image in r.images)
    assert [i.image_id for r in first for i in r.images] == [i.image_id for r in second for i in r.images]


def test_on_result_sees_every_cell_once():
    seen = []
    run_cells(plan(A, B), FakeSteps().steps(), on_result=seen.append)
    assert sorted(r.cell.key for r in seen) == sorted(c.key for c in plan(A, B).cells)


def test_without_publishing_cells_stop_after_the_gate():
    fake = FakeSteps(failing_tests={B})
    results = run_cells(plan(A, B), fake.steps(), publish=False)
    assert statuses(results) == {
        "min/24.03/x86_64/aws/us-east-1": Status.TESTED, "min/24.03/x86_64/huawei/cn-north-4": Status.TESTED,
        "min/24.03/aarch64/aws/us-east-1": Status.TEST_FAILED,
        "min/24.03/aarch64/huawei/cn-north-4": Status.TEST_FAILED}
    assert not any(step == "publish" for step, _ in fake.calls)
    assert fake.images == {}
    assert not exit_ok(results)
    assert exit_ok([r for r in results if r.cell.build == A])
