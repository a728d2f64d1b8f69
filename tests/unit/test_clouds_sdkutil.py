"""Shared plumbing of the Huawei and Tencent adapters: environment, endpoints, build marker, selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from eulerpub.clouds import sdkutil
from eulerpub.clouds.base import BuildIdentity, DiskImage, ImageRef, PublishSpec
from eulerpub.errors import CredentialsError, UsageError

GiB = 1024 ** 3


def _spec(description: str = "") -> PublishSpec:
    image = DiskImage(Path("/x/disk.qcow2"), "qcow2", 10, 5 * GiB, "0" * 64)
    identity = BuildIdentity("b0123456789abcde", "cloud", "24.03-LTS-SP1", "x86_64")
    return PublishSpec("tencent", image, identity, "openEuler-24.03", "ap-guangzhou", description=description)


def test_require_env_names_missing_variables_never_values(monkeypatch):
    monkeypatch.setenv("A_SECRET", "s3cr3t")
    with pytest.raises(CredentialsError) as caught:
        sdkutil.require_env("tencent", "A_SECRET", "B_ID", "C_KEY")
    assert str(caught.value) == "no tencent credentials: set B_ID and C_KEY in the environment"
    assert sdkutil.require_env("tencent", "A_SECRET") == ("s3cr3t",)


def test_endpoint_override_fills_region_and_rejects_non_urls(monkeypatch):
    assert sdkutil.endpoint_override("EP", "cn-north-4") is None
    monkeypatch.setenv("EP", "https://ims.{region}.example.com/")
    assert sdkutil.endpoint_override("EP", "cn-north-4") == "https://ims.cn-north-4.example.com"
    monkeypatch.setenv("EP", "ims.example.com")
    with pytest.raises(UsageError, match="EP"):
        sdkutil.endpoint_override("EP", "cn-north-4")


def test_description_keeps_the_marker_within_the_limit():
    text = sdkutil.describe(_spec("x" * 500), 256)
    assert len(text) == 256 and text.endswith("[eulerpub build b0123456789abcde]")
    assert sdkutil.build_id_in(text) == "b0123456789abcde"
    assert sdkutil.describe(_spec(), 1024) == "openEuler 24.03-LTS-SP1 x86_64 (cloud) [eulerpub build b0123456789abcde]"
    assert sdkutil.build_id_in("someone else's image") is None


def test_effective_tags_take_the_build_from_the_marker_only_when_untagged():
    marked = "copy [eulerpub build b1]"
    assert sdkutil.effective_tags({}, marked) == {"eulerpub:build-id": "b1", "managed-by": "eulerpub"}
    assert sdkutil.effective_tags({"eulerpub:build-id": "b2"}, marked) == {"eulerpub:build-id": "b2"}
    assert sdkutil.effective_tags({"k": "v"}, None) == {"k": "v"}


def _ref(image_id: str, name: str, created: str, **tags: str) -> ImageRef:
    return ImageRef("huawei", "r", image_id, name, "available", tags=tags, created=created)


def test_select_images_by_name_includes_foreign_images_else_only_managed_ones():
    mine = _ref("1", "n", "2024-01-02", **{"managed-by": "eulerpub", "eulerpub:profile": "hpc"})
    newer = _ref("2", "m", "2024-03-01", **{"managed-by": "eulerpub", "eulerpub:profile": "cloud"})
    foreign = _ref("3", "n", "2024-02-01")
    images = [mine, newer, foreign]
    assert [i.image_id for i in sdkutil.select_images(images, name="n", profile=None)] == ["3", "1"]
    assert [i.image_id for i in sdkutil.select_images(images, name=None, profile=None)] == ["2", "1"]
    assert [i.image_id for i in sdkutil.select_images(images, name=None, profile="hpc")] == ["1"]


@pytest.mark.parametrize(("size", "gib"), [(1, 40), (40 * GiB, 40), (40 * GiB + 1, 41), (1024 * GiB, 1024)])
def test_min_disk_rounds_up_and_clamps(size, gib):
    assert sdkutil.min_disk_gib(size, 40, 1024) == gib


def test_min_disk_refuses_what_the_cloud_cannot_hold():
    with pytest.raises(UsageError, match="1025 GiB"):
        sdkutil.min_disk_gib(1024 * GiB + 1, 40, 1024)
