"""Deleting and pruning on Huawei Cloud: the IMS emulator, moto's S3 server as OBS, the real CLI."""

from __future__ import annotations

import json

import pytest

from eulerpub.clouds import get_adapter, huawei
from eulerpub.clouds.base import WaitParams
from tests.integration.sdkclouds import report, rows, s3

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


def test_prune_deletes_a_failed_import_and_its_orphaned_upload_and_nothing_else(harness, cli, images):
    kept = cli(*harness.args(images["qcow2"], "--keep-object"))  # an image, and its upload kept on purpose
    assert kept.exit_code == 0, kept.stderr
    kept_build = report(kept.stdout)["build_id"]
    (kept_key,) = harness.objects()
    metadata = s3(harness.moto, harness.source).head_object(Bucket=harness.bucket, Key=kept_key)["Metadata"]
    assert metadata["eulerpub-build-id"] == kept_build and metadata["managed-by"] == "eulerpub"
    assert metadata["eulerpub-profile"] == "custom" and metadata["eulerpub-arch"] == "x86_64"

    harness.emulator.faults.add("fail", action=harness.import_action, reason="the disk has no partition table")
    failed = cli(*harness.args(images["raw"], arch="aarch64", share=False))  # leaves a killed image and its upload
    assert failed.exit_code == 1
    failed_build = report(failed.stdout)["build_id"]
    (killed,) = [i for i in harness.images(harness.source) if i.status == "killed"]
    (orphan_key,) = set(harness.objects()) - {kept_key}
    store = s3(harness.moto, harness.source)
    store.put_object(Bucket=harness.bucket, Key="eulerpub/by-hand/disk.raw", Body=b"no eulerpub metadata")
    objects_before = set(harness.objects())

    args = ("prune", "--cloud", "huawei", "--region", harness.source, "--keep", "1", "--bucket", harness.bucket)
    young = cli(*args, "--json")
    assert young.exit_code == 0, young.stderr
    survey = json.loads(young.stdout)
    assert [d["image_id"] for d in survey["delete"]] == [killed.id]
    assert survey["orphans"] == []  # minutes old: a publish could still be importing it
    assert survey["not_searched"] == ["snapshots (the huawei adapter lists none)"]

    applied = cli(*args, "--orphan-min-age", "0", "--yes", "--json")
    assert applied.exit_code == 0, applied.stderr
    result = json.loads(applied.stdout)
    assert [(o["kind"], o["id"], o["build_id"]) for o in result["orphans"]] == [("object", orphan_key, failed_build)]
    assert [(d["kind"], d["id"], d["ok"]) for d in result["deleted"]] == [("image", killed.id, True),
                                                                         ("object", orphan_key, True)]
    assert set(harness.objects()) == objects_before - {orphan_key}
    assert [i.status for i in harness.images(harness.source)] == ["active"]
