"""`eulerpub prune` finds and removes orphans on moto: an eulerpub snapshot and upload whose AMI is gone go;
a snapshot that is not eulerpub's, one an AMI still uses, an object without eulerpub's metadata, and anything
younger than the age threshold stay."""

from __future__ import annotations

import json

import boto3

BUCKET = "images"
REGION = "us-east-1"


def ec2():
    return boto3.client("ec2", region_name=REGION)


def s3():
    return boto3.client("s3", region_name=REGION)


def snapshot_ids() -> set[str]:
    return {s["SnapshotId"] for s in ec2().describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def object_keys() -> set[str]:
    return {o["Key"] for o in s3().list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def new_snapshot(tags: dict[str, str] | None = None) -> str:
    volume = ec2().create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    extra = {"TagSpecifications": [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v}
                                                                          for k, v in tags.items()]}]} if tags else {}
    return ec2().create_snapshot(VolumeId=volume, **extra)["SnapshotId"]


def prune(cli, *extra: str):
    return cli("prune", "--cloud", "aws", "--region", REGION, "--keep", "1", "--bucket", BUCKET, *extra)


def test_prune_removes_the_snapshot_and_upload_an_ami_left_behind(cli, publish_env, raw_image):
    s3().create_bucket(Bucket=BUCKET)
    published = cli("publish", "--cloud", "aws", "--image", raw_image.path, "--arch", "x86_64", "--region", REGION,
                    "--upload", "s3", "--bucket", BUCKET, "--keep-object", "--json")
    assert published.exit_code == 0, published.stderr
    (row,) = json.loads(published.stdout)["regions"]
    build_id = json.loads(published.stdout)["build_id"]
    (upload_key,) = object_keys()
    metadata = s3().head_object(Bucket=BUCKET, Key=upload_key)["Metadata"]
    assert metadata["eulerpub-build-id"] == build_id and metadata["managed-by"] == "eulerpub"
    # Someone deregisters the AMI by hand: its snapshot and the kept upload are now orphans.
    ec2().deregister_image(ImageId=row["image_id"])
    (orphan_snapshot,) = row["snapshot_ids"]

    foreign = new_snapshot()  # not eulerpub's: never touched
    in_use = new_snapshot({"managed-by": "eulerpub", "eulerpub:build-id": "by-hand"})
    ec2().register_image(Name="not-eulerpub", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                         Architecture="x86_64",
                         BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": in_use}}])
    s3().put_object(Bucket=BUCKET, Key="eulerpub/by-hand/disk.raw", Body=b"no metadata")
    s3().put_object(Bucket=BUCKET, Key="elsewhere/disk.raw", Body=b"outside the prefix",
                    Metadata={"managed-by": "eulerpub"})
    snapshots_before, objects_before = snapshot_ids(), object_keys()

    young = prune(cli, "--json")  # the default threshold: everything here is minutes old, so in flight
    assert young.exit_code == 0, young.stderr
    assert json.loads(young.stdout)["orphans"] == [] and json.loads(young.stdout)["not_searched"] == []

    dry = prune(cli, "--orphan-min-age", "0")
    assert dry.exit_code == 0, dry.stderr
    assert f"would delete  orphaned snapshot {orphan_snapshot}  (build {build_id}," in dry.stdout
    assert f"would delete  orphaned object {upload_key} in {BUCKET}  (build {build_id}," in dry.stdout
    assert f"{REGION}: 2 to delete; nothing was changed" in dry.stdout
    assert (snapshot_ids(), object_keys()) == (snapshots_before, objects_before)

    applied = prune(cli, "--orphan-min-age", "0", "--yes", "--json")
    assert applied.exit_code == 0, applied.stderr
    deleted = json.loads(applied.stdout)["deleted"]
    assert sorted((d["kind"], d["id"], d["ok"]) for d in deleted) == [
        ("object", upload_key, True), ("snapshot", orphan_snapshot, True)]
    assert snapshot_ids() == snapshots_before - {orphan_snapshot}
    assert {foreign, in_use} <= snapshot_ids()
    assert object_keys() == objects_before - {upload_key}

    again = prune(cli, "--orphan-min-age", "0", "--yes", "--json")  # nothing left to find
    assert again.exit_code == 0 and json.loads(again.stdout)["deleted"] == []
