"""Huawei publish tests: the IMS emulator (one port per region) with moto's S3 server standing in for OBS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators import ImsEmulator, Timing
from tests.emulators.ims import DEFAULT_AGENCIES
from tests.integration.sdkclouds import POLL_SECONDS, Harness, make_images, object_exists, s3

REGIONS = ("cn-north-4", "cn-east-3", "cn-south-1")
BUCKET = "eulerpub-images"
SHARE_PROJECT = "0123456789abcdef0123456789abcdef"
AGENCY = DEFAULT_AGENCIES[0]  # the agency the emulated account has created for IMS




@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    return make_images(tmp_path_factory.mktemp("huawei-images"))


@pytest.fixture
def harness(moto, monkeypatch, tmp_path) -> Iterator[Harness]:
    """IMS in three regions whose OBS is moto (a missing object really fails the import), and the environment
    the CLI reads: keys, one project id per region, the SDK's IMS endpoint variables, the OBS override."""
    exists = lambda bucket, key: object_exists(moto, REGIONS[0], bucket, key)  # noqa: E731
    with ImsEmulator(regions=REGIONS, object_exists=exists, timing=Timing(polls=2)) as emulator:
        env = {**emulator.sdk_env(), "HUAWEICLOUD_SDK_AK": emulator.ak, "HUAWEICLOUD_SDK_SK": emulator.sk,
               "EULERPUB_HUAWEI_OBS_ENDPOINT": moto.url, "EULERPUB_POLL_INTERVAL": POLL_SECONDS}
        for region, project in emulator.projects.items():
            env[f"HUAWEICLOUD_SDK_PROJECT_ID_{region.replace('-', '_').upper()}"] = project
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        s3(moto, "us-east-1").create_bucket(Bucket=BUCKET)
        yield Harness(
            cloud="huawei", emulator=emulator, moto=moto, regions=REGIONS, bucket=BUCKET, share=SHARE_PROJECT,
            env=env, secret=emulator.sk, secret_variable="HUAWEICLOUD_SDK_SK", import_action="CreateImage",
            copy_action="CopyImageCrossRegion", poll_action="ShowJob",
            create_actions=("CreateImage", "ImportImageQuick", "CopyImageCrossRegion", "BatchAddMembers",
                            "AddImageTag", "GlanceDeleteImage"),
            says_why=True, live=lambda image: image.status != "killed",
            destinations=lambda call: [(call.body or {}).get("region")],
            cloud_args=("--agency", AGENCY))
        assert not emulator.crashes, emulator.crashes[0]
