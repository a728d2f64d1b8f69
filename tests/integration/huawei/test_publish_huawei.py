"""`eulerpub publish --cloud huawei` end to end against the IMS emulator and moto as OBS."""

from __future__ import annotations

import pytest

from eulerpub.clouds import get_adapter
from tests.integration.sdkclouds import RELEASE, report, rows
from tests.integration.sdkclouds_scenarios import (  # noqa: F401  (the shared scenarios run for Huawei here)
    test_failed_and_stuck_copies_fail_alone_and_a_rerun_finishes_only_them,
    test_failed_import_keeps_the_object_and_a_rerun_imports_it_without_uploading,
    test_kill_during_the_import_wait_resumes_waiting_on_the_same_import,
    test_kill_during_upload_resumes_the_same_multipart_upload,
    test_missing_credentials_name_the_variable,
    test_rerun_after_success_creates_nothing,
    test_wrong_secret_is_one_sentence_and_appears_in_no_output_or_record,
)


@pytest.mark.parametrize(("arch", "architecture", "firmware"), [("x86_64", "x86", "bios"),
                                                                 ("aarch64", "arm", "uefi")])
def test_publish_imports_copies_and_shares_with_the_right_fields(harness, cli, images, arch, architecture,
                                                                 firmware):
    result = cli(*harness.args(images["qcow2"], arch=arch))

    assert result.exit_code == 0, result.stderr
    regions = rows(result.stdout)
    assert list(regions) == list(harness.regions)
    (create,) = harness.emulator.calls("CreateImage")
    assert create.body["image_url"].startswith(f"{harness.bucket}:eulerpub/")
    assert create.body["min_disk"] == 40 and create.body["type"] == "ECS"
    tags = {t["key"]: t["value"] for t in create.body["image_tags"]}
    assert tags["eulerpub:build-id"] == report(result.stdout)["build_id"]
    for region in harness.regions:
        (image,) = harness.images(region)
        assert image.id == regions[region]["image_id"] and image.status == "active"
        assert (image.architecture, image.firmware) == (architecture, firmware)
        assert image.os.os_version == "openEuler 24.03 64bit"
        assert image.tags == tags
        assert image.tags["eulerpub:arch"] == arch and image.tags["eulerpub:release"] == RELEASE
        assert image.tags["managed-by"] == "eulerpub"
        assert f"[eulerpub build {image.tags['eulerpub:build-id']}]" in image.description
        assert list(image.members) == [harness.share]
        assert regions[region]["shares"] == [harness.share]
    assert {c.body["region"] for c in harness.emulator.calls("CopyImageCrossRegion")} == set(harness.regions[1:])
    assert harness.objects() == []
    assert not harness.emulator.calls("ListOsVersions")[0].error


def test_keep_object_leaves_the_upload_in_obs(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--keep-object"))

    assert result.exit_code == 0, result.stderr
    assert len(harness.objects()) == 1


def test_quick_import_takes_a_raw_image_through_import_image_quick(harness, cli, images):
    result = cli(*harness.args(images["raw"], "--quick-import"))

    assert result.exit_code == 0, result.stderr
    (call,) = harness.emulator.calls("ImportImageQuick")
    assert call.body["os_version"] == "openEuler 24.03 64bit" and call.body["architecture"] == "x86"
    assert harness.emulator.calls("CreateImage") == []


def test_quick_import_refuses_a_qcow2_before_anything_is_created(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--quick-import"))

    assert result.exit_code == 2
    assert "--quick-import takes a raw image, not qcow2" in result.stderr
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []


def test_an_unlisted_release_is_imported_as_other_linux(harness, cli, images):
    result = cli(*[a if a != RELEASE else "25.03" for a in harness.args(images["qcow2"])])

    assert result.exit_code == 0, result.stderr
    (create,) = harness.emulator.calls("CreateImage")
    assert create.body["os_version"] == "Other Linux(64 bit)"


def test_a_missing_project_id_is_named_before_anything_is_created(harness, cli, images, monkeypatch):
    monkeypatch.delenv("HUAWEICLOUD_SDK_PROJECT_ID_CN_SOUTH_1")

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 2
    assert "HUAWEICLOUD_SDK_PROJECT_ID_CN_SOUTH_1" in result.stderr
    assert harness.creates() == 0


def test_images_are_listed_found_and_deleted_idempotently(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], share=False))
    assert result.exit_code == 0, result.stderr
    adapter = get_adapter("huawei")
    build_id = report(result.stdout)["build_id"]

    for region, row in rows(result.stdout).items():
        (listed,) = adapter.list_images(region, profile="custom")
        assert (listed.image_id, listed.build_id, listed.state) == (row["image_id"], build_id, "available")
        assert adapter.find_image(region, build_id) == listed
        adapter.delete_image(region, row["image_id"])
        adapter.delete_image(region, row["image_id"])  # already gone: fine
        assert harness.images(region) == [] and adapter.find_image(region, build_id) is None
