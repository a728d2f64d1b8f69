"""Real `eulerpub build` runs of the tests/profiles stand-in profiles, shared by the e2e tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.standin import test_cache_dir

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Built:
    """One `eulerpub build --json` run of a stand-in profile: its JSON report and how long it took."""

    report: dict
    seconds: float

    @property
    def record_path(self) -> Path:
        return Path(self.report["record"])


def standin_build_args(profile: str, mirror: str, output: Path) -> list[str]:
    return ["build", "--profile", profile, "--profiles-dir", str(REPO / "tests" / "profiles"),
            "--elements-dir", str(REPO / "tests" / "elements"), "--mirror", mirror, "--build-dir", str(output),
            "--json"]


def build_standin(profile: str, mirror: str, output: Path) -> Built:
    """A real `eulerpub build` of a tests/profiles stand-in profile, in a child process, with the persistent cache."""
    cache = test_cache_dir() / "eulerpub-cache"
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "eulerpub", *standin_build_args(profile, mirror, output)],
                          capture_output=True, text=True, env={**os.environ, "EULERPUB_CACHE_DIR": str(cache)},
                          check=False)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    return Built(json.loads(done.stdout), seconds)

