"""AWS integration tests: moto's server (extended by tests/fixtures_moto.py) and small sparse disk images."""

from __future__ import annotations

import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

MiB = 1024 * 1024
BLOCK = 512 * 1024
IMAGE_SIZE = 64 * MiB  # virtual size: small, but 128 EBS blocks, so zero-skipping and resume are visible
# Random data at known offsets (bytes): one partial block, one block-aligned run, one run across a boundary
# and a tail in the last block. Everything else is a hole.
DATA_EXTENTS = ((0, 100_000), (8 * MiB, 3 * MiB), (40 * MiB - 1000, 2 * MiB), (IMAGE_SIZE - 4096, 4096))
FAST_POLL = "0.02"  # seconds between status polls against moto: its jobs advance per describe call, not in time


@dataclass(frozen=True)
class TestImage:
    path: Path
    fmt: str
    raw: Path  # the same content as a raw file, for comparisons

    @property
    def nonzero_blocks(self) -> dict[int, bytes]:
        data = self.raw.read_bytes()
        blocks = {}
        for index in range(len(data) // BLOCK):
            chunk = data[index * BLOCK:(index + 1) * BLOCK]
            if chunk.count(0) != BLOCK:
                blocks[index] = chunk
        return blocks


def make_raw(path: Path, seed: int = 7) -> Path:
    rng = __import__("random").Random(seed)
    with open(path, "wb") as handle:
        handle.truncate(IMAGE_SIZE)
        for offset, length in DATA_EXTENTS:
            handle.seek(offset)
            handle.write(rng.randbytes(length))
        handle.seek(446)  # an MBR (the random bytes before it are its boot code): publish reads the boot modes
        handle.write(mbr_entries())
    return path


def mbr_entries() -> bytes:
    """Two MBR partition entries and the signature: an active Linux root (BIOS) and an ESP (UEFI)."""
    root = struct.pack("<B3sB3sII", 0x80, b"\0" * 3, 0x83, b"\0" * 3, 2048, 32768)
    esp = struct.pack("<B3sB3sII", 0x00, b"\0" * 3, 0xEF, b"\0" * 3, 34816, 8192)
    return root + esp + bytes(32) + b"\x55\xaa"


@pytest.fixture(scope="session")
def raw_image(tmp_path_factory) -> TestImage:
    path = make_raw(tmp_path_factory.mktemp("img") / "openEuler-24.03-LTS-SP1-x86_64.raw")
    return TestImage(path, "raw", path)


@pytest.fixture(scope="session")
def qcow2_image(tmp_path_factory, raw_image) -> TestImage:
    path = tmp_path_factory.mktemp("img") / "openEuler-24.03-LTS-SP1-aarch64.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw_image.path), str(path)], check=True)
    return TestImage(path, "qcow2", raw_image.path)


@pytest.fixture
def publish_env(aws_env, monkeypatch, tmp_path):
    """moto as AWS, fast polling, and a working directory of the test's own (./build lives there)."""
    monkeypatch.setenv("EULERPUB_POLL_INTERVAL", FAST_POLL)
    monkeypatch.chdir(tmp_path)
    return aws_env


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for running the CLI in a child process (the autouse isolation has already run)."""
    return {**os.environ, **(extra or {})}
