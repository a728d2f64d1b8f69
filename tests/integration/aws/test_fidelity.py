"""What the real AWS APIs do that plain moto lets slide (issue 10, items 8-11), each through the CLI against the
moto fixture with the stricter rule switched on."""

from __future__ import annotations

import json

import boto3

from eulerpub.clouds import ebs
from tests.fixtures_moto import snapshot_blocks

REGION = "us-east-1"


def publish(cli, image, *extra):
    return cli("publish", "--cloud", "aws", "--image", image.path, "--arch", "x86_64", "--region", REGION,
               "--json", *extra)


# -- 8: EBS direct eventual consistency ----------------------------------------------------------------------

def test_a_new_snapshot_answering_404_for_a_while_is_waited_for_not_deleted(cli, publish_env, raw_image):
    moto = publish_env
    moto.new_snapshot_not_found = 5  # the first 5 PutSnapshotBlock calls: ResourceNotFoundException (404)

    result = publish(cli, raw_image)

    assert result.exit_code == 0, result.stderr
    assert [c.status for c in moto.calls("PutSnapshotBlock")].count(404) == 5
    assert moto.calls("DeleteSnapshot") == []
    (row,) = json.loads(result.stdout)["regions"]
    (snapshot_id,) = row["snapshot_ids"]
    assert snapshot_blocks(REGION, snapshot_id) == raw_image.nonzero_blocks


def test_a_snapshot_that_stays_invisible_past_the_window_fails_and_is_deleted(cli, publish_env, raw_image,
                                                                              monkeypatch):
    moto = publish_env
    monkeypatch.setattr(ebs, "BLOCK_RETRY_SECONDS", 0.5)  # the two-minute window, shortened for the test
    moto.new_snapshot_not_found = 10**6

    result = publish(cli, raw_image)

    assert result.exit_code == 1
    assert "ResourceNotFoundException" in result.stderr
    assert len(moto.calls("DeleteSnapshot")) == 1, "a snapshot that never became usable is cleaned up"


def test_concurrent_limit_on_start_snapshot_is_transient(cli, publish_env, raw_image):
    moto = publish_env
    limit = moto.add_fault("fail", service="ebs", action="StartSnapshot", times=2, status=400,
                           code="ConcurrentLimitExceededException", message="You have reached the limit for "
                           "concurrent API requests")

    result = publish(cli, raw_image)

    assert result.exit_code == 0, result.stderr
    assert limit.fired == 2
    assert len(boto3.client("ec2", region_name=REGION).describe_images(Owners=["self"])["Images"]) == 1
