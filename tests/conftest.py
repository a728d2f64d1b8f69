"""Shared fixtures. Every test runs with its own cache and no inherited cloud credentials or endpoints."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # so `tests.emulators` and friends import as packages

# Fixture modules shared by several test packages. Loaded here, once: a package that re-exported
# `fixtures_moto.moto_server` would get a second session server, and the two would patch moto's (process-wide)
# response classes on top of each other, so one server's reset would leave the other's client tokens stale.
pytest_plugins = ["tests.emulators.fixtures", "tests.fixtures_moto", "tests.fixtures_mirror"]

_LEAKY_PREFIXES = ("AWS_", "HUAWEICLOUD_", "TENCENTCLOUD_", "EULERPUB_")
_TEST_SETTINGS = "EULERPUB_TEST_"  # the test suite's own knobs (e.g. EULERPUB_TEST_CACHE) are kept


_INTEGRATION_DIR = REPO / "tests" / "integration"


def under_ci() -> bool:
    """GitHub Actions (and most CI services) set CI=true."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_root(reason): needs root (loop devices, mounts, chroot, DIB); without it the test is "
        "skipped locally but FAILS under CI (CI=true), so a runner without root never goes green by skipping")


def pytest_runtest_setup(item):
    """`@pytest.mark.needs_root("why")`: run as root, skip locally without it, fail under CI without it.
    GitHub's runners are not root; a skip there would hide that the e2e and the mount tests never ran."""
    marker = item.get_closest_marker("needs_root")
    if marker is None or os.geteuid() == 0:
        return
    reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "needs root")
    if under_ci():
        pytest.fail(f"{reason}: not running as root under CI (CI=true); run this test layer with sudo",
                    pytrace=False)
    pytest.skip(f"{reason} (not root; under CI this is a failure)")


def pytest_collection_modifyitems(items):
    """Everything under tests/integration talks to local servers: mark it so `-m "not integration"` skips it."""
    for item in items:
        if _INTEGRATION_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """No credential, endpoint or eulerpub setting from the developer's shell reaches a test."""
    for key in list(os.environ):
        if key.startswith(_LEAKY_PREFIXES) and not key.startswith(_TEST_SETTINGS):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EULERPUB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys) -> Callable[..., CliResult]:
    """Run `eulerpub ARGS...` in-process exactly as the console script does; capture exit code and streams."""

    def run(*args: str) -> CliResult:
        from eulerpub.cli.app import main

        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
