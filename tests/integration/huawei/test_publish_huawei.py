"""`eulerpub publish --cloud huawei` end to end against the IMS emulator and moto as OBS."""

from __future__ import annotations

import base64
import hashlib

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkims.v2 import ImportImageQuickRequest, QuickImportImageByFileRequestBody

from eulerpub.clouds import get_adapter
from tests.integration.huawei.conftest import AGENCY
from tests.integration.sdkclouds import RELEASE, report, rows, s3
from tests.integration.sdkclouds_scenarios import (  # noqa: F401  (the shared scenarios run for Huawei here)
    test_failed_and_stuck_copies_fail_alone_and_a_rerun_finishes_only_them,
    test_failed_import_keeps_the_object_and_a_rerun_imports_it_without_uploading,
    test_kill_during_the_import_wait_resumes_waiting_on_the_same_import,
    test_kill_during_upload_resumes_the_same_multipart_upload,
    test_missing_credentials_name_the_variable,
    test_rerun_after_success_creates_nothing,
    test_rerun_without_the_journal_finds_every_image_by_its_tag,
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
    assert tags["eulerpub-build-id"] == report(result.stdout)["build_id"]  # IMS's strict keys: no ':'
    assert not any(":" in key for key in tags)
    for region in harness.regions:
        (image,) = harness.images(region)
        assert image.id == regions[region]["image_id"] and image.status == "active"
        assert (image.architecture, image.firmware) == (architecture, firmware)
        assert image.os.os_version == "openEuler 24.03 64bit"
        assert image.tags == tags
        assert image.tags["eulerpub-arch"] == arch and image.tags["eulerpub-release"] == RELEASE
        assert image.tags["managed-by"] == "eulerpub"
        assert f"[eulerpub build {image.tags['eulerpub-build-id']}]" in image.description
        assert list(image.members) == [harness.share]
        assert regions[region]["shares"] == [harness.share]
    copies = harness.emulator.calls("CopyImageCrossRegion")
    assert {c.body["region"] for c in copies} == set(harness.regions[1:])
    assert {c.body["agency_name"] for c in copies} == {AGENCY}
    assert harness.objects() == []
    assert not harness.emulator.calls("ListOsVersions")[0].error


def test_keep_object_leaves_the_upload_in_obs(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--keep-object"))

    assert result.exit_code == 0, result.stderr
    assert len(harness.objects()) == 1


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_quick_import_is_refused_before_anything_is_uploaded(harness, cli, images, fmt):
    """IMS fast-imports ZVHD2, or RAW with a qemu-img-hw bitmap file; eulerpub makes neither, and the emulator
    refuses a RAW quick import without its bitmap (as IMS does), so the request is never sent."""
    result = cli(*harness.args(images[fmt], "--quick-import"))

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "ZVHD2" in line and "bitmap" in line and "publish without --quick-import" in line
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []


def test_the_emulator_refuses_a_raw_quick_import_without_a_bitmap(harness):
    """The rule the refusal above keeps eulerpub away from: a RAW quick import without its bitmap fails."""
    body = b"\0" * 512
    s3(harness.moto, harness.source).put_object(Bucket=harness.bucket, Key="by-hand/disk.raw", Body=body,
                                                ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode())
    client = get_adapter("huawei")._client(harness.source)
    request = QuickImportImageByFileRequestBody(name="by-hand", image_url=f"{harness.bucket}:by-hand/disk.raw",
                                                os_version="openEuler 24.03 64bit", min_disk=1, type="ECS")

    with pytest.raises(ClientRequestException, match="only ZVHD2, or RAW with its bitmap file"):
        client.import_image_quick(ImportImageQuickRequest(body=request))
    assert harness.images(harness.source) == []


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
