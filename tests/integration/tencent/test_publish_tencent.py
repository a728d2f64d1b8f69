"""`eulerpub publish --cloud tencent` end to end against the CVM emulator and moto as COS."""

from __future__ import annotations

import pytest

from eulerpub.clouds import get_adapter
from tests.integration.sdkclouds import RELEASE, report, rows
from tests.integration.sdkclouds_scenarios import (  # noqa: F401  (the shared scenarios run for Tencent here)
    test_failed_and_stuck_copies_fail_alone_and_a_rerun_finishes_only_them,
    test_failed_import_keeps_the_object_and_a_rerun_imports_it_without_uploading,
    test_kill_during_the_import_wait_resumes_waiting_on_the_same_import,
    test_kill_during_upload_resumes_the_same_multipart_upload,
    test_missing_credentials_name_the_variable,
    test_rerun_after_success_creates_nothing,
    test_wrong_secret_is_one_sentence_and_appears_in_no_output_or_record,
)


@pytest.mark.parametrize(("arch", "architecture", "boot_mode", "os"), [
    ("x86_64", "x86_64", "Legacy BIOS", ("OpenEuler", "24.03")),
    ("aarch64", "arm_64", "UEFI", ("OpenEuler", "24.03")),
])
def test_publish_imports_syncs_and_shares_with_the_right_fields(harness, cli, images, arch, architecture,
                                                                boot_mode, os):
    result = cli(*harness.args(images["qcow2"], arch=arch))

    assert result.exit_code == 0, result.stderr
    regions = rows(result.stdout)
    assert list(regions) == list(harness.regions)
    (imported,) = harness.emulator.calls("ImportImage")
    url = imported.body["ImageUrl"]
    assert url.startswith(f"https://{harness.bucket}.cos.{harness.source}.myqcloud.com/eulerpub/")
    (source,) = harness.images(harness.source)
    assert (source.architecture, source.boot_mode, (source.os_type, source.os_version)) == (architecture, boot_mode,
                                                                                            os)
    assert source.tags["eulerpub:build-id"] == report(result.stdout)["build_id"]
    assert source.tags["eulerpub:arch"] == arch and source.tags["eulerpub:release"] == RELEASE
    assert source.tags["managed-by"] == "eulerpub"
    for region in harness.regions:
        (image,) = harness.images(region)
        assert image.id == regions[region]["image_id"] and image.state == "NORMAL"
        assert image.architecture == architecture and image.boot_mode == boot_mode
        assert f"[eulerpub build {source.tags['eulerpub:build-id']}]" in image.description
        assert list(image.shared_with) == [harness.share]
        assert regions[region]["shares"] == [harness.share]
    synced = harness.emulator.calls("SyncImages")
    assert sorted(r for c in synced for r in c.body["DestinationRegions"]) == sorted(harness.regions[1:])
    assert all(c.body["ImageIds"] == [source.id] for c in synced)
    assert harness.objects() == []


def test_an_os_cvm_does_not_list_for_the_arch_is_imported_as_other_linux(harness, cli, images):
    harness.emulator.import_os = [os for os in harness.emulator.import_os if os.os_name != "OpenEuler"]

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 0, result.stderr
    (imported,) = harness.emulator.calls("ImportImage")
    assert (imported.body["OsType"], imported.body["OsVersion"]) == ("Other Linux", "-")


def test_a_name_longer_than_cvm_allows_is_refused_before_anything_is_created(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--name", "openEuler-" + "x" * 60))

    assert result.exit_code == 2
    assert "Tencent Cloud allows 60" in result.stderr
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []


def test_a_failed_sync_leaves_no_failed_copy_behind_after_the_rerun(harness, cli, images):
    harness.emulator.faults.add("fail", action="SyncImages", region=harness.regions[1])
    assert cli(*harness.args(images["qcow2"])).exit_code == 1
    assert [i.state for i in harness.images(harness.regions[1])] == ["CREATEFAILED"]

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 0, result.stderr
    assert [i.state for i in harness.images(harness.regions[1])] == ["NORMAL"]
    assert len(harness.emulator.calls("DeleteImages")) == 1


def test_delete_image_cancels_sharing_first_and_is_idempotent(harness, cli, images):
    result = cli(*harness.args(images["qcow2"]))
    assert result.exit_code == 0, result.stderr
    adapter = get_adapter("tencent")

    for region, row in rows(result.stdout).items():
        adapter.delete_image(region, row["image_id"])
        adapter.delete_image(region, row["image_id"])  # already gone: fine
        assert harness.images(region) == []
    assert [c.body["Permission"] for c in harness.emulator.calls("ModifyImageSharePermission")] == \
        ["SHARE"] * 3 + ["CANCEL"] * 3


def test_list_images_finds_synced_copies_by_their_description_marker(harness, cli, images):
    result = cli(*harness.args(images["qcow2"]))
    assert result.exit_code == 0, result.stderr
    adapter = get_adapter("tencent")
    build_id = report(result.stdout)["build_id"]

    for region, row in rows(result.stdout).items():
        (listed,) = adapter.list_images(region)
        assert (listed.image_id, listed.build_id, listed.state) == (row["image_id"], build_id, "available")
        assert adapter.find_image(region, build_id) == listed
    assert harness.images(harness.regions[1])[0].tags == {}  # SyncImages copies no tags
