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


# -- 9: account settings that make sharing fail late are checked before any upload ------------------------------

UPLOADS = ("StartSnapshot", "PutSnapshotBlock", "CreateMultipartUpload", "UploadPart")


def uploads(moto):
    return [c.action for c in moto.calls() if c.action in UPLOADS]


def test_ebs_encryption_by_default_stops_a_shared_publish_before_the_upload(cli, publish_env, raw_image):
    moto = publish_env
    boto3.client("ec2", region_name=REGION).enable_ebs_encryption_by_default()  # with the AWS managed key

    planned = publish(cli, raw_image, "--share", "210987654321", "--dry-run")
    shared = publish(cli, raw_image, "--share", "210987654321")
    public = publish(cli, raw_image, "--public")

    for result in (planned, shared):
        assert result.exit_code == 2
        assert f"EBS encryption by default is on in {REGION} with the AWS managed key (aws/ebs)" in result.stderr
        assert "aws ec2 disable-ebs-encryption-by-default" in result.stderr
    assert public.exit_code == 2 and "AWS never makes an encrypted snapshot public" in public.stderr
    assert uploads(moto) == []

    unshared = publish(cli, raw_image)  # nothing to share: the encrypted snapshot is fine
    assert unshared.exit_code == 0, unshared.stderr


def test_a_customer_managed_default_key_lets_accounts_share_the_image(cli, publish_env, raw_image):
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.enable_ebs_encryption_by_default()
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    ec2.modify_ebs_default_kms_key_id(KmsKeyId=key)

    shared = publish(cli, raw_image, "--share", "210987654321")

    assert shared.exit_code == 0, shared.stderr
    squashed = "".join(shared.stderr.split())  # the log line may be wrapped
    assert f"encryptedwiththeKMSkey{key};theaccounts" in squashed, "say that the accounts need the key"
    (row,) = json.loads(shared.stdout)["regions"]
    (snapshot_id,) = row["snapshot_ids"]
    assert ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["Encrypted"] is True
    permission = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
    assert permission["CreateVolumePermissions"] == [{"UserId": "210987654321"}]


def test_snapshot_block_public_access_stops_a_public_publish_before_the_upload(cli, publish_env, raw_image):
    moto = publish_env
    moto.snapshot_block_public_access[REGION] = "block-all-sharing"

    planned = publish(cli, raw_image, "--public", "--dry-run")
    public = publish(cli, raw_image, "--public")

    for result in (planned, public):
        assert result.exit_code == 2
        assert "Block Public Access for snapshots is block-all-sharing" in result.stderr
        assert "aws ec2 disable-snapshot-block-public-access" in result.stderr
    assert uploads(moto) == []
    # The setting blocks public sharing only (botocore's model): an account share still works.
    shared = publish(cli, raw_image, "--share", "210987654321")
    assert shared.exit_code == 0, shared.stderr


# -- 10: partitions ------------------------------------------------------------------------------------------

def test_a_china_region_gets_aws_cn_arns(cli, publish_env, raw_image):
    moto = publish_env
    region = "cn-north-1"
    boto3.client("s3", region_name=region).create_bucket(
        Bucket="images-cn", CreateBucketConfiguration={"LocationConstraint": region})

    result = cli("publish", "--cloud", "aws", "--image", raw_image.path, "--arch", "x86_64", "--region", region,
                 "--upload", "s3", "--bucket", "images-cn", "--json")

    assert result.exit_code == 0, result.stderr
    (policy,) = moto.calls("PutRolePolicy")
    resources = [r for s in json.loads(policy.params["PolicyDocument"])["Statement"]
                 for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])]
    assert "arn:aws-cn:s3:::images-cn" in resources and "arn:aws-cn:s3:::images-cn/*" in resources
    assert not [r for r in resources if r.startswith("arn:aws:")]
    assert json.loads(result.stdout)["regions"][0]["status"] == "done"


# -- 11: S3's 10 tags per object; prune with DeleteAssociatedSnapshots and disabled AMIs ---------------------

def test_object_tags_put_eulerpubs_first_and_too_many_user_tags_are_refused_before_the_upload(cli, publish_env,
                                                                                             raw_image):
    moto = publish_env
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="images")

    def tags(count):
        return [a for i in range(count) for a in ("--tag", f"team{i}=hpc")]

    planned = publish(cli, raw_image, "--upload", "s3", "--bucket", "images", "--dry-run", *tags(6))
    too_many = publish(cli, raw_image, "--upload", "s3", "--bucket", "images", *tags(6))

    for result in (planned, too_many):
        assert result.exit_code == 2
        assert "S3 keeps at most 10 tags on an object and eulerpub's own take 5" in result.stderr
    assert uploads(moto) == []
    assert moto.calls("CreateRole") == [], "the preflight only reads: the upload step creates the vmimport role"

    fitting = publish(cli, raw_image, "--upload", "s3", "--bucket", "images", "--keep-object", *tags(5))

    assert fitting.exit_code == 0, fitting.stderr
    (start,) = moto.calls("CreateMultipartUpload")
    keys = [k for k, _ in (pair.split("=") for pair in start.params["x-amz-tagging"].split("&"))]
    assert keys[:5] == ["eulerpub%3Abuild-id", "eulerpub%3Aprofile", "eulerpub%3Arelease", "eulerpub%3Aarch",
                        "managed-by"]
    assert sorted(keys[5:]) == [f"team{i}" for i in range(5)]


def published(cli, image, name):
    result = cli("publish", "--cloud", "aws", "--image", image.path, "--arch", "x86_64", "--region", REGION,
                 "--name", name, "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["regions"]
    return row


def test_prune_deregisters_with_delete_associated_snapshots(cli, publish_env, raw_image, tmp_path):
    from tests.integration.aws.conftest import TestImage, make_raw

    moto = publish_env
    other = make_raw(tmp_path / "openEuler-24.03-LTS-SP1-x86_64.raw", seed=8)  # another build of the series
    old = published(cli, raw_image, "openEuler-24.03-LTS-SP1-x86_64-custom-old")
    new = published(cli, TestImage(other, "raw", other), "openEuler-24.03-LTS-SP1-x86_64-custom-new")
    ec2 = boto3.client("ec2", region_name=REGION)

    result = cli("prune", "--cloud", "aws", "--region", REGION, "--keep", "1", "--yes", "--json")

    assert result.exit_code == 0, result.stderr
    (deregister,) = moto.calls("DeregisterImage")
    assert deregister.params["ImageId"] == old["image_id"]
    assert deregister.params.get("DeleteAssociatedSnapshots") == "true"
    assert moto.calls("DeleteSnapshot") == [], "EC2 deletes the snapshots with the image"
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert set(old["snapshot_ids"]).isdisjoint(left) and set(new["snapshot_ids"]) <= left


def test_a_disabled_amis_snapshot_is_not_taken_for_an_orphan(cli, publish_env, raw_image):
    row = published(cli, raw_image, "openEuler-24.03-LTS-SP1-x86_64-custom-off")
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.disable_image(ImageId=row["image_id"])
    assert ec2.describe_images(Owners=["self"])["Images"] == [], "DescribeImages leaves disabled AMIs out"

    result = cli("prune", "--cloud", "aws", "--region", REGION, "--keep", "1", "--orphan-min-age", "0", "--yes",
                 "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["orphans"] == []
    left = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert set(row["snapshot_ids"]) <= left


# -- 12: OBS and COS verify Content-MD5, not x-amz-checksum-* -------------------------------------------------

def obs_like(moto, region="cn-north-4", **overrides):
    """The settings the Huawei/Tencent adapters use for their store, pointed at moto (signed for an OBS region)."""
    from eulerpub.clouds import boto, objectstore

    settings = objectstore.StoreSettings(
        cloud="huawei", region=region, endpoint_url=moto.url, addressing_style="path", checksum_sha256=False,
        checksum_when_required=True, object_tags=False, credentials=boto.StaticCredentials("test", "test"),
        **{"content_md5": True, **overrides})
    return objectstore.make_store_client(settings), settings


def upload(moto, settings, client, path, key):
    from eulerpub.clouds import objectstore
    from eulerpub.clouds.base import Checkpoint
    from eulerpub.manifest import sha256_file

    return objectstore.upload_file(client, settings, "obs-bucket", key, path, size=path.stat().st_size,
                                   sha256=sha256_file(path), checkpoint=Checkpoint(), progress=lambda n: None)


def test_obs_and_cos_parts_carry_a_content_md5_the_store_verifies(moto, raw_image):
    import base64
    import hashlib

    from eulerpub.errors import CloudError

    client, settings = obs_like(moto)
    boto3.client("s3", endpoint_url=moto.url, region_name=REGION, aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket="obs-bucket")

    stored = upload(moto, settings, client, raw_image.path, "with-md5.raw")

    parts = moto.calls("UploadPart")
    assert stored.size == raw_image.path.stat().st_size and len(parts) == 8
    assert all(p.params.get("content-md5") and "x-amz-checksum-sha256" not in p.params for p in parts)
    data = raw_image.path.read_bytes()
    first = next(p for p in parts if p.params["partNumber"] == "1")
    assert first.params["content-md5"] == base64.b64encode(hashlib.md5(data[:8 << 20]).digest()).decode()

    plain_client, plain = obs_like(moto, content_md5=False)  # what the uploader sent before: no integrity check
    try:
        upload(moto, plain, plain_client, raw_image.path, "without-md5.raw")
        raise AssertionError("the OBS flavour accepted a part without Content-MD5")
    except CloudError as exc:
        assert "needs Content-MD5" in str(exc)

    upload_id = client.create_multipart_upload(Bucket="obs-bucket", Key="tampered.raw")["UploadId"]
    wrong = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    try:
        client.upload_part(Bucket="obs-bucket", Key="tampered.raw", UploadId=upload_id, PartNumber=1,
                           Body=b"these bytes", ContentMD5=wrong)
        raise AssertionError("a wrong Content-MD5 was accepted")
    except client.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "BadDigest"


def test_a_setting_the_credentials_may_not_read_is_a_warning_not_a_failure(cli, publish_env, raw_image):
    moto = publish_env
    moto.add_fault("fail", service="ec2", action="GetEbsEncryptionByDefault", status=403,
                   code="UnauthorizedOperation", message="You are not authorized to perform this operation.")

    shared = publish(cli, raw_image, "--share", "210987654321")

    assert shared.exit_code == 0, shared.stderr
    squashed = "".join(shared.stderr.split())  # the log line may be wrapped
    assert "maynotcallec2:GetEbsEncryptionByDefault,sothatsettingisnotcheckedbeforetheupload" in squashed
