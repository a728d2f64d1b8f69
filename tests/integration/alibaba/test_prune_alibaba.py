"""Listing, deleting and pruning on Alibaba Cloud: the ECS emulator, moto's S3 server as OSS, the real CLI."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from eulerpub.clouds import get_adapter
from tests.emulators.ecs import Image
from tests.integration.sdkclouds import report, rows, s3


def test_a_shared_image_is_unshared_then_deleted(harness, cli, images):
    result = cli(*harness.args(images["qcow2"]))
    assert result.exit_code == 0, result.stderr
    adapter = get_adapter("alibaba")

    for region, row in rows(result.stdout).items():
        (image,) = harness.images(region)
        assert list(image.shared_with) == [harness.share]
        snapshot_id = image.snapshot_id
        assert snapshot_id in harness.emulator.snapshots
        adapter.delete_image(region, row["image_id"])
        adapter.delete_image(region, row["image_id"])  # already gone: fine
        assert harness.images(region) == [] and snapshot_id not in harness.emulator.snapshots

    modifies = harness.emulator.calls("ModifyImageSharePermission")
    assert [c.body.get("RemoveAccount.1") for c in modifies if "RemoveAccount.1" in c.body] == [harness.share] * 3
    assert all(c.error is None for c in harness.emulator.calls("DeleteImage"))


def test_images_list_and_latest_show_only_eulerpubs_images_newest_first(harness, cli, images):
    first = cli(*harness.args(images["qcow2"], share=False))
    second = cli(*harness.args(images["raw"], "--name", "openEuler-second", share=False))
    assert first.exit_code == 0 and second.exit_code == 0, (first.stderr, second.stderr)
    by_hand = Image("m-byhand0000000000000000", harness.source, "by-hand", "x86_64", "Others Linux", "BIOS", "RAW",
                    20, None, status="Available")
    harness.emulator.images[by_hand.id] = by_hand  # the account's own image, not eulerpub's

    listed = cli("images", "list", "--cloud", "alibaba", "--region", harness.source, "--json")

    assert listed.exit_code == 0, listed.stderr
    ids = [i["image_id"] for i in json.loads(listed.stdout)]
    assert ids == [rows(second.stdout)[harness.source]["image_id"], rows(first.stdout)[harness.source]["image_id"]]
    latest = cli("images", "latest", "--cloud", "alibaba", "--region", harness.source, "--profile", "custom")
    assert (latest.exit_code, latest.stdout.strip()) == (0, ids[0]), latest.stderr


def test_prune_deletes_a_failed_import_and_its_orphaned_upload_and_nothing_else(harness, cli, images):
    kept = cli(*harness.args(images["qcow2"], "--keep-object"))
    assert kept.exit_code == 0, kept.stderr
    kept_build = report(kept.stdout)["build_id"]
    (kept_key,) = harness.objects()
    metadata = s3(harness.moto, harness.source).head_object(Bucket=harness.bucket, Key=kept_key)["Metadata"]
    assert metadata["eulerpub-build-id"] == kept_build and metadata["managed-by"] == "eulerpub"

    harness.emulator.faults.add("fail", action=harness.import_action)
    failed = cli(*harness.args(images["raw"], arch="aarch64", share=False))
    assert failed.exit_code == 1
    failed_build = report(failed.stdout)["build_id"]
    (broken,) = [i for i in harness.images(harness.source) if i.status == "CreateFailed"]
    (orphan_key,) = set(harness.objects()) - {kept_key}
    s3(harness.moto, harness.source).put_object(Bucket=harness.bucket, Key="eulerpub/by-hand/disk.raw",
                                                Body=b"no eulerpub metadata")
    objects_before = set(harness.objects())

    args = ("prune", "--cloud", "alibaba", "--region", harness.source, "--keep", "1", "--bucket", harness.bucket)
    young = cli(*args, "--json")
    assert young.exit_code == 0, young.stderr
    survey = json.loads(young.stdout)
    assert [d["image_id"] for d in survey["delete"]] == [broken.id]
    assert survey["orphans"] == []  # minutes old: a publish could still be importing it

    applied = cli(*args, "--orphan-min-age", "0", "--yes", "--json")
    assert applied.exit_code == 0, applied.stderr
    result = json.loads(applied.stdout)
    assert [(o["kind"], o["id"], o["build_id"]) for o in result["orphans"]] == [("object", orphan_key, failed_build)]
    assert [(d["kind"], d["id"], d["ok"]) for d in result["deleted"]] == [("image", broken.id, True),
                                                                         ("object", orphan_key, True)]
    assert set(harness.objects()) == objects_before - {orphan_key}
    assert [i.status for i in harness.images(harness.source)] == ["Available"]


def test_prune_deletes_old_images_with_their_snapshots_and_an_orphaned_snapshot(harness, cli, images):
    old = cli(*harness.args(images["qcow2"], share=False))
    new = cli(*harness.args(images["raw"], "--name", "openEuler-second", share=False))
    assert old.exit_code == 0 and new.exit_code == 0, (old.stderr, new.stderr)
    emulator, source = harness.emulator, harness.source
    old_image = emulator.images[rows(old.stdout)[source]["image_id"]]
    new_image = emulator.images[rows(new.stdout)[source]["image_id"]]
    # a snapshot left behind: its image deleted by hand in the console, the snapshot kept
    (kept,) = [i for i in harness.images("cn-shanghai") if i.id == rows(old.stdout)["cn-shanghai"]["image_id"]]
    del emulator.images[kept.id]
    untagged = Image("m-byhand0000000000000000", source, "by-hand", "x86_64", "Others Linux", "BIOS", "RAW", 20,
                     None, status="Available")
    emulator.images[untagged.id] = untagged
    args = ("prune", "--cloud", "alibaba", "--keep", "1", "--orphan-min-age", "0", "--json")

    survey = cli(*args, "--region", "cn-shanghai")
    source_run = cli(*args, "--region", source, "--yes")
    orphan_run = cli(*args, "--region", "cn-shanghai", "--yes")

    assert survey.exit_code == 0, survey.stderr
    planned = json.loads(survey.stdout)
    assert [(o["kind"], o["id"]) for o in planned["orphans"]] == [("snapshot", kept.snapshot_id)]
    assert not any("snapshots" in n for n in planned.get("not_searched", []))
    assert source_run.exit_code == 0 and orphan_run.exit_code == 0, (source_run.stderr, orphan_run.stderr)
    deleted = json.loads(source_run.stdout)["deleted"]
    assert [(d["kind"], d["id"], d["ok"]) for d in deleted] == [("image", old_image.id, True)]
    assert old_image.id not in emulator.images and old_image.snapshot_id not in emulator.snapshots
    assert new_image.snapshot_id in emulator.snapshots and untagged.id in emulator.images
    assert [(d["kind"], d["id"], d["ok"]) for d in json.loads(orphan_run.stdout)["deleted"]] == \
        [("snapshot", kept.snapshot_id, True)]
    assert kept.snapshot_id not in emulator.snapshots
    assert {s.region for s in emulator.snapshots.values()} == set(harness.regions)  # the new build's stay


@pytest.mark.parametrize(("metadata", "says"), [({"eulerpub_build_id": "b1"}, "0011-00000004"),
                                                ({"eulerpub.build": "b1"}, "0011-00000004"),
                                                ({"big": "x" * 8192}, "0011-00000002")])
def test_the_oss_bucket_refuses_metadata_oss_does_not_take(harness, metadata, says):
    store = s3(harness.moto, harness.source)
    with pytest.raises(ClientError) as refused:
        store.put_object(Bucket=harness.bucket, Key="eulerpub/x/disk.raw", Body=b"x", Metadata=metadata)
    with pytest.raises(ClientError):
        store.create_multipart_upload(Bucket=harness.bucket, Key="eulerpub/x/disk.raw", Metadata=metadata)
    assert says in refused.value.response["Error"]["Message"]
    assert harness.objects() == []
    store.put_object(Bucket=harness.bucket, Key="eulerpub/x/disk.raw", Body=b"x",
                     Metadata={"Eulerpub-Build-Id": "b1", "managed-by": "eulerpub"})  # upper case is lowered
