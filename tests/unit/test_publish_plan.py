"""The publish plan: options over profile defaults, offline checks, and the steps a dry run shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from eulerpub.clouds.base import BuildIdentity, DiskImage
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
    defaults = CloudDefaults(regions=["us-east-1", "eu-west-1"], copy_to=["ap-south-1"], share=["1"],
                             tags={"a": "profile", "b": "profile"}, boot_mode="uefi")
    spec = make_spec("aws", SOURCE, PublishOptions(tags={"b": "cli"}), defaults)
    assert spec.source_region == "us-east-1"
    assert spec.copy_to == ("eu-west-1", "ap-south-1")
    assert spec.share_with == ("1",)
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
    ("aws", PublishOptions(region="https://evil"), "does not look like"),
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
                                                   share=["1234"], upload="s3", bucket="bkt"))
    source = RegionJournal(cloud="aws", region="us-east-1", role="source", build_id="b-1", name=spec.name,
                           steps={"upload": StepRecord(status="done"), "import": StepRecord(status="done"),
                                  "register": StepRecord(status="done"), "share": StepRecord(status="done")},
                           shares=["1234"])
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
