"""Deleting and pruning on Huawei Cloud: the IMS emulator, moto's S3 server as OBS, the real CLI."""

from __future__ import annotations

import pytest

from eulerpub.clouds import get_adapter, huawei
from eulerpub.clouds.base import WaitParams
from tests.integration.sdkclouds import rows

FAST_UNSHARE = WaitParams(timeout=30, interval=0.01)


@pytest.fixture(autouse=True)
def fast_unshare(monkeypatch):
    monkeypatch.setattr(huawei, "UNSHARE_WAIT", FAST_UNSHARE)


def test_a_shared_image_is_unshared_then_deleted(harness, cli, images):
    result = cli(*harness.args(images["qcow2"]))
    assert result.exit_code == 0, result.stderr
    adapter = get_adapter("huawei")

    for region, row in rows(result.stdout).items():
        (image,) = harness.images(region)
        assert list(image.members) == [harness.share]
        adapter.delete_image(region, row["image_id"])
        adapter.delete_image(region, row["image_id"])  # already gone: fine
        assert harness.images(region) == []

    unshares = harness.emulator.calls("BatchDeleteMembers")
    assert [(c.region, c.body) for c in unshares] == [
        (region, {"images": [rows(result.stdout)[region]["image_id"]], "projects": [harness.share]})
        for region in harness.regions]
    assert all(c.error is None for c in harness.emulator.calls("GlanceDeleteImage"))
