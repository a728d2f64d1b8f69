"""Tencent publish tests: the CVM emulator (all regions on one port) with moto's S3 server standing in for COS."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators import CvmEmulator, Timing
from tests.integration.sdkclouds import POLL_SECONDS, Harness, make_images, object_exists, s3

REGIONS = ("ap-guangzhou", "ap-shanghai", "ap-beijing")
BUCKET = "eulerpub-1250000000"
SHARE_ACCOUNT = "100000000002"
_COS_URL = re.compile(r"^https://(?P<bucket>[^.]+)\.cos\.(?P<region>[^.]+)\.myqcloud\.com/(?P<key>.+)$")


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    return make_images(tmp_path_factory.mktemp("tencent-images"))


def cos_object_exists(moto, url: str) -> bool:
    """What CVM finds behind an ImageUrl: only a real COS object URL (its key percent-encoded), and only if moto
    holds the object."""
    match = _COS_URL.match(url)
    return bool(match) and object_exists(moto, match["region"], match["bucket"], urllib.parse.unquote(match["key"]))


@pytest.fixture
def harness(moto, monkeypatch, tmp_path) -> Iterator[Harness]:
    with CvmEmulator(regions=REGIONS, object_exists=lambda url: cos_object_exists(moto, url),
                     timing=Timing(polls=2)) as emulator:
        env = {"TENCENTCLOUD_SECRET_ID": emulator.secret_id, "TENCENTCLOUD_SECRET_KEY": emulator.secret_key,
               "EULERPUB_TENCENT_CVM_ENDPOINT": emulator.url, "EULERPUB_TENCENT_COS_ENDPOINT": moto.url,
               "EULERPUB_POLL_INTERVAL": POLL_SECONDS}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        s3(moto, "us-east-1").create_bucket(Bucket=BUCKET)
        yield Harness(
            cloud="tencent", emulator=emulator, moto=moto, regions=REGIONS, bucket=BUCKET, share=SHARE_ACCOUNT,
            env=env, secret=emulator.secret_key, secret_variable="TENCENTCLOUD_SECRET_KEY",
            import_action="ImportImage", copy_action="SyncImages", poll_action="DescribeImages",
            create_actions=("ImportImage", "SyncImages", "ModifyImageSharePermission", "DeleteImages"),
            says_why=False, live=lambda image: image.state not in ("IMPORTFAILED", "CREATEFAILED"),
            destinations=lambda call: list((call.body or {}).get("DestinationRegions") or []))
        assert not emulator.crashes, emulator.crashes[0]
