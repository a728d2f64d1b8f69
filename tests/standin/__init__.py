"""The stand-in base image: a small Debian bookworm disk laid out like the official openEuler qcow2.

`ensure_standin()` builds it once per content of the builder script and keeps it under
~/.cache/eulerpub-tests/standin/<hash>/ (override with EULERPUB_TEST_CACHE), so reruns are instant.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

BUILDER = Path(__file__).with_name("build-standin.sh")
# The builder installs openEuler's own grub defaults: they are part of what the stand-in is.
GRUB_DEFAULTS = Path(__file__).parent.parent / "openeuler-root" / "24.03-LTS-SP1" / "etc" / "default" / "grub"
STANDIN_VERSION = "24.03-LTS-SP1"  # the release name the stand-in is served as
STANDIN_ARCH = "x86_64"


def test_cache_dir() -> Path:
    explicit = os.environ.get("EULERPUB_TEST_CACHE")
    return Path(explicit) if explicit else Path.home() / ".cache" / "eulerpub-tests"


def builder_hash() -> str:
    return hashlib.sha256(BUILDER.read_bytes() + GRUB_DEFAULTS.read_bytes()).hexdigest()[:16]


def ensure_standin(version: str = STANDIN_VERSION, arch: str = STANDIN_ARCH) -> Path:
    """Return the directory holding openEuler-{version}-{arch}.qcow2.xz and its .sha256sum."""
    outdir = test_cache_dir() / "standin" / f"{builder_hash()}-{version}-{arch}"
    name = f"openEuler-{version}-{arch}.qcow2.xz"
    if (outdir / f"{name}.sha256sum").exists() and (outdir / name).exists():
        return outdir
    outdir.parent.mkdir(parents=True, exist_ok=True)
    with open(outdir.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (outdir / f"{name}.sha256sum").exists():
            subprocess.run(["bash", str(BUILDER), str(outdir), version, arch], check=True)
    return outdir


if __name__ == "__main__":
    print(ensure_standin())
