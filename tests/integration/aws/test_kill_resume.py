"""kill -9 in the middle of an upload, then the same command again: it resumes and ends with one AMI."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import boto3
import pytest

from tests.disks import hybrid_head
from tests.fixtures_moto import snapshot_blocks
from tests.integration.aws.conftest import BLOCK, MiB, subprocess_env

DATA = 80 * MiB  # 160 non-zero blocks / 10 parts: enough to kill the run with part of it sent and journaled
S3_DATA = 200 * MiB  # 27 parts: more than the uploader's 16 in flight, so some are still unsent at the kill
KILL_DEADLINE = 60.0  # seconds to wait for the upload to get far enough before the kill


def big_image(path, data=DATA):
    with open(path, "wb") as handle:
        handle.truncate(data + 16 * MiB)
        handle.seek(4 * MiB)
        handle.write(random.Random(3).randbytes(data))
        handle.seek(0)
        handle.write(hybrid_head(data + 16 * MiB))  # a hybrid build's partition table: publish registers what it allows
    return path


def start(image, upload_args):
    argv = [sys.executable, "-m", "eulerpub", "publish", "--cloud", "aws", "--image", str(image), "--arch",
            "x86_64", "--release", "24.03-LTS-SP1", "--region", "us-east-1", "--json", *upload_args]
    return subprocess.Popen(argv, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(condition, proc):
    deadline = time.monotonic() + KILL_DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.communicate()}"
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the upload never got far enough to be killed")


def journal(tmp_path):
    paths = list((tmp_path / "build").rglob("aws/us-east-1.json"))
    return json.loads(paths[0].read_text()) if paths else {}


@pytest.mark.parametrize("upload", ["ebs", "s3"])
def test_kill_9_mid_upload_then_rerun_resumes_and_makes_one_ami(publish_env, tmp_path, upload):
    moto = publish_env
    image = big_image(tmp_path / "openEuler-24.03-LTS-SP1-x86_64.raw", S3_DATA if upload == "s3" else DATA)
    upload_args = ["--upload", upload]
    if upload == "s3":
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="images")
        upload_args += ["--bucket", "images"]
        action, unit, slow = "UploadPart", 8 * MiB, 0.4

        def far_enough():  # the upload id is journaled at once; the store itself says which parts it has
            return journal(tmp_path).get("steps", {}).get("upload", {}).get("data", {}).get("upload_id") and \
                len([c for c in moto.calls(action) if c.status == 200]) >= 3
    else:
        action, unit, slow = "PutSnapshotBlock", BLOCK, 0.01

        def far_enough():  # the journal records sent blocks in batches of 64
            sent = journal(tmp_path).get("steps", {}).get("upload", {}).get("data", {}).get("sent", [])
            return sum(end - begin for begin, end in sent) >= 64
    moto.add_fault("delay", action=action, delay=slow, serial=True)

    first = start(image, upload_args)
    wait_until(far_enough, first)
    first.send_signal(signal.SIGKILL)
    first.wait()

    moto.faults.clear()
    mark = len(moto.requests)  # requests of the first run still queued in the server finish, but count as its
    second = start(image, upload_args)
    out, err = second.communicate(timeout=300)

    assert second.returncode == 0, err.decode()
    sent_second = sum(r.body_size for r in moto.requests[mark:] if r.action == action and 200 <= r.status < 300)
    data = image.read_bytes()
    nonzero = {i for i in range(len(data) // BLOCK) if data[i * BLOCK:(i + 1) * BLOCK].count(0) != BLOCK}
    # EBS skips zero blocks (the data plus the partition table's block); S3 takes the whole file
    total = len(nonzero) * BLOCK if upload == "ebs" else image.stat().st_size
    assert 0 < sent_second <= total - 3 * unit, "the second run sends only what the first did not"
    report = json.loads(out)
    images = boto3.client("ec2", region_name="us-east-1").describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in images] == [report["regions"][0]["image_id"]]
    (snapshot_id,) = report["regions"][0]["snapshot_ids"]
    blocks = snapshot_blocks("us-east-1", snapshot_id)
    assert set(blocks) == nonzero
    assert all(blocks[i] == data[i * BLOCK:(i + 1) * BLOCK] for i in blocks)
    if upload == "ebs":
        assert len(moto.calls("StartSnapshot")) == 1, "the pending snapshot is resumed, not started again"
    else:
        assert len(moto.calls("CreateMultipartUpload")) == 1, "the multipart upload is resumed by its UploadId"
