"""`@pytest.mark.needs_root` (tests/conftest.py): without root a test is skipped locally and FAILS under CI, so
GitHub's non-root runners cannot go green by skipping the e2e and the mount tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def run_as_non_root(directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A pytest session over `directory` without root: as nobody when we are root, else as ourselves."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(directory)]
    if os.geteuid() == 0:
        assert shutil.which("setpriv"), "setpriv (util-linux) is installed"
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    environment = {k: v for k, v in os.environ.items() if k != "CI"}
    environment.update(PYTHONPATH=str(REPO), HOME=str(directory), **env)
    return subprocess.run(argv, cwd=directory, env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture
def suite() -> Iterator[Path]:
    """A one-test suite using the root conftest's needs_root hooks (not its fixtures, which need the repo), in a
    directory nobody can read (pytest's own tmp_path lies under a private directory)."""
    tmp_path = Path(tempfile.mkdtemp(prefix="eulerpub-needs-root-"))
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_configure, pytest_runtest_setup\n")
    (tmp_path / "test_mounts.py").write_text(
        "import pytest\n\n\n@pytest.mark.needs_root('mounting needs root')\ndef test_mount():\n    pass\n")
    tmp_path.chmod(0o777)
    for path in tmp_path.iterdir():
        path.chmod(0o666)
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_without_root_a_needs_root_test_is_skipped_locally(suite):
    done = run_as_non_root(suite)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mounting needs root (not root; under CI this is a failure)" in done.stdout
    assert "1 skipped" in done.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_without_root_under_ci_a_needs_root_test_fails(suite, ci):
    done = run_as_non_root(suite, CI=ci)
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("mounting needs root: not running as root under CI (CI=true); run this test layer with sudo"
            in done.stdout)
    assert "skipped" not in done.stdout


@pytest.mark.needs_root("the root case needs root")
def test_as_root_a_needs_root_test_runs(suite):
    environment = {**os.environ, "PYTHONPATH": str(REPO), "CI": "true"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)], cwd=suite,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr


UID_SKIP = re.compile(r"skipif\(\s*os\.geteuid\(\)\s*!=\s*0")


def test_no_test_skips_itself_for_lack_of_root():
    """Root-needing tests say so with needs_root, never a plain skipif on the uid, which would skip silently on a
    non-root CI runner (a skipif on geteuid() == 0, such as the mount-namespace check, runs as root and is fine)."""
    offenders = [f"{path.relative_to(REPO)}:{number}"
                 for path in (REPO / "tests").rglob("*.py") if path != Path(__file__).resolve()
                 for number, line in enumerate(path.read_text().splitlines(), 1) if UID_SKIP.search(line)]
    assert not offenders, f"use pytest.mark.needs_root(reason) instead of a uid skipif: {offenders}"
