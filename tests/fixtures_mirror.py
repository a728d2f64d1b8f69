"""Pytest fixtures for the local openEuler mirror (see tests/mirror.py). Load with
`pytest_plugins = ["tests.fixtures_mirror"]` in tests/conftest.py.

- `mirror`: a running MirrorServer over an empty tree in tmp_path (publish into `mirror.root`).
- `mirror_env`: the same server, with EULERPUB_MIRROR pointing at it for the CLI and library code.
- `qcow2_like`: a small (3 MiB) image-shaped file to publish.
- `published_image`: `qcow2_like` published as 24.03-LTS-SP1 x86_64 on `mirror_env`;
  returns a `PublishedMirrorImage` with the release, arch, source file and what was published.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mirror import MirrorServer, PublishedImage, make_qcow2_like, publish_image

SMALL_IMAGE_BYTES = 3 << 20  # a few xz blocks' worth: big enough to cut a download in half, quick to compress
DEFAULT_RELEASE = "24.03-LTS-SP1"
DEFAULT_ARCH = "x86_64"


@dataclass(frozen=True)
class PublishedMirrorImage:
    release: str
    arch: str
    source: Path  # the uncompressed file that was published
    published: PublishedImage
    mirror: MirrorServer


@pytest.fixture
def mirror(tmp_path) -> Iterator[MirrorServer]:
    with MirrorServer(tmp_path / "mirror") as server:
        yield server


@pytest.fixture
def mirror_env(mirror, monkeypatch) -> MirrorServer:
    monkeypatch.setenv("EULERPUB_MIRROR", mirror.url)
    return mirror


@pytest.fixture
def qcow2_like(tmp_path) -> Path:
    return make_qcow2_like(tmp_path / "source.qcow2", SMALL_IMAGE_BYTES)


@pytest.fixture
def published_image(mirror_env, qcow2_like) -> PublishedMirrorImage:
    published = publish_image(mirror_env.root, DEFAULT_RELEASE, DEFAULT_ARCH, qcow2_like)
    return PublishedMirrorImage(DEFAULT_RELEASE, DEFAULT_ARCH, qcow2_like, published, mirror_env)
