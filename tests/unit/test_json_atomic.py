"""The one atomic JSON writer (manifest.write_json_atomic): readers see the old file or the new one, and a failed
write leaves nothing behind (issue 15 item 7: fetch's own writer left its temporary file when the rename failed)."""

from __future__ import annotations

import json

import pytest

from eulerpub import fetch
from eulerpub.jsonfile import write_json_atomic


def test_a_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "data.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"b": 2})
    assert json.loads(target.read_text()) == {"b": 2}
    assert [p.name for p in target.parent.iterdir()] == ["data.json"]


def test_data_that_cannot_be_written_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "data.json"
    write_json_atomic(target, {"a": 1})
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError):
        write_json_atomic(target, {"a": circular})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_the_fetch_index_leaks_no_temporary_when_the_rename_fails(tmp_path):
    layout = fetch.CacheLayout(tmp_path)
    layout.index.mkdir(parents=True)  # os.replace onto a directory fails
    (layout.index / "keep").write_text("x")
    with pytest.raises(OSError):
        fetch.record_in_index(layout, "https://mirror.example/a.qcow2.xz", "0" * 64, "a.qcow2.xz", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "partial"]
