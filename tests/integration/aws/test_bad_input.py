"""Bad input and missing permissions: one sentence on stderr, no traceback, a non-zero exit, nothing created.

These need moto state (a missing bucket, a role, a taken name); offline refusals of every kind are the rows of
tests/integration/test_hostile_cli.py.
"""

from __future__ import annotations

import boto3
import pytest

from tests.integration.aws.conftest import make_raw


def one_error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def image(tmp_path):
    return make_raw(tmp_path / "openEuler-24.03-LTS-SP1-x86_64.raw")


def publish(cli, image, *extra):
    return cli("publish", "--cloud", "aws", "--image", image, "--arch", "x86_64", *extra)


def test_missing_credentials(cli, publish_env, image, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-role probe on a test machine
    result = publish(cli, image, "--region", "us-east-1")
    assert result.exit_code == 2
    assert "no aws credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID" in one_error_line(result)


@pytest.mark.parametrize("flag", ["--region", "--copy-to"])
def test_unknown_region(cli, publish_env, image, flag):
    args = ["--region", "us-esat-1"] if flag == "--region" else ["--region", "us-east-1", "--copy-to", "eu-wset-1"]
    result = publish(cli, image, *args)
    assert result.exit_code == 2
    assert "unknown AWS region" in one_error_line(result)
    assert publish_env.calls("StartSnapshot") == []


def test_missing_bucket(cli, publish_env, image):
    result = publish(cli, image, "--region", "us-east-1", "--upload", "s3", "--bucket", "no-such-bucket")
    assert result.exit_code == 2
    assert "bucket 'no-such-bucket' does not exist" in one_error_line(result)


def test_missing_vmimport_role_without_permission_to_create_it(cli, publish_env, image):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="images")
    publish_env.add_fault("fail", service="iam", action="CreateRole")
    result = publish(cli, image, "--region", "us-east-1", "--upload", "s3", "--bucket", "images")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "the 'vmimport' role VM Import needs is missing and these credentials may not create it" in line
    assert publish_env.calls("CreateMultipartUpload") == [], "checked before any upload"


def test_missing_vmimport_role_is_created_when_allowed(cli, publish_env, image):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="images")
    result = publish(cli, image, "--region", "us-east-1", "--upload", "s3", "--bucket", "images")
    assert result.exit_code == 0, result.stderr
    role = boto3.client("iam").get_role(RoleName="vmimport")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "vmie.amazonaws.com"}


def test_block_public_access_is_checked_before_anything_is_made(cli, publish_env, image):
    publish_env.block_public_access["eu-west-1"] = "block-new-sharing"
    result = publish(cli, image, "--region", "us-east-1", "--copy-to", "eu-west-1", "--public")
    assert result.exit_code == 2
    assert "Block Public Access for AMIs is on in eu-west-1" in one_error_line(result)
    assert publish_env.calls("StartSnapshot") == []


def test_a_name_taken_in_a_copy_region_is_refused_before_the_upload(cli, publish_env, image):
    ec2 = boto3.client("ec2", region_name="ap-southeast-2")
    name = "openEuler-24.03-LTS-SP1-x86_64-taken"
    ec2.register_image(Name=name, Architecture="x86_64", RootDeviceName="/dev/xvda")
    result = publish(cli, image, "--region", "us-east-1", "--copy-to", "ap-southeast-2", "--name", name)
    assert result.exit_code == 2
    assert f"an image named '{name}' from another build already exists in ap-southeast-2" in one_error_line(result)
    assert publish_env.calls("StartSnapshot") == []


@pytest.mark.parametrize(("args", "message"), [
    (["--image", "/nonexistent.raw", "--arch", "x86_64", "--region", "us-east-1"], "no such file"),
    (["--image", "IMAGE", "--region", "us-east-1"], "--image needs --arch"),
    (["--image", "IMAGE", "--arch", "x86_64", "--region", "us-east-1", "--upload", "s3"], "needs a bucket"),
    (["--image", "IMAGE", "--arch", "x86_64", "--region", "us-east-1", "--upload", "ftp"],
     "'ftp' is not one of 'ebs', 's3'"),
    (["--region", "us-east-1"], "say what to publish"),
    (["--profile", "minimal", "--region", "us-east-1"], "no build of profile 'minimal'"),
])
def test_bad_options(cli, publish_env, image, args, message):
    result = cli("publish", "--cloud", "aws", *[str(image) if a == "IMAGE" else a for a in args])
    assert result.exit_code == 2
    assert message in one_error_line(result)


def test_unknown_cloud(cli, image):
    result = cli("publish", "--cloud", "azure", "--image", image, "--arch", "x86_64", "--region", "x")
    assert result.exit_code == 2
    assert "'azure' is not one of 'aws', 'huawei', 'tencent'" in one_error_line(result)
