"""The publish journal: versioned, written through on every change, resumable, refusing other versions."""

from __future__ import annotations

import json

import pytest

from eulerpub.errors import UsageError
from eulerpub.publish.journal import SCHEMA_VERSION, JournalStore


def test_every_change_is_on_disk_at_once(tmp_path):
    store = JournalStore(tmp_path)
    region_log = store.open("aws", "us-east-1", role="source", build_id="b-1", name="n")
    checkpoint = region_log.checkpoint("upload")
    checkpoint.update(upload_id="u-1", parts=[1, 2])

    on_disk = json.loads((tmp_path / "aws" / "us-east-1.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["steps"]["upload"] == {**on_disk["steps"]["upload"], "status": "running",
                                          "data": {"upload_id": "u-1", "parts": [1, 2]}}

    checkpoint.update(save=False, parts=[1, 2, 3])
    assert store.read("aws", "us-east-1").step("upload").data["parts"] == [1, 2], "batched until saved"
    checkpoint.save()
    assert store.read("aws", "us-east-1").step("upload").data["parts"] == [1, 2, 3]

    resumed = store.open("aws", "us-east-1", role="source", build_id="b-1", name="n")
    assert resumed.checkpoint("upload").get("upload_id") == "u-1"
    assert list(tmp_path.glob("aws/.*.tmp")) == [], "no temp file left behind"


def test_a_done_step_gives_a_fresh_checkpoint_and_restart_bumps_the_attempt(tmp_path):
    store = JournalStore(tmp_path)
    region_log = store.open("aws", "r", role="source", build_id="b", name="n")
    region_log.record("import", "running", id="task-1")
    region_log.restart("import", "boom")
    step = store.read("aws", "r").step("import")
    assert (step.status, step.id, step.attempt, step.error) == ("failed", None, 2, "boom")

    region_log.record("upload", "done", id="key", data={"kind": "object"})
    assert region_log.checkpoint("upload").data == {}


def test_a_journal_of_another_build_is_not_resumed(tmp_path):
    store = JournalStore(tmp_path)
    store.open("aws", "r", role="source", build_id="old", name="n").record("upload", "done", id="k")
    fresh = store.open("aws", "r", role="source", build_id="new", name="n")
    assert fresh.journal.steps == {}


@pytest.mark.parametrize("content", ['{"schema_version": 99}', "{not json"])
def test_unknown_versions_and_torn_files_are_refused_with_a_hint(tmp_path, content):
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "r.json").write_text(content)
    with pytest.raises(UsageError, match="move it away"):
        JournalStore(tmp_path).read("aws", "r")
