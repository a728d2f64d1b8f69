"""Publishing a build record (by --profile or --record), the dry-run plan, and public images."""

from __future__ import annotations

import json

import boto3

from eulerpub.manifest import Artifact, BaseImage, BuildRecord, sha256_file, write_record
from tests.integration.aws.conftest import IMAGE_SIZE, make_raw


def make_build(tmp_path, profile="minimal"):
    build = tmp_path / "build" / f"{profile}-24.03-LTS-SP1-x86_64"
    build.mkdir(parents=True)
    disk = make_raw(build / "disk.raw")
    record = BuildRecord(build_id="b0123456789abcdef", profile=profile, release="24.03-LTS-SP1", arch="x86_64",
                         base=BaseImage(url="https://example.invalid/base.qcow2.xz", sha256="0" * 64),
                         elements_hash="e" * 64, elements=["vm"], image_name="openEuler-24.03-LTS-SP1-x86_64-minimal-x",
                         artifacts=[Artifact(format="raw", path="disk.raw", size=IMAGE_SIZE, virtual_size=IMAGE_SIZE,
                                             sha256=sha256_file(disk))])
    return write_record(build, record)


def test_dry_run_prints_the_plan_and_changes_nothing(cli, publish_env, tmp_path):
    make_build(tmp_path)

    result = cli("publish", "--cloud", "aws", "--profile", "minimal", "--region", "us-east-1", "--copy-to",
                 "eu-west-1", "--share", "210987654321", "--dry-run", "--json")

    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["build_id"] == "b0123456789abcdef" and plan["name"] == "openEuler-24.03-LTS-SP1-x86_64-minimal-x"
    assert [(s["region"], s["step"], s["done"]) for s in plan["steps"]] == [
        ("us-east-1", "upload", False), ("us-east-1", "import", False), ("us-east-1", "register", False),
        ("eu-west-1", "copy", False), ("us-east-1", "share", False), ("eu-west-1", "share", False)]
    reads = ("Get", "Describe", "List", "Head")  # the preflight's checks: a dry run changes nothing
    assert [c.action for c in publish_env.calls() if not c.action.startswith(reads)] == []


def test_publish_a_record_publicly_then_the_plan_shows_everything_done(cli, publish_env, tmp_path):
    record = make_build(tmp_path)

    result = cli("publish", "--cloud", "aws", "--record", record, "--region", "us-east-1", "--public",
                 "--tag", "team=cloud")

    assert result.exit_code == 0, result.stderr
    assert "us-east-1  source  done" in result.stdout and "public" in result.stdout
    ec2 = boto3.client("ec2", region_name="us-east-1")
    (image,) = ec2.describe_images(Owners=["self"])["Images"]
    assert image["Public"] is True
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["team"] == "cloud" and tags["eulerpub:profile"] == "minimal"
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    permission = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
    assert {"Group": "all"} in permission["CreateVolumePermissions"]
    journal = json.loads((record.parent / "publish" / "aws" / "us-east-1.json").read_text())
    assert journal["image_id"] == image["ImageId"] and journal["shares"] == ["public"]

    plan = cli("publish", "--cloud", "aws", "--record", record, "--region", "us-east-1", "--public", "--dry-run")
    assert plan.exit_code == 0 and "todo" not in plan.stdout
