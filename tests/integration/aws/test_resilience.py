"""Re-runs, a destination region failing for good, and transient faults: throttling, 5xx, dropped connections."""

from __future__ import annotations

import json

import boto3

from tests.integration.aws.conftest import BLOCK

COPIES = ("eu-west-1", "ap-southeast-2")
CREATES = ("StartSnapshot", "PutSnapshotBlock", "RegisterImage", "CopyImage", "CreateMultipartUpload",
           "UploadPart", "ImportSnapshot")


def publish(cli, image, *extra):
    return cli("publish", "--cloud", "aws", "--image", image.path, "--arch", "x86_64", "--region", "us-east-1",
               *[a for r in COPIES for a in ("--copy-to", r)], "--share", "210987654321", "--json", *extra)


def images_in(region):
    return boto3.client("ec2", region_name=region).describe_images(Owners=["self"])["Images"]


def first_document(stdout):
    """The publish report, which is the whole of stdout even when the run fails (one JSON document)."""
    return json.loads(stdout)


def ids(report):
    return {r["region"]: r["image_id"] for r in report["regions"]}


def test_rerun_after_success_creates_nothing_and_reports_the_same_ids(cli, publish_env, raw_image):
    moto = publish_env
    first = publish(cli, raw_image)
    assert first.exit_code == 0, first.stderr
    before = {action: len(moto.calls(action)) for action in CREATES}

    second = publish(cli, raw_image)

    assert second.exit_code == 0, second.stderr
    assert ids(json.loads(second.stdout)) == ids(json.loads(first.stdout))
    assert {action: len(moto.calls(action)) for action in CREATES} == before
    assert not any(r["created"] for r in json.loads(second.stdout)["regions"])
    for region in ("us-east-1", *COPIES):
        assert len(images_in(region)) == 1


def test_rerun_without_the_journal_finds_the_images_by_tag(cli, publish_env, raw_image, tmp_path):
    first = publish(cli, raw_image)
    journals = list((tmp_path / "build").rglob("*.json"))
    assert journals, "the run journals under ./build"
    for journal in journals:
        journal.unlink()

    second = publish(cli, raw_image)

    assert second.exit_code == 0, second.stderr
    assert ids(json.loads(second.stdout)) == ids(json.loads(first.stdout))
    assert len(publish_env.calls("RegisterImage")) == 1 and len(publish_env.calls("CopyImage")) == 2


def test_a_region_failing_for_good_does_not_stop_the_others_and_a_rerun_finishes_only_it(cli, publish_env,
                                                                                        raw_image):
    moto = publish_env
    moto.add_fault("fail", service="ec2", action="CopyImage", region="ap-southeast-2",
                   message="injected: the region refuses copies")

    first = publish(cli, raw_image)

    assert first.exit_code == 1
    report = first_document(first.stdout)
    rows = {r["region"]: r for r in report["regions"]}
    assert rows["us-east-1"]["status"] == rows["eu-west-1"]["status"] == "done"
    assert rows["ap-southeast-2"]["status"] == "failed"
    assert "the region refuses copies" in rows["ap-southeast-2"]["error"]
    assert "1 of 3 regions failed (ap-southeast-2)" in first.stderr
    assert len(images_in("eu-west-1")) == 1 and images_in("ap-southeast-2") == []

    moto.faults.clear()
    copies_before = len(moto.calls("CopyImage", region="eu-west-1"))
    second = publish(cli, raw_image)

    assert second.exit_code == 0, second.stderr
    rows2 = {r["region"]: r for r in json.loads(second.stdout)["regions"]}
    assert rows2["ap-southeast-2"]["created"] and not rows2["eu-west-1"]["created"]
    assert rows2["eu-west-1"]["image_id"] == rows["eu-west-1"]["image_id"]
    assert len(moto.calls("CopyImage", region="eu-west-1")) == copies_before
    assert len(moto.calls("RegisterImage")) == 1
    assert len(images_in("ap-southeast-2")) == 1


def test_throttling_500_bursts_and_dropped_connections_are_retried(cli, publish_env, raw_image):
    moto = publish_env
    throttle = moto.add_fault("throttle", service="ec2", every=3)  # a third of EC2 calls
    burst = moto.add_fault("error500", service="ebs", action="PutSnapshotBlock", times=3)
    drop = moto.add_fault("drop", service="ebs", action="PutSnapshotBlock", times=2, every=4)

    result = publish(cli, raw_image)

    assert result.exit_code == 0, result.stderr
    assert throttle.fired >= 5 and burst.fired == 3 and drop.fired == 2
    assert "RequestLimitExceeded" in result.stderr, "retries are logged with the cloud's code"
    assert len(images_in("us-east-1")) == 1
    assert len([c for c in moto.calls("RegisterImage") if c.status == 200]) == 1, "a throttled call is retried"


def test_s3_upload_survives_throttling_and_a_connection_dropped_mid_part(cli, publish_env, raw_image):
    moto = publish_env
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="images")
    slow = moto.add_fault("throttle", service="s3", action="UploadPart", every=2, times=2)
    drop = moto.add_fault("drop", service="s3", action="UploadPart", times=1)

    result = publish(cli, raw_image, "--upload", "s3", "--bucket", "images")

    assert result.exit_code == 0, result.stderr
    assert slow.fired == 2 and drop.fired == 1
    sent = moto.calls("UploadPart")
    assert all(call.params.get("x-amz-checksum-sha256") for call in sent), "every part carries its SHA-256"


def test_an_import_task_ending_in_error_is_reported_and_a_rerun_imports_the_kept_object(cli, publish_env,
                                                                                       raw_image):
    moto = publish_env
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="images")
    moto.fail_next_imports = 1

    first = publish(cli, raw_image, "--upload", "s3", "--bucket", "images")

    assert first.exit_code == 1
    assert "Disk validation failed" in first.stderr
    assert {r["status"] for r in first_document(first.stdout)["regions"][1:]} == {"skipped"}
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.list_objects_v2(Bucket="images")["KeyCount"] == 1, "the object is kept for the next import"
    uploaded = moto.bytes_sent("UploadPart")

    second = publish(cli, raw_image, "--upload", "s3", "--bucket", "images")

    assert second.exit_code == 0, second.stderr
    assert moto.bytes_sent("UploadPart") == uploaded, "nothing is uploaded again"
    tokens = {c.params["ClientToken"] for c in moto.calls("ImportSnapshot")}
    assert len(tokens) == 2, "the second import is a new task, not the failed one again"
    assert s3.list_objects_v2(Bucket="images")["KeyCount"] == 0


def test_ebs_upload_sends_only_nonzero_blocks(cli, publish_env, raw_image):
    result = publish(cli, raw_image)
    assert result.exit_code == 0, result.stderr
    sent = publish_env.calls("PutSnapshotBlock")
    assert len(sent) == len(raw_image.nonzero_blocks)
    assert publish_env.bytes_sent("PutSnapshotBlock") == len(raw_image.nonzero_blocks) * BLOCK
    assert json.loads(result.stdout)["sent_bytes"] == len(raw_image.nonzero_blocks) * BLOCK
