"""`eulerpub images list` and `eulerpub prune` on the in-memory cloud: listing, dry run, --yes, the index."""

from __future__ import annotations

import json

import pytest

from eulerpub import clouds
from eulerpub.clouds.base import BuildIdentity, ImageRef, Leftover
from tests.unit.fake_cloud import FakeAdapter, FakeCloud

REGION = "us-east-1"


@pytest.fixture
def cloud(monkeypatch) -> FakeCloud:
    fake = FakeCloud(regions=(REGION,))
    for day in (2, 3, 1):  # not stored in date order: the listing sorts, newest first
        tags = BuildIdentity(f"b{day}", "hpc", "24.03", "x86_64").tags()
        fake.images.setdefault(REGION, {})[f"img-{day}"] = ImageRef(
            "aws", REGION, f"img-{day}", f"openEuler-24.03-x86_64-hpc-2025060{day}", "available",
            (f"snap-{day}",), tags, f"2025-06-0{day}T00:00:00Z")
    monkeypatch.setitem(clouds.ADAPTERS, "aws", lambda: FakeAdapter(fake))
    return fake


def write_index(tmp_path, image_id: str) -> None:
    entry = {"image_id": image_id, "name": "n", "created": "c", "build_id": "b", "artifact_sha256": "s"}
    (tmp_path / "index.json").write_text(json.dumps(
        {"schema_version": 1, "updated": "", "images": {"hpc": {"24.03": {"x86_64": {"aws": {REGION: entry}}}}}}))


def not_eulerpubs(cloud: FakeCloud) -> None:
    """An image of the same account eulerpub did not make (no managed-by tag), the newest of all."""
    cloud.images[REGION]["ami-theirs"] = ImageRef("aws", REGION, "ami-theirs", "openEuler-24.03-x86_64-hpc-mine",
                                                  "available", ("snap-theirs",),
                                                  {"eulerpub:profile": "hpc", "team": "web"},
                                                  "2025-07-01T00:00:00Z")


def test_images_list_marks_the_current_image(cli, cloud, tmp_path):
    write_index(tmp_path, "img-2")
    not_eulerpubs(cloud)
    result = cli("images", "list", "--cloud", "aws", "--region", REGION, "--releases-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) == {"img-1", "img-2", "img-3"}
    assert rows["img-2"].rstrip().endswith("yes")
    assert not rows["img-3"].rstrip().endswith("yes")
    listed = json.loads(cli("images", "list", "--cloud", "aws", "--region", REGION, "--profile", "hpc",
                            "--json", "--releases-dir", tmp_path).stdout)
    assert [(r["image_id"], r["current"], r["release"]) for r in listed] == [  # newest first
        ("img-3", False, "24.03"), ("img-2", True, "24.03"), ("img-1", False, "24.03")]
    none = cli("images", "list", "--cloud", "aws", "--region", REGION, "--profile", "desktop")
    assert "no eulerpub images in aws/us-east-1 for profile desktop" in none.stdout


def test_prune_is_a_dry_run_until_yes(cli, cloud, tmp_path):
    not_eulerpubs(cloud)
    result = cli("prune", "--cloud", "aws", "--region", REGION, "--keep", "1", "--releases-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "would delete  img-1 with snap-1" in result.stdout
    assert "aws/us-east-1: 2 to delete; nothing was changed (pass --yes to delete)" in result.stdout
    assert "orphans: not searched: uploaded objects (pass --bucket to search the upload bucket)" in result.stdout
    assert len(cloud.images[REGION]) == 4

    write_index(tmp_path, "img-1")
    applied = cli("prune", "--cloud", "aws", "--region", REGION, "--keep", "1", "--yes", "--json",
                  "--releases-dir", tmp_path)
    assert applied.exit_code == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert [d["id"] for d in report["deleted"]] == ["img-2"]
    assert sorted(cloud.images[REGION]) == ["ami-theirs", "img-1", "img-3"]  # and the index's current image


def test_prune_lists_orphans_in_the_dry_run_and_deletes_them_with_yes(cli, cloud, tmp_path):
    tags = BuildIdentity("gone", "hpc", "24.03", "x86_64").tags()
    cloud.leftovers = [Leftover("snapshot", "snap-lost", "2025-06-01T00:00:00+00:00", tags),
                       Leftover("object", "eulerpub/gone/disk.raw", "2025-06-01T00:00:00+00:00", tags, "bkt")]
    args = ("prune", "--cloud", "aws", "--region", REGION, "--keep", "3", "--bucket", "bkt", "--releases-dir",
            tmp_path)
    dry = cli(*args)
    assert dry.exit_code == 0, dry.stderr
    assert "would delete  orphaned snapshot snap-lost  (build gone, created 2025-06-01T00:00:00+00:00)" in dry.stdout
    assert "would delete  orphaned object eulerpub/gone/disk.raw in bkt" in dry.stdout
    assert "not searched" not in dry.stdout
    assert "aws/us-east-1: 2 to delete" in dry.stdout and len(cloud.leftovers) == 2

    applied = cli(*args, "--yes", "--json")
    assert applied.exit_code == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert [(o["kind"], o["id"], o["build_id"]) for o in report["orphans"]] == [
        ("snapshot", "snap-lost", "gone"), ("object", "eulerpub/gone/disk.raw", "gone")]
    assert [(d["kind"], d["ok"]) for d in report["deleted"]] == [("snapshot", True), ("object", True)]
    assert cloud.leftovers == [] and len(cloud.images[REGION]) == 3


def test_prune_refuses_keep_zero(cli, cloud):
    result = cli("prune", "--cloud", "aws", "--region", REGION, "--keep", "0")
    assert result.exit_code == 2
    assert len(cloud.images[REGION]) == 3
