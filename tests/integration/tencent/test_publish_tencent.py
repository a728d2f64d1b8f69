"""`eulerpub publish --cloud tencent` end to end against the CVM emulator and moto as COS."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eulerpub.clouds import get_adapter
from tests.emulators.cvm import ImportOs
from tests.integration.sdkclouds import RELEASE, journal, report, rows
from tests.integration.sdkclouds_scenarios import (  # noqa: F401  (the shared scenarios run for Tencent here)
    test_failed_and_stuck_copies_fail_alone_and_a_rerun_finishes_only_them,
    test_failed_import_keeps_the_object_and_a_rerun_imports_it_without_uploading,
    test_kill_during_the_import_wait_resumes_waiting_on_the_same_import,
    test_kill_during_upload_resumes_the_same_multipart_upload,
    test_missing_credentials_name_the_variable,
    test_rerun_after_success_creates_nothing,
    test_rerun_without_the_journal_finds_every_image_by_its_tag,
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
    dry_run, imported = harness.emulator.calls("ImportImage")
    assert (dry_run.body.pop("DryRun"), dry_run.error) == (True, "DryRunOperation")
    assert dry_run.body == imported.body  # preflight asked CVM about exactly the request the import sent
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


def _real_imports(harness) -> list:
    return [call for call in harness.emulator.calls("ImportImage") if not call.body.get("DryRun")]


@pytest.mark.parametrize("return_image_id", [False, True])
def test_an_import_answer_without_an_image_id_is_found_by_name_and_build_tag(harness, cli, images,
                                                                             return_image_id):
    """ImportImage's ImageId is optional (the API reference's example answers RequestId only)."""
    harness.emulator.return_image_id = return_image_id

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 0, result.stderr
    (source,) = harness.images(harness.source)
    assert rows(result.stdout)[harness.source]["image_id"] == source.id and source.state == "NORMAL"
    record = journal(Path.cwd(), "tencent", harness.source)
    assert record is not None and record["steps"]["import"]["id"] == source.id  # never None in the journal
    assert len(_real_imports(harness)) == 1


@pytest.mark.parametrize(("listed", "expected"), [
    ((ImportOs("Other Linux", ("8",), ("x86_64", "arm_64")),), ("Other Linux", "8")),  # the API reference's
    ((ImportOs("Other Linux", ("9", "8"), ("x86_64",)), ImportOs("OpenEuler", ("22.03",))), ("Other Linux", "9")),
])
def test_an_os_cvm_does_not_list_is_imported_as_other_linux_with_a_version_cvm_lists(harness, cli, images,
                                                                                      listed, expected):
    harness.emulator.import_os = list(listed)

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 0, result.stderr
    (imported,) = _real_imports(harness)
    assert (imported.body["OsType"], imported.body["OsVersion"]) == expected


def test_no_os_cvm_imports_for_the_arch_is_one_sentence_before_the_upload(harness, cli, images):
    harness.emulator.import_os = [ImportOs("Other Linux", ("8",), ("x86_64",))]

    result = cli(*harness.args(images["qcow2"], arch="aarch64"))

    assert result.exit_code == 2
    assert "lists neither openEuler 24.03 nor Other Linux for arm_64 imports" in result.stderr
    assert harness.moto.calls("CreateMultipartUpload") == [] and harness.emulator.calls("ImportImage") == []


@pytest.mark.parametrize("dry_run", [False, True], ids=["publish", "dry-run"])
@pytest.mark.parametrize(("refusal", "arch", "code", "sentence"), [
    ("arm", "aarch64", "UnsupportedOperation.ArmArchitecture", "CVM does not import arm_64 images here"),
    ("region", "x86_64", "RegionAbilityLimit.UnsupportedToImportImage", "this region does not import images"),
])
def test_an_import_cvm_refuses_fails_in_preflight_before_the_upload_in_one_sentence(harness, cli, images, refusal,
                                                                                   arch, code, sentence, dry_run):
    if refusal == "arm":
        harness.emulator.arm_import = False
    else:
        harness.emulator.import_unsupported_regions = {harness.source}

    result = cli(*harness.args(images["qcow2"], *(["--dry-run"] if dry_run else []), arch=arch))

    assert result.exit_code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and sentence in errors[0] and f"({code})" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    (dry_run,) = harness.emulator.calls("ImportImage")
    assert dry_run.body["DryRun"] is True and dry_run.error == code
    assert harness.moto.calls("CreateMultipartUpload") == [] and harness.objects() == []


def test_a_used_up_image_quota_is_refused_before_the_upload_but_not_for_a_build_already_there(harness, cli, images):
    harness.emulator.image_quota = 0  # DescribeImageQuota's ImageNumQuota

    refused = cli(*harness.args(images["qcow2"]))

    assert refused.exit_code == 2
    assert f"tencent/{harness.source}: the account holds 0 custom images, its quota" in refused.stderr
    assert harness.moto.calls("CreateMultipartUpload") == [] and harness.emulator.images == {}

    harness.emulator.image_quota = 1
    assert cli(*harness.args(images["qcow2"])).exit_code == 0  # now every region holds its one image: full
    again = cli(*harness.args(images["qcow2"]))

    assert again.exit_code == 0, again.stderr  # this build's images are there: nothing to make room for
    assert not any(row["created"] for row in rows(again.stdout).values())


def test_dry_run_sends_the_import_as_a_dry_run_and_creates_nothing(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--dry-run"))

    assert result.exit_code == 0, result.stderr
    (dry_run,) = harness.emulator.calls("ImportImage")
    assert dry_run.body["DryRun"] is True and dry_run.error == "DryRunOperation"
    assert (dry_run.body["OsType"], dry_run.body["OsVersion"]) == ("OpenEuler", "24.03")
    assert harness.emulator.images == {} and harness.moto.calls("CreateMultipartUpload") == []


def test_the_image_url_percent_encodes_an_object_key_with_spaces_and_non_ascii(harness, cli, images, tmp_path):
    odd = tmp_path / "openEuler 24.03 é.qcow2"
    shutil.copyfile(images["qcow2"], odd)

    result = cli(*harness.args(odd))

    assert result.exit_code == 0, result.stderr
    (imported,) = _real_imports(harness)
    assert imported.body["ImageUrl"].endswith("/openEuler%2024.03%20%C3%A9.qcow2")
    assert harness.images(harness.source)[0].image_url == imported.body["ImageUrl"]


def test_a_name_longer_than_cvm_allows_is_refused_before_anything_is_created(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--name", "openEuler-" + "x" * 60))

    assert result.exit_code == 2
    assert "Tencent Cloud allows 1-60" in result.stderr
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
