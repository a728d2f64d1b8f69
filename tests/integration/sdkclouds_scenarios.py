"""Resume, idempotency, failure and credential scenarios that Huawei, Tencent and Alibaba must all pass.

Each cloud's test module imports these tests; its conftest supplies the `harness` (emulator + moto) and `images`
fixtures. Every test drives the real CLI: in-process through the `cli` fixture, or as a child process when it is
killed -9.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.sdkclouds import (
    Harness,
    journal,
    journal_files,
    kill_hard,
    rows,
    spawn_cli,
    wait_until,
)

WRONG_SECRET = "Wr0ng-secret-value-that-must-not-leak"
PATIENT = ("--wait-timeout", "5")  # minutes: a killed child must still be waiting when it is killed


def _one_image_per_region(harness: Harness) -> None:
    for region in harness.regions:
        assert len(harness.images(region)) == 1, (region, harness.images(region))
        assert len(harness.live_images(region)) == 1


def _uploads(harness: Harness) -> tuple[int, int]:
    """(multipart uploads started, parts sent) so far."""
    return len(harness.moto.calls("CreateMultipartUpload")), len(harness.moto.calls("UploadPart"))


def test_rerun_after_success_creates_nothing(harness: Harness, cli, images) -> None:
    first = cli(*harness.args(images["qcow2"]))
    assert first.exit_code == 0, first.stderr
    creates, uploads = harness.creates(), _uploads(harness)

    again = cli(*harness.args(images["qcow2"]))

    assert again.exit_code == 0, again.stderr
    assert {r: row["image_id"] for r, row in rows(again.stdout).items()} == \
        {r: row["image_id"] for r, row in rows(first.stdout).items()}
    assert not any(row["created"] for row in rows(again.stdout).values())
    assert harness.creates() == creates and _uploads(harness) == uploads
    _one_image_per_region(harness)


def test_failed_import_keeps_the_object_and_a_rerun_imports_it_without_uploading(harness: Harness, cli,
                                                                                   images) -> None:
    harness.emulator.faults.add("fail", action=harness.import_action, reason="the disk has no partition table")

    failed = cli(*harness.args(images["qcow2"]))

    assert failed.exit_code == 1
    result = rows(failed.stdout)
    assert result[harness.source]["status"] == "failed"
    why = "the disk has no partition table" if harness.says_why else harness.failed_states[0]
    assert "import" in result[harness.source]["error"] and why in result[harness.source]["error"]
    assert all(result[r]["status"] == "skipped" for r in harness.regions[1:])
    assert harness.objects() != []  # kept for the re-run
    record = journal(Path.cwd(), harness.cloud, harness.source)
    assert record is not None and record["steps"]["upload"]["status"] == "done"
    assert record["steps"]["import"]["status"] == "failed"
    uploads = _uploads(harness)

    retried = cli(*harness.args(images["qcow2"]))

    assert retried.exit_code == 0, retried.stderr
    assert _uploads(harness) == uploads  # imported from the kept object
    assert harness.imports() == 2
    assert harness.objects() == []
    _one_image_per_region(harness)  # the failed image of the first attempt is gone


def test_failed_and_stuck_copies_fail_alone_and_a_rerun_finishes_only_them(harness: Harness, cli,
                                                                             images) -> None:
    failing, slow = harness.regions[1], harness.regions[2]
    emulator = harness.emulator
    emulator.faults.add("fail", action=harness.copy_action, region=failing, reason="replication quota exceeded")
    emulator.faults.add("stuck", action=harness.copy_action, region=slow)
    emulator.faults.add("throttle", action=harness.import_action, times=2)
    emulator.faults.add("throttle", action=harness.poll_action, times=3)

    first = cli(*harness.args(images["qcow2"]))

    assert first.exit_code == 1
    result = rows(first.stdout)
    assert result[harness.source]["status"] == "done"
    why = "replication quota exceeded" if harness.says_why else harness.failed_states[1]
    assert result[failing]["status"] == "failed" and why in result[failing]["error"]
    assert result[slow]["status"] == "failed" and "still running" in result[slow]["error"]
    assert "2 of 3 regions failed" in first.stderr
    throttled = [c for c in emulator.requests if c.error in harness.throttle_codes]
    assert len(throttled) == 5  # all retried: the source region went through
    imports, slow_copies = harness.imports(), harness.copies_to(slow)
    harness.unstick()  # the slow region's copy finishes after all

    second = cli(*harness.args(images["qcow2"]))

    assert second.exit_code == 0, second.stderr
    result = rows(second.stdout)
    assert result[harness.source]["created"] is False
    assert harness.imports() == imports
    assert harness.copies_to(slow) == slow_copies  # waited on the same copy
    assert harness.copies_to(failing) == 2  # copied again
    _one_image_per_region(harness)


def test_kill_during_upload_resumes_the_same_multipart_upload(harness: Harness, cli, images) -> None:
    moto = harness.moto
    moto.add_fault("delay", service="s3", action="UploadPart", every=2, delay=1.5)
    child = spawn_cli([*harness.args(images["qcow2"]), *PATIENT], Path.cwd())
    wait_until(lambda: sum(r.status == 200 for r in moto.calls("UploadPart")) >= 2, "two parts stored")
    kill_hard(child)
    moto.faults.clear()
    record = journal(Path.cwd(), harness.cloud, harness.source)
    assert record is not None and record["steps"]["upload"]["status"] == "running"
    upload_id = record["steps"]["upload"]["data"]["upload_id"]
    seen = len(moto.requests)

    resumed = cli(*harness.args(images["qcow2"]))

    assert resumed.exit_code == 0, resumed.stderr
    after = moto.requests[seen:]
    assert not [r for r in after if r.action == "CreateMultipartUpload"]
    (complete,) = [r for r in after if r.action == "CompleteMultipartUpload"]
    assert complete.params["uploadId"] == upload_id
    sent = sum(r.body_size for r in after if r.action == "UploadPart" and r.status == 200)
    assert sent < images["qcow2"].stat().st_size
    assert harness.objects() == []
    _one_image_per_region(harness)


def test_kill_during_the_import_wait_resumes_waiting_on_the_same_import(harness: Harness, cli, images) -> None:
    harness.emulator.faults.add("stuck", action=harness.import_action)
    child = spawn_cli([*harness.args(images["qcow2"]), *PATIENT], Path.cwd())

    def import_started() -> bool:
        record = journal(Path.cwd(), harness.cloud, harness.source)
        step = (record or {}).get("steps", {}).get("import", {})
        return step.get("status") == "running" and bool(step.get("id"))

    wait_until(import_started, "the import to start")
    kill_hard(child)
    harness.unstick()

    resumed = cli(*harness.args(images["qcow2"]))

    assert resumed.exit_code == 0, resumed.stderr
    assert harness.imports() == 1
    assert harness.objects() == []
    _one_image_per_region(harness)


def test_wrong_secret_is_one_sentence_and_appears_in_no_output_or_record(harness: Harness, cli, images,
                                                                         monkeypatch) -> None:
    monkeypatch.setenv(harness.secret_variable, WRONG_SECRET)

    plain = cli(*harness.args(images["qcow2"]))
    debug = cli("--debug", *harness.args(images["qcow2"]))

    assert plain.exit_code != 0 and debug.exit_code != 0
    errors = [line for line in plain.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, plain.stderr
    assert f"{harness.cloud} rejected the credentials in {harness.source}" in errors[0]
    assert harness.emulator.auth_failures and harness.creates() == 0
    records = "".join(path.read_text() for path in journal_files(Path.cwd()))
    for text in (plain.stdout, plain.stderr, debug.stdout, debug.stderr, records):
        assert WRONG_SECRET not in text and harness.secret not in text


def test_missing_credentials_name_the_variable(harness: Harness, cli, images, monkeypatch) -> None:
    monkeypatch.delenv(harness.secret_variable)

    result = cli(*harness.args(images["qcow2"]))

    assert result.exit_code == 2
    assert f"set {harness.secret_variable} in the environment" in result.stderr
    assert harness.emulator.requests == []


def test_rerun_without_the_journal_finds_every_image_by_its_tag(harness: Harness, cli, images) -> None:
    first = cli(*harness.args(images["qcow2"]))
    assert first.exit_code == 0, first.stderr
    for path in journal_files(Path.cwd()):
        path.unlink()
    creates, uploads = harness.creates(), _uploads(harness)

    again = cli(*harness.args(images["qcow2"]))

    assert again.exit_code == 0, again.stderr
    assert {r: row["image_id"] for r, row in rows(again.stdout).items()} == \
        {r: row["image_id"] for r, row in rows(first.stdout).items()}
    assert not any(row["created"] for row in rows(again.stdout).values())
    assert harness.creates() == creates and _uploads(harness) == uploads
    _one_image_per_region(harness)
