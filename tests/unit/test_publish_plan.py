"""The publish plan: options over profile defaults, offline checks, and the steps a dry run shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from eulerpub.clouds.base import BuildIdentity, DiskImage, WaitParams
from eulerpub.errors import UsageError
from eulerpub.profiles import CloudDefaults
from eulerpub.publish.journal import RegionJournal, StepRecord
from eulerpub.publish.plan import PublishOptions, make_spec, plan_steps
from eulerpub.publish.source import Source, adhoc_build_id

SOURCE = Source(
    image=DiskImage(path=Path("/b/disk.raw"), format="raw", size=10, virtual_size=10, sha256="0" * 64),
    identity=BuildIdentity("b-1", "minimal", "24.03-LTS-SP1", "aarch64"),
    name="openEuler-24.03-LTS-SP1-aarch64-minimal-20250101",
    journal_dir=Path("/b/publish"),
)


def test_profile_defaults_fill_unset_options_and_the_command_line_wins():
    defaults = CloudDefaults(regions=["us-east-1", "eu-west-1"], copy_to=["ap-south-1"], share=["111122223333"],
                             tags={"a": "profile", "b": "profile"}, boot_mode="uefi")
    spec = make_spec("aws", SOURCE, PublishOptions(tags={"b": "cli"}), defaults)
    assert spec.source_region == "us-east-1"
    assert spec.copy_to == ("eu-west-1", "ap-south-1")
    assert spec.share_with == ("111122223333",)
    assert spec.upload == "ebs" and spec.boot_mode == "uefi"
    assert spec.all_tags["b"] == "cli" and spec.all_tags["eulerpub:arch"] == "aarch64"

    spec = make_spec("aws", SOURCE, PublishOptions(region="us-west-2", copy_to=["us-east-1", "us-west-2"],
                                                   upload="s3", bucket="bkt", name="openEuler-x"), defaults)
    assert spec.regions == ("us-west-2", "us-east-1"), "the source region is not copied to itself"
    assert spec.upload == "s3" and spec.bucket == "bkt" and spec.name == "openEuler-x"


def test_eulerpub_tags_cannot_be_overridden_by_user_tags():
    spec = make_spec("aws", SOURCE, PublishOptions(region="us-east-1", tags={"eulerpub:build-id": "forged"}))
    assert spec.all_tags["eulerpub:build-id"] == "b-1"


@pytest.mark.parametrize(("cloud", "options", "message"), [
    ("aws", PublishOptions(), "no region"),
    ("aws", PublishOptions(region="https://evil"), "is not a region name on AWS"),
    ("huawei", PublishOptions(region="ap-guangzhou", bucket="b"), "is not a region name on Huawei Cloud"),
    ("tencent", PublishOptions(region="cn-north-4", bucket="b"), "is not a region name on Tencent Cloud"),
    ("aws", PublishOptions(region="us-east-1", name="a\x1b[31mred"), "which AWS does not allow in image names"),
    ("aws", PublishOptions(region="us-east-1", name="x" * 129), "129 characters; AWS allows 3-128"),
    ("tencent", PublishOptions(region="ap-guangzhou", bucket="b", name="x" * 61), "Tencent Cloud allows 1-60"),
    ("huawei", PublishOptions(region="cn-north-4", bucket="b", name="a+b"), r"'\+', which Huawei Cloud"),
    ("aws", PublishOptions(region="us-east-1", share=("1234",)), "12-digit AWS account id"),
    ("huawei", PublishOptions(region="cn-north-4", bucket="b", share=("123456789012",)), "32-hex-digit"),
    ("tencent", PublishOptions(region="ap-guangzhou", bucket="b", share=("abc",)), "numeric Tencent"),
    ("aws", PublishOptions(region="us-east-1", wait=WaitParams(timeout=float("inf"))), "finite and positive"),
    ("aws", PublishOptions(region="us-east-1", wait=WaitParams(timeout=float("nan"))), "finite and positive"),
    ("aws", PublishOptions(region="us-east-1", upload="s3"), "needs a bucket"),
    ("huawei", PublishOptions(region="cn-north-4"), "needs a bucket"),
    ("tencent", PublishOptions(region="ap-guangzhou", upload="ebs", bucket="b"), "AWS only"),
    ("aws", PublishOptions(region="us-east-1", name="ab"), "3-128"),
])
def test_bad_options_are_one_sentence_usage_errors(cloud, options, message):
    with pytest.raises(UsageError, match=message):
        make_spec(cloud, SOURCE, options)


def test_plan_marks_what_the_journals_say_is_done():
    spec = make_spec("aws", SOURCE, PublishOptions(region="us-east-1", copy_to=["eu-west-1", "ap-south-1"],
                                                   share=["123456789012"], upload="s3", bucket="bkt"))
    source = RegionJournal(cloud="aws", region="us-east-1", role="source", build_id="b-1", name=spec.name,
                           steps={"upload": StepRecord(status="done"), "import": StepRecord(status="done"),
                                  "register": StepRecord(status="done"), "share": StepRecord(status="done")},
                           shares=["123456789012"])
    copy = RegionJournal(cloud="aws", region="eu-west-1", role="copy", build_id="b-1", name=spec.name,
                         steps={"copy": StepRecord(status="done")})

    steps = plan_steps(spec, {"us-east-1": source, "eu-west-1": copy, "ap-south-1": None})

    todo = [(s.region, s.step) for s in steps if not s.done]
    assert todo == [("us-east-1", "cleanup"), ("ap-south-1", "copy"), ("eu-west-1", "share"),
                    ("ap-south-1", "share")]
    assert "bkt/eulerpub/b-1/disk.raw" in steps[0].detail


def test_adhoc_build_id_is_stable_and_depends_on_arch_and_release():
    assert adhoc_build_id("a" * 64, "x86_64", "24.03") == adhoc_build_id("a" * 64, "x86_64", "24.03")
    assert adhoc_build_id("a" * 64, "x86_64", "24.03") != adhoc_build_id("a" * 64, "aarch64", "24.03")


@pytest.mark.parametrize("cloud", ["aws", "huawei", "tencent"])
def test_an_arch_the_cloud_has_no_instances_for_is_refused_at_plan_time(cloud):
    riscv = Source(image=SOURCE.image, identity=BuildIdentity("b-1", "minimal", "24.03-LTS-SP1", "riscv64"),
                   name=SOURCE.name, journal_dir=SOURCE.journal_dir)
    region = {"aws": "us-east-1", "huawei": "cn-north-4", "tencent": "ap-guangzhou"}[cloud]
    with pytest.raises(UsageError, match="has no riscv64 instances"):
        make_spec(cloud, riscv, PublishOptions(region=region, bucket="b"))
