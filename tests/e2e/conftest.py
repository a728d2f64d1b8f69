"""End-to-end fixtures: the stand-in base image served from the local test mirror in the openEuler layout."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from eulerpub.catalog import image_path
from tests.e2e.builds import Built, build_standin
from tests.mirror import MirrorServer
from tests.standin import STANDIN_ARCH, STANDIN_VERSION, ensure_standin, test_cache_dir


@pytest.fixture(scope="session")
def standin_dir() -> Path:
    """The cached stand-in base image (built on first use, about 3 minutes)."""
    return ensure_standin()


@pytest.fixture(scope="session")
def openeuler_mirror(standin_dir: Path, tmp_path_factory) -> Iterator[str]:
    """The URL of a mirror serving openEuler-{VER}/virtual_machine_img/{ARCH}/ with the stand-in."""
    root = tmp_path_factory.mktemp("mirror")
    target = root / image_path(STANDIN_VERSION, STANDIN_ARCH)
    target.parent.mkdir(parents=True)
    for name in (target.name, f"{target.name}.sha256sum"):
        _link_or_copy(standin_dir / name, target.with_name(name))
    with MirrorServer(root) as server:
        yield server.url


def _link_or_copy(source: Path, dest: Path) -> None:
    """The mirror serves regular files only (no symlinks): hard-link when possible, else copy."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


@pytest.fixture
def persistent_cache(monkeypatch) -> Path:
    """Keep eulerpub's cache (downloads; DIB's image cache with its apt .deb cache) between e2e runs."""
    cache = test_cache_dir() / "eulerpub-cache"
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("EULERPUB_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def hpc_standin_build(openeuler_mirror, tmp_path_factory) -> Built:
    """The hardened hpc profile on the stand-in, built once per session (test_hpc_standin inspects and boots it;
    test_hpcnow_standin runs the hpcnow check against it)."""
    return build_standin("hpc-standin", openeuler_mirror, tmp_path_factory.mktemp("hpc-builds"))
