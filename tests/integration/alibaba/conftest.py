"""Alibaba publish tests: the ECS emulator (all regions on one port, RAM's GetRole too) with moto's S3 server
standing in for OSS's S3-compatible API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.emulators import EcsEmulator, Timing
from tests.fixtures_moto import MotoHarness
from tests.integration.sdkclouds import POLL_SECONDS, Harness, make_images, s3

REGIONS = ("cn-hangzhou", "cn-shanghai", "cn-beijing")
BUCKET = "eulerpub-images"
SHARE_ACCOUNT = "1000000000000002"


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    return make_images(tmp_path_factory.mktemp("alibaba-images"))


def oss_object_size(moto: MotoHarness, bucket: str, key: str) -> int | None:
    """What ImportImage finds in OSS: the object's size, or None when moto holds no such object."""
    try:
        return int(s3(moto, REGIONS[0]).head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError:
        return None


@pytest.fixture
def harness(moto, monkeypatch, tmp_path) -> Iterator[Harness]:
    with EcsEmulator(regions=REGIONS, object_size=lambda bucket, key: oss_object_size(moto, bucket, key),
                     timing=Timing(polls=2)) as emulator:
        env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": emulator.access_key_id,
               "ALIBABA_CLOUD_ACCESS_KEY_SECRET": emulator.access_key_secret,
               "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",  # no instance metadata service to ask here
               "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
               "EULERPUB_ALIBABA_ECS_ENDPOINT": emulator.url, "EULERPUB_ALIBABA_RAM_ENDPOINT": emulator.url,
               "EULERPUB_ALIBABA_OSS_ENDPOINT": moto.url, "EULERPUB_POLL_INTERVAL": POLL_SECONDS}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HOME", str(tmp_path))  # no credentials file of the developer's in the chain
        monkeypatch.chdir(tmp_path)
        s3(moto, "us-east-1").create_bucket(Bucket=BUCKET)
        moto.md5_buckets.add(BUCKET)  # OSS verifies Content-MD5 and ignores x-amz-checksum-*
        moto.oss_buckets.add(BUCKET)  # and refuses user-metadata names with '_' and 8 KB of it
        yield Harness(
            cloud="alibaba", emulator=emulator, moto=moto, regions=REGIONS, bucket=BUCKET, share=SHARE_ACCOUNT,
            env=env, secret=emulator.access_key_secret, secret_variable="ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            import_action="ImportImage", copy_action="CopyImage", poll_action="DescribeImages",
            create_actions=("ImportImage", "CopyImage", "ModifyImageSharePermission", "DeleteImage"),
            says_why=False, live=lambda image: image.status != "CreateFailed",
            destinations=lambda call: [(call.body or {}).get("DestinationRegionId")],
            throttle_codes=("Throttling.User",), failed_states=("CreateFailed", "CreateFailed"))
        assert not emulator.crashes, emulator.crashes[0]
