"""The release index: merging never drops cells, updates move only on change, and the README table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from eulerpub.errors import UsageError
from eulerpub.release.index import (
    IndexEntry,
    Located,
    ReleaseIndex,
    combine,
    current_image_ids,
    entries_from_results,
    iter_entries,
    merge,
    read_index,
)
from eulerpub.release.matrix import BuildKey, Cell
from eulerpub.release.plan import make_plan
from eulerpub.release.readme import render_readme, write_release_pages
from eulerpub.release.runner import run_cells
from tests.unit.release_fakes import FakeSteps

NOW = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)
LATER = datetime(2025, 7, 1, 4, 0, tzinfo=UTC)


def entry(image_id: str, build_id: str = "b1") -> IndexEntry:
    return IndexEntry(image_id=image_id, name=f"openEuler-24.03-x86_64-min-{image_id}", created="2025-06-01T00:00:00",
                      build_id=build_id, artifact_sha256="a" * 64)


def at(cloud: str, region: str, image_id: str, *, profile: str = "min", build_id: str = "b1") -> Located:
    return Located(profile, "24.03", "x86_64", cloud, region, entry(image_id, build_id))


def test_merge_adds_and_updates_and_never_drops_other_cells():
    first = merge(ReleaseIndex(), [at("aws", "us-east-1", "ami-1"), at("huawei", "cn-north-4", "ims-1"),
                                   at("aws", "us-east-1", "ami-9", profile="hpc")], now=NOW)
    second = merge(first, [at("aws", "us-east-1", "ami-2", build_id="b2"), at("aws", "us-west-2", "ami-3")],
                   now=LATER)
    found = {(i.profile, i.cloud, i.region): i.entry.image_id for i in iter_entries(second)}
    assert found == {("min", "aws", "us-east-1"): "ami-2", ("min", "aws", "us-west-2"): "ami-3",
                     ("min", "huawei", "cn-north-4"): "ims-1", ("hpc", "aws", "us-east-1"): "ami-9"}
    assert second.updated == "2025-07-01T04:00:00+00:00"
    assert first.images["min"]["24.03"]["x86_64"]["aws"]["us-east-1"].image_id == "ami-1"  # pure


def test_merge_without_a_change_keeps_the_index_and_its_timestamp():
    first = merge(ReleaseIndex(), [at("aws", "us-east-1", "ami-1")], now=NOW)
    assert merge(first, [at("aws", "us-east-1", "ami-1")], now=LATER) is first
    assert merge(first, [], now=LATER) is first


def test_current_image_ids_are_per_cloud_region():
    index = merge(ReleaseIndex(), [at("aws", "us-east-1", "ami-1"), at("aws", "us-east-1", "ami-9", profile="hpc"),
                                   at("aws", "us-west-2", "ami-3")], now=NOW)
    assert current_image_ids(index, "aws", "us-east-1") == {"ami-1", "ami-9"}
    assert current_image_ids(index, "tencent", "ap-guangzhou") == set()


def test_entries_come_from_every_image_in_place_including_a_partly_failed_cell():
    key = BuildKey("min", "24.03", "x86_64")
    cells = [Cell(*vars(key).values(), "aws", "us-east-1", ("us-west-2", "eu-west-1")),
             Cell(*vars(key).values(), "huawei", "cn-north-4")]
    fake = FakeSteps(failing_copies={"eu-west-1"}, failing_publishes={cells[1].key})
    results = run_cells(make_plan(cells, 2), fake.steps())
    entries = entries_from_results(results)
    assert [(e.cloud, e.region) for e in entries] == [("aws", "us-east-1"), ("aws", "us-west-2")]
    record = fake.records[key]
    assert all(e.entry.build_id == record.build_id and e.entry.artifact_sha256 == record.artifact().sha256
               for e in entries)


def test_pages_round_trip_and_the_schema_is_the_documented_one(tmp_path):
    index = merge(ReleaseIndex(), [at("aws", "us-east-1", "ami-1")], now=NOW)
    index_path, readme_path = write_release_pages(tmp_path, index)
    assert read_index(index_path) == index
    data = json.loads(index_path.read_text())
    assert set(data) == {"schema_version", "updated", "images", "latest"}
    assert data["schema_version"] == 1
    assert set(data["images"]["min"]["24.03"]["x86_64"]["aws"]["us-east-1"]) == {
        "image_id", "name", "created", "build_id", "artifact_sha256"}
    assert [set(item) for item in data["latest"]] == [
        {"profile", "release", "arch", "cloud", "region", "image_id", "name", "created"}]
    assert "`ami-1`" in readme_path.read_text()
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_missing_index_is_empty_and_a_broken_one_is_named(tmp_path):
    assert read_index(tmp_path / "index.json") == ReleaseIndex()
    broken = tmp_path / "index.json"
    broken.write_text('{"schema_version": 1, "images": {"min": []}}')
    with pytest.raises(UsageError, match=r"index.json: images.min: .*not a valid eulerpub release index"):
        read_index(broken)
    broken.write_text('{"schema_version": 7}')
    with pytest.raises(UsageError, match="schema_version 7 is newer than this eulerpub reads"):
        read_index(broken)


def test_readme_has_one_sorted_row_per_image():
    index = merge(ReleaseIndex(), [at("huawei", "cn-north-4", "ims-1"), at("aws", "us-east-1", "ami-1"),
                                   at("aws", "us-east-1", "ami-9", profile="hpc", build_id="c" * 40)], now=NOW)
    text = render_readme(index)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert rows == [
        "| hpc | 24.03 | x86_64 | aws | us-east-1 | `ami-9` | openEuler-24.03-x86_64-min-ami-9 | "
        "2025-06-01T00:00:00 | `cccccccccccc` |",
        "| min | 24.03 | x86_64 | aws | us-east-1 | `ami-1` | openEuler-24.03-x86_64-min-ami-1 | "
        "2025-06-01T00:00:00 | `b1` |",
        "| min | 24.03 | x86_64 | huawei | cn-north-4 | `ims-1` | openEuler-24.03-x86_64-min-ims-1 | "
        "2025-06-01T00:00:00 | `b1` |",
    ]
    assert "Last updated 2025-06-01T04:00:00+00:00." in text
    assert "No images published yet." in render_readme(ReleaseIndex())
    assert "| Profile |" not in render_readme(ReleaseIndex())


def test_combining_parallel_jobs_indexes_keeps_each_clouds_newest_entry():
    base = merge(ReleaseIndex(), [at("aws", "us-east-1", "ami-old"), at("huawei", "cn-north-4", "ims-old")], now=NOW)
    newer = IndexEntry(**{**entry("x").model_dump(), "created": "2025-07-01T00:00:00"})
    aws_job = merge(base, [Located("min", "24.03", "x86_64", "aws", "us-east-1",
                                   newer.model_copy(update={"image_id": "ami-new"}))], now=LATER)
    huawei_job = merge(base, [Located("min", "24.03", "x86_64", "huawei", "cn-north-4",
                                      newer.model_copy(update={"image_id": "ims-new"})),
                              at("tencent", "ap-guangzhou", "img-1")], now=LATER)
    combined = combine(base, [aws_job, huawei_job], now=LATER)
    found = {(i.cloud, i.region): i.entry.image_id for i in iter_entries(combined)}
    assert found == {("aws", "us-east-1"): "ami-new", ("huawei", "cn-north-4"): "ims-new",
                     ("tencent", "ap-guangzhou"): "img-1"}
    assert combine(combined, [aws_job, huawei_job, base], now=LATER) is combined


def test_latest_has_one_entry_per_series_and_follows_the_images(tmp_path):
    first = merge(ReleaseIndex(), [at("aws", "us-east-1", "ami-1"), at("aws", "us-east-1", "ami-7", profile="hpc"),
                                   at("huawei", "cn-north-4", "img-1")], now=NOW)
    later = merge(first, [at("aws", "us-east-1", "ami-2", build_id="b2")], now=NOW)
    assert [(e.profile, e.cloud, e.region, e.image_id) for e in later.latest] == [
        ("hpc", "aws", "us-east-1", "ami-7"), ("min", "aws", "us-east-1", "ami-2"),
        ("min", "huawei", "cn-north-4", "img-1")]
    index_path, _ = write_release_pages(tmp_path, later)
    data = json.loads(index_path.read_text())
    assert [e["image_id"] for e in data["latest"]] == ["ami-7", "ami-2", "img-1"]
    data["latest"] = [{"image_id": "ami-stale"}]  # a hand-edited list is not believed: images decide
    index_path.write_text(json.dumps(data))
    assert [e.image_id for e in read_index(index_path).latest] == ["ami-7", "ami-2", "img-1"]


def test_an_index_that_is_not_json_is_one_sentence(tmp_path):
    broken = tmp_path / "index.json"
    broken.write_text("{not json")
    with pytest.raises(UsageError, match=r"index.json: not JSON .*not a valid eulerpub release index"):
        read_index(broken)
