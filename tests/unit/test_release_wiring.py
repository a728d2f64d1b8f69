"""The default steps' own logic: existing builds for --no-build, and a remembered boot-test pass."""

from __future__ import annotations

import pytest

from eulerpub.bootcheck import RESULT_NAME as BOOT_RESULT_NAME
from eulerpub.errors import UsageError
from eulerpub.manifest import write_json_atomic, write_record
from eulerpub.release.matrix import BuildKey
from eulerpub.release.runner import BuiltImage
from eulerpub.release.wiring import BootTester, ExistingBuilds
from tests.unit.release_fakes import make_record

KEY = BuildKey("minimal", "24.03-LTS-SP1", "x86_64")


def test_existing_builds_finds_the_record_and_never_builds(tmp_path):
    record = make_record(KEY)
    path = write_record(tmp_path / record.build_id, record)
    existing = ExistingBuilds(tmp_path)
    found = existing.find(KEY)
    assert found is not None and found.record_path == path and found.reused
    assert existing.find(BuildKey("minimal", "24.03-LTS-SP1", "aarch64")) is None
    with pytest.raises(UsageError, match=r"no build of minimal/24.03-LTS-SP1/x86_64 under .*\(--no-build\)"):
        existing.refuse(KEY)


def test_a_remembered_pass_of_the_same_build_skips_the_boot(tmp_path):
    record = make_record(KEY)
    path = write_record(tmp_path, record)
    write_json_atomic(tmp_path / BOOT_RESULT_NAME, {"build_id": record.build_id, "passed": True})
    result = BootTester({})(BuiltImage(path, record))  # no profiles needed: nothing is booted
    assert result.passed
    assert BOOT_RESULT_NAME in result.detail


def test_a_remembered_pass_of_another_build_does_not_count(tmp_path, monkeypatch):
    record = make_record(KEY)
    path = write_record(tmp_path, record)
    write_json_atomic(tmp_path / BOOT_RESULT_NAME, {"build_id": "other", "passed": True})
    booted = []

    def boot_test(image, *, checks, arch):
        booted.append(image)
        raise UsageError(f"no image at {image}")

    from eulerpub import bootcheck
    from eulerpub.profiles import load_profile

    monkeypatch.setattr(bootcheck, "boot_test", boot_test)

    with pytest.raises(UsageError, match="no image at"):
        BootTester({"minimal": load_profile("minimal")})(BuiltImage(path, record))
    assert booted == [tmp_path / "disk.qcow2"]
