"""The kpartx shim (hosts without device-mapper) on real loop devices: a partition busy while its image is unmapped
is retried, and one that outlived its image (stale on the loop device) does not stop the next image's partitions.

Seen on this host: a hybrid build's root partition (p3) stayed on /dev/loop0 after its teardown; the next build
(MBR, one partition overlapping it) got no /dev/mapper/loop0p1 and DIB's mkfs failed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eulerpub import hostenv

pytestmark = [
    pytest.mark.needs_root("loop devices and partition ioctls need root"),
    pytest.mark.skipif(not all(shutil.which(t) for t in ("losetup", "partx", "sfdisk")), reason="needs util-linux"),
]

GPT_THREE = "label: gpt\nsize=1MiB\nsize=8MiB\n,\n"  # BIOS boot, ESP, root: the hybrid layout's shape
MBR_ONE = "label: dos\nstart=2048\n"  # the bios layout: one partition over the whole disk


def image(path: Path, table: str) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(48 * 1024**2)
    subprocess.run(["sfdisk", "-q", str(path)], input=table, text=True, check=True)
    return path


def parts(dev: str) -> list[str]:
    base = Path(dev).name
    return sorted(p.name for p in Path(f"/sys/class/block/{base}").glob(f"{base}p*"))


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[str]:
    try:
        dev = subprocess.run(["losetup", "-f", "--show", str(image(tmp_path / "a.raw", GPT_THREE))],
                             capture_output=True, text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"no loop device: {exc.stderr.strip()}")
    try:
        yield dev
    finally:
        for part in parts(dev):
            subprocess.run(["partx", "-d", "--nr", part.rsplit("p", 1)[1], dev], capture_output=True)
            Path(f"/dev/mapper/{part}").unlink(missing_ok=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def kpartx(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shims = hostenv.install_shims(tmp_path / "shims")
    return subprocess.run([str(shims / "kpartx"), *args], capture_output=True, text=True, timeout=60)


def held_open(path: str, seconds: float) -> threading.Thread:
    """Keep `path` open for `seconds` (an open partition cannot be deleted: EBUSY), in a thread."""
    fd = os.open(path, os.O_RDONLY)

    def close_later() -> None:
        time.sleep(seconds)
        os.close(fd)

    thread = threading.Thread(target=close_later)
    thread.start()
    return thread


def test_a_partition_busy_for_a_moment_is_still_removed(tmp_path: Path, loop: str) -> None:
    added = kpartx(tmp_path, "-av", loop)
    assert added.returncode == 0, added.stderr
    base = Path(loop).name
    assert parts(loop) == [f"{base}p1", f"{base}p2", f"{base}p3"]
    assert Path(f"/dev/mapper/{base}p3").resolve() == Path(f"/dev/{base}p3")
    holder = held_open(f"/dev/{base}p3", 2.0)
    try:
        removed = kpartx(tmp_path, "-d", loop)
    finally:
        holder.join()
    assert removed.returncode == 0, removed.stderr
    assert parts(loop) == [], removed.stderr
    assert not list(Path("/dev/mapper").glob(f"{base}p*"))


def test_a_partition_left_by_the_previous_image_does_not_block_the_next(tmp_path: Path, loop: str) -> None:
    base = Path(loop).name
    assert kpartx(tmp_path, "-av", loop).returncode == 0
    holder = held_open(f"/dev/{base}p3", 13.0)  # longer than the shim's retries: p3 outlives the unmapping
    try:
        removed = kpartx(tmp_path, "-d", loop)
        subprocess.run(["losetup", "-d", loop], check=True)
    finally:
        holder.join()  # closed before the fixture cleans up, whatever failed
    assert parts(loop) == [f"{base}p3"]  # stale on the detached device, as the failed build found it
    reattached = subprocess.run(["losetup", loop, str(image(tmp_path / "b.raw", MBR_ONE))], capture_output=True,
                                text=True)
    if reattached.returncode:
        pytest.skip(f"{loop} was taken meanwhile: {reattached.stderr.strip()}")
    added = kpartx(tmp_path, "-av", loop)
    assert added.returncode == 0, added.stderr
    assert parts(loop) == [f"{base}p1"]
    assert Path(f"/dev/mapper/{base}p1").resolve() == Path(f"/dev/{base}p1")
    assert Path(f"/dev/{base}p1").is_block_device()
    assert removed.stderr == f"kpartx shim: {base}p3 still busy on {loop}, not removed\n"
