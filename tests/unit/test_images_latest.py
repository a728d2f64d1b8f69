"""`eulerpub images latest` on the in-memory cloud and on index files: which image is the newest of a series."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eulerpub import clouds
from eulerpub.clouds.base import BuildIdentity, ImageRef
from eulerpub.release.index import IndexEntry, Located, ReleaseIndex, merge, write_index
from tests.unit.fake_cloud import FakeAdapter, FakeCloud

REGION = "cn-north-4"
NOW = datetime(2025, 6, 9, tzinfo=UTC)


def image(fake: FakeCloud, image_id: str, created: str, *, profile: str = "hpcnow", release: str = "24.03-LTS-SP1",
          arch: str = "x86_64", state: str = "available") -> None:
    tags = BuildIdentity(f"build-{image_id}", profile, release, arch).tags()
    fake.images.setdefault(REGION, {})[image_id] = ImageRef(
        "huawei", REGION, image_id, f"openEuler-{release}-{arch}-{profile}-{image_id}", state, (), tags, created)


@pytest.fixture
def cloud(monkeypatch) -> FakeCloud:
    fake = FakeCloud(regions=(REGION,))
    # listed in no particular order; created times in two of the clouds' formats
    image(fake, "img-b", "2025-06-02T08:00:00Z")
    image(fake, "img-a", "2025-06-01 09:00:00")
    image(fake, "img-c", "2025-06-03T00:00:00Z", state="failed")  # newest, but never launchable
    image(fake, "img-old-release", "2025-06-05T00:00:00Z", release="22.03-LTS-SP4")
    image(fake, "img-hpc", "2025-06-06T00:00:00Z", profile="hpc")
    monkeypatch.setitem(clouds.ADAPTERS, "huawei", lambda: FakeAdapter(fake))
    return fake


def latest(cli, *args: str):
    return cli("images", "latest", "--cloud", "huawei", "--region", REGION, *args)


def test_the_newest_available_image_of_the_series(cli, cloud):
    result = latest(cli, "--profile", "hpcnow", "--release", "24.03-LTS-SP1", "--arch", "x86_64")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "img-b\n"  # only the id: `hpcopr init --os "$(...)"`


def test_without_a_release_the_newest_of_any_release(cli, cloud):
    result = latest(cli, "--profile", "hpcnow", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "image_id": "img-old-release", "name": "openEuler-22.03-LTS-SP4-x86_64-hpcnow-img-old-release",
        "profile": "hpcnow", "release": "22.03-LTS-SP4", "arch": "x86_64", "cloud": "huawei", "region": REGION,
        "created": "2025-06-05T00:00:00Z", "build_id": "build-img-old-release", "source": "cloud"}


def test_two_arches_need_arch(cli, cloud):
    image(cloud, "img-arm", "2025-06-07T00:00:00Z", arch="aarch64")
    result = latest(cli, "--profile", "hpcnow")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("profile hpcnow in huawei/cn-north-4 has images for aarch64 and x86_64; "
                                          "pass --arch")
    arm = latest(cli, "--profile", "hpcnow", "--arch", "arm64")  # the alias other tools use
    assert (arm.exit_code, arm.stdout) == (0, "img-arm\n")


def test_a_series_with_no_image_is_one_sentence_and_exit_1(cli, cloud):
    result = latest(cli, "--profile", "desktop", "--release", "24.03-LTS-SP1")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].endswith(
        "no eulerpub image of profile desktop, release 24.03-LTS-SP1 in huawei/cn-north-4 in the cloud")


def entry(image_id: str, created: str) -> IndexEntry:
    return IndexEntry(image_id=image_id, name=f"n-{image_id}", created=created, build_id="b", artifact_sha256="s")


def test_from_the_index_without_asking_the_cloud(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(clouds.ADAPTERS, "huawei", lambda: pytest.fail("the cloud was asked"))
    index = merge(ReleaseIndex(), [
        Located("hpcnow", "24.03-LTS-SP1", "x86_64", "huawei", REGION, entry("img-sp1", "2025-06-01T00:00:00Z")),
        Located("hpcnow", "24.03-LTS-SP2", "x86_64", "huawei", REGION, entry("img-sp2", "2025-06-04T00:00:00Z")),
        Located("hpcnow", "24.03-LTS-SP2", "x86_64", "huawei", "cn-east-3", entry("img-east", "2025-06-08T00:00:00Z")),
        Located("hpc", "24.03-LTS-SP2", "x86_64", "huawei", REGION, entry("img-hpc", "2025-06-09T00:00:00Z")),
    ], now=NOW)
    path = tmp_path / "index.json"
    write_index(path, index)
    assert latest(cli, "--profile", "hpcnow", "--index", str(path)).stdout == "img-sp2\n"
    pinned = latest(cli, "--profile", "hpcnow", "--release", "24.03-LTS-SP1", "--index", str(path), "--json")
    assert json.loads(pinned.stdout)["image_id"] == "img-sp1" and json.loads(pinned.stdout)["source"] == "index"
    none = latest(cli, "--profile", "desktop", "--index", str(path))
    assert none.exit_code == 1 and f"in the index {path}" in none.stderr


def test_a_missing_index_file_is_bad_input(cli, tmp_path):
    result = latest(cli, "--profile", "hpcnow", "--index", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
