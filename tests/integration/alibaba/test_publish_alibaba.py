"""`eulerpub publish --cloud alibaba` end to end against the ECS emulator and moto as OSS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.sts import StsIssuer
from tests.integration.sdkclouds import RELEASE, journal, report, rows
from tests.integration.sdkclouds_scenarios import (  # noqa: F401  (the shared scenarios run for Alibaba here)
    test_failed_and_stuck_copies_fail_alone_and_a_rerun_finishes_only_them,
    test_failed_import_keeps_the_object_and_a_rerun_imports_it_without_uploading,
    test_kill_during_the_import_wait_resumes_waiting_on_the_same_import,
    test_kill_during_upload_resumes_the_same_multipart_upload,
    test_missing_credentials_name_the_variable,
    test_rerun_after_success_creates_nothing,
    test_rerun_without_the_journal_finds_every_image_by_its_tag,
    test_wrong_secret_is_one_sentence_and_appears_in_no_output_or_record,
)


@pytest.mark.parametrize(("arch", "architecture", "boot_mode"), [("x86_64", "x86_64", "BIOS"),
                                                                 ("aarch64", "arm64", "UEFI")])
def test_publish_imports_copies_and_shares_with_the_right_fields(harness, cli, images, arch, architecture,
                                                                 boot_mode):
    result = cli(*harness.args(images["qcow2"], arch=arch))

    assert result.exit_code == 0, result.stderr
    regions = rows(result.stdout)
    assert list(regions) == list(harness.regions)
    (imported,) = harness.emulator.calls("ImportImage")
    sent = imported.body
    assert sent["DiskDeviceMapping.1.OSSBucket"] == harness.bucket
    assert sent["DiskDeviceMapping.1.OSSObject"].startswith("eulerpub/")
    assert sent["DiskDeviceMapping.1.Format"] == "QCOW2" and sent["DiskDeviceMapping.1.DiskImageSize"] == "1"
    assert (sent["Architecture"], sent["BootMode"], sent["OSType"], sent["Platform"]) == \
        (architecture, boot_mode, "linux", "Others Linux")
    assert sent["ClientToken"]
    build_id = report(result.stdout)["build_id"]
    for region in harness.regions:
        (image,) = harness.images(region)
        assert image.id == regions[region]["image_id"] and image.status == "Available"
        assert (image.architecture, image.boot_mode) == (architecture, boot_mode)
        assert image.tags["eulerpub:build-id"] == build_id and image.tags["managed-by"] == "eulerpub"
        assert image.tags["eulerpub:arch"] == arch and image.tags["eulerpub:release"] == RELEASE
        assert f"[eulerpub build {build_id}]" in image.description
        assert list(image.shared_with) == [harness.share]
        assert regions[region]["shares"] == [harness.share]
    copies = harness.emulator.calls("CopyImage")
    assert sorted(c.body["DestinationRegionId"] for c in copies) == sorted(harness.regions[1:])
    assert {c.body["ImageId"] for c in copies} == {regions[harness.source]["image_id"]}
    assert all(c.body["ClientToken"] and c.body["Tag.1.Key"] for c in copies)
    assert harness.objects() == []
    # OSS verifies each part's Content-MD5: the moto fixture refuses a part of this bucket without one
    parts = harness.moto.calls("UploadPart")
    assert len(parts) >= 5 and all(r.status == 200 for r in parts)


def test_a_missing_import_role_is_one_sentence_before_the_upload(harness, cli, images):
    harness.emulator.import_role = None

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "AliyunECSImageImportDefaultRole does not exist" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert harness.moto.calls("CreateMultipartUpload") == [] and harness.emulator.images == {}


def test_a_name_ecs_refuses_is_refused_before_anything_is_created(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--name", "aliyun-openEuler"))

    assert result.exit_code == 2
    assert "must start with a letter and not with 'aliyun'" in result.stderr
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []


def test_dry_run_checks_credentials_regions_bucket_and_role_and_creates_nothing(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], "--dry-run"))

    assert result.exit_code == 0, result.stderr
    described = {c.region for c in harness.emulator.calls("DescribeImages")}
    assert set(harness.regions) <= described
    assert [c.body["RoleName"] for c in harness.emulator.calls("GetRole")] == ["AliyunECSImageImportDefaultRole"]
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []


def test_server_errors_are_retried_and_the_publish_goes_through(harness, cli, images):
    harness.emulator.faults.add("server_error", action="ImportImage", times=2)
    harness.emulator.faults.add("server_error", action="CopyImage", times=1)

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 0, result.stderr
    assert [c.error for c in harness.emulator.calls("ImportImage")] == ["ServiceUnavailable"] * 2 + [None]
    assert len({c.body["ClientToken"] for c in harness.emulator.calls("ImportImage")}) == 1  # the same request
    assert len(harness.images(harness.source)) == 1


@pytest.fixture
def sts(harness) -> Iterator[StsIssuer]:
    """STS for the emulated ECS and OSS: requests signed with its keys get STS's rules (tests.emulators.sts)."""
    issuer = StsIssuer()
    harness.emulator.sts = harness.moto.sts = issuer
    yield issuer
    issuer.stop()
    assert not issuer.crashes, issuer.crashes[0]


def _eulerpubs(requests: list) -> list:
    """The OSS requests eulerpub made (the tests' own helpers, ECS's object lookup included, sign as `test`)."""
    return [r for r in requests if r.access_key != "test"]


def _no_secret_anywhere(issuer: StsIssuer, *runs) -> None:
    secrets = issuer.tokens()
    texts = [text for run in runs for text in (run.stdout, run.stderr)]
    texts += [p.read_text(errors="replace") for p in Path.cwd().rglob("*") if p.is_file() and p.suffix != ".qcow2"]
    assert secrets and not any(secret in text for secret in secrets for text in texts)


def test_an_sts_token_from_the_environment_signs_the_oss_upload_and_every_ecs_call(harness, cli, images, sts,
                                                                                    monkeypatch):
    token = sts.issue()
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", token.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", token.access_key_secret)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", token.security_token)
    setup = len(harness.moto.requests)  # the fixture's CreateBucket

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 0, result.stderr
    assert all(row["image_id"] for row in rows(result.stdout).values())
    oss = _eulerpubs(harness.moto.requests[setup:])
    assert {r.access_key for r in oss} == {token.access_key_id}  # OSS checked its signature, token and expiry
    assert [r.error for r in oss if r.error] == []
    assert len([r for r in oss if r.action == "UploadPart" and r.status == 200]) >= 5
    assert harness.emulator.auth_failures == [] and len(harness.images(harness.source)) == 1
    _no_secret_anywhere(sts, result)


def test_role_credentials_that_expire_during_the_publish_are_refreshed_for_the_later_calls(harness, cli, images,
                                                                                            sts, monkeypatch):
    """The chain's URI provider (as an ECS RAM role or a sidecar serves it) gives credentials that expire 2 s after
    they are issued, and OSS and ECS refuse them after that: the upload takes longer (each part is slowed), so the
    calls after the first credentials expired must be signed with the chain's later ones."""
    sts.lifetime = 2.0
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    monkeypatch.setenv("ALIBABA_CLOUD_CREDENTIALS_URI", sts.serve())
    harness.moto.add_fault("delay", service="s3", action="UploadPart", delay=0.6, serial=True)
    setup = len(harness.moto.requests)

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 0, result.stderr
    oss = _eulerpubs(harness.moto.requests[setup:])
    assert [r.error for r in oss if r.error] == []
    first, complete = oss[0], next(r for r in oss if r.action == "CompleteMultipartUpload")
    assert sts.issued[first.access_key].expires_at <= complete.at  # the first credentials were dead by then
    assert complete.access_key != first.access_key and len({r.access_key for r in oss}) >= 2
    assert sts.served >= 3 and harness.emulator.auth_failures == []
    assert "stale time" not in result.stderr  # the SDK's own refresh notes stay out of the output
    _no_secret_anywhere(sts, result)


def test_expired_sts_credentials_are_one_sentence_before_anything_is_created(harness, cli, images, sts,
                                                                             monkeypatch):
    token = sts.issue(lifetime=-1)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", token.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", token.access_key_secret)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", token.security_token)

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "rejected the credentials" in errors[0] and "Traceback" not in result.stderr
    assert harness.emulator.auth_failures == ["Specified SecurityToken is expired."]  # ECS refused it, once
    assert harness.creates() == 0 and harness.moto.calls("CreateMultipartUpload") == []
    _no_secret_anywhere(sts, result)


def test_a_build_record_publishes_its_qcow2_with_the_proven_boot_mode(harness, cli, images, tmp_path):
    from eulerpub.manifest import Artifact, BaseImage, BuildRecord, sha256_file, write_record

    build = tmp_path / "build" / "minimal-24.03-LTS-SP1-x86_64"
    build.mkdir(parents=True)
    qcow2 = images["qcow2"]
    record = BuildRecord(build_id="b0123456789abcdef", profile="minimal", release=RELEASE, arch="x86_64",
                         base=BaseImage(url="https://example.invalid/base.qcow2.xz", sha256="0" * 64),
                         elements_hash="e" * 64, elements=["vm"], image_name="openEuler-24.03-LTS-SP1-x86_64-minimal-x",
                         artifacts=[Artifact(format="qcow2", path=str(qcow2), size=qcow2.stat().st_size,
                                             virtual_size=64 * 1024 * 1024, sha256=sha256_file(qcow2))])
    path = write_record(build, record)

    plan = cli("publish", "--cloud", "alibaba", "--record", path, "--region", harness.source, "--bucket",
               harness.bucket, "--dry-run")
    result = cli("publish", "--cloud", "alibaba", "--record", path, "--region", harness.source, "--bucket",
                 harness.bucket, "--wait-timeout", "0.05")

    assert plan.exit_code == 0, plan.stderr
    assert "BIOS" in plan.stdout  # the plan says what ECS is told for the hybrid disk's proven modes
    assert result.exit_code == 0, result.stderr
    (imported,) = harness.emulator.calls("ImportImage")
    assert imported.body["DiskDeviceMapping.1.Format"] == "QCOW2" and imported.body["BootMode"] == "BIOS"


def test_a_failed_import_says_why_from_its_task_in_the_sentence_and_the_journal(harness, cli, images):
    harness.emulator.faults.add("fail", action="ImportImage", reason="The image has no partition table.")

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 1
    error = rows(result.stdout)[harness.source]["error"]
    assert "CreateFailed: ImportImageFailed: The image has no partition table." in error, error
    (image,) = harness.images(harness.source)
    tasks = harness.emulator.calls("DescribeTasks")
    assert tasks and all(c.body["TaskAction"] == "ImportImage" and c.body["ResourceIds.1"] == image.id
                         for c in tasks)
    assert [c.body["TaskId"] for c in harness.emulator.calls("DescribeTaskAttribute")] == [f"t-{image.id[2:]}"]
    record = journal(Path.cwd(), "alibaba", harness.source)
    assert record is not None and "The image has no partition table." in record["steps"]["import"]["error"]
    assert "Traceback" not in result.stderr


def test_every_image_tags_its_snapshot_with_the_builds_tags(harness, cli, images):
    result = cli(*harness.args(images["qcow2"], share=False))

    assert result.exit_code == 0, result.stderr
    build_id = report(result.stdout)["build_id"]
    snapshots = harness.emulator.snapshots
    assert {s.region for s in snapshots.values()} == set(harness.regions)
    for region in harness.regions:
        (image,) = harness.images(region)
        snapshot = snapshots[image.snapshot_id]
        assert snapshot.tags["eulerpub:build-id"] == build_id and snapshot.tags["managed-by"] == "eulerpub"
