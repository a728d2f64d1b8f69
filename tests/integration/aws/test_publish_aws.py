"""End to end against moto: EBS direct and S3 + VM Import, copies, shares, and what the AMIs look like."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.fixtures_moto import snapshot_blocks

ACCOUNT_TO_SHARE = "210987654321"
COPIES = ("eu-west-1", "ap-southeast-2")


def ec2(region):
    return boto3.client("ec2", region_name=region)


def publish(cli, image, *extra, arch="x86_64"):
    return cli("publish", "--cloud", "aws", "--image", image.path, "--arch", arch, "--region", "us-east-1",
               *[a for r in COPIES for a in ("--copy-to", r)], "--share", ACCOUNT_TO_SHARE, "--json", *extra)


@pytest.mark.parametrize(("image_fixture", "arch", "upload"), [
    ("raw_image", "x86_64", "ebs"), ("qcow2_image", "aarch64", "ebs"),
    ("raw_image", "x86_64", "s3"), ("qcow2_image", "aarch64", "s3"),
])
def test_publish_copies_and_shares_with_the_right_fields(request, cli, publish_env, image_fixture, arch, upload):
    image = request.getfixturevalue(image_fixture)
    moto = publish_env
    extra = ["--upload", upload]
    if upload == "s3":
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="images")
        extra += ["--bucket", "images"]

    result = publish(cli, image, *extra, arch=arch)

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and [r["region"] for r in report["regions"]] == ["us-east-1", *COPIES]
    (registered_region, sent), = moto.registered
    assert registered_region == "us-east-1"
    assert sent["Architecture"] == {"x86_64": "x86_64", "aarch64": "arm64"}[arch]
    assert sent["BootMode"] == {"x86_64": "uefi-preferred", "aarch64": "uefi"}[arch]
    assert sent["EnaSupport"] is True and sent["SriovNetSupport"] == "simple" and sent["ImdsSupport"] == "v2.0"
    assert sent["RootDeviceName"] == "/dev/xvda"
    (mapping,) = sent["BlockDeviceMappings"]
    assert mapping["DeviceName"] == "/dev/xvda"
    assert mapping["Ebs"]["VolumeType"] == "gp3" and mapping["Ebs"]["VolumeSize"] == 1
    snapshot_id = mapping["Ebs"]["SnapshotId"]
    assert snapshot_blocks("us-east-1", snapshot_id) == image.nonzero_blocks

    build_id = report["build_id"]
    for row in report["regions"]:
        region = row["region"]
        (ami,) = ec2(region).describe_images(Owners=["self"])["Images"]
        assert ami["ImageId"] == row["image_id"] and ami["State"] == "available"
        tags = {t["Key"]: t["Value"] for t in ami["Tags"]}
        assert tags["eulerpub:build-id"] == build_id and tags["managed-by"] == "eulerpub"
        assert tags["eulerpub:arch"] == arch and tags["eulerpub:release"] == "24.03-LTS-SP1"
        assert ami["Architecture"] == sent["Architecture"] and ami["BootMode"] == sent["BootMode"]
        assert ami.get("EnaSupport") is True and ami.get("ImdsSupport") == "v2.0"
        permissions = ec2(region).describe_image_attribute(ImageId=ami["ImageId"], Attribute="launchPermission")
        assert permissions["LaunchPermissions"] == [{"UserId": ACCOUNT_TO_SHARE}]
        assert row["shares"] == [ACCOUNT_TO_SHARE]
        for snap in row["snapshot_ids"]:
            attribute = ec2(region).describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
            assert {"UserId": ACCOUNT_TO_SHARE} in attribute["CreateVolumePermissions"]
    for _region, params in moto.copied:
        assert params["CopyImageTags"] is True and params["ClientToken"]
        assert {"ResourceType": "image"}.items() <= params["TagSpecifications"][0].items()
    if upload == "s3":
        assert boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="images").get("KeyCount") == 0
    else:
        assert moto.bytes_sent("PutSnapshotBlock") == len(image.nonzero_blocks) * 512 * 1024
