"""convert_all: every format of a build converted at once gives the artifacts sequential conversion gives, in
kind (format, subformat, compression) and in validity (`qemu-img check`, `qemu-img compare` with the raw)."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from eulerpub import convert, imagefile, proc
from eulerpub.errors import ToolError
from tests.disks import hybrid_head

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")]

MiB = 1 << 20
FORMATS = ("qcow2", "vmdk", "vhd", "raw")


@pytest.fixture(scope="module")
def disk(tmp_path_factory) -> Path:
    """A 48 MiB raw disk with an MBR, runs of random, text-like and zero data, and a last sector written."""
    path = tmp_path_factory.mktemp("disk") / "disk.raw"
    rng = random.Random(7)
    with open(path, "wb") as out:
        out.truncate(48 * MiB)
        mbr = bytearray(512)
        mbr[446:462] = bytes([0x80, 0, 2, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little") + \
            (40960).to_bytes(4, "little")
        mbr[510:512] = b"\x55\xaa"
        out.write(mbr)
        for offset, length in ((1 * MiB, 3 * MiB), (9 * MiB, 5 * MiB), (30 * MiB, 2 * MiB + 4096)):
            out.seek(offset)
            out.write(rng.randbytes(length // 2) + bytes(b"0123456789abcdef"[b % 16] for b in
                                                         rng.randbytes(length - length // 2)))
        out.seek(48 * MiB - 512)
        out.write(b"\xee" * 512)
    return path


def qemu(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", *argv], capture_output=True, text=True)


def kind(path: Path, fmt: str) -> dict:
    """What makes an artifact the kind a cloud expects, as qemu-img reports it."""
    info = json.loads(qemu("info", "-U", "--output=json", "-f", imagefile.QEMU_FORMAT[fmt], str(path)).stdout)
    data = info.get("format-specific", {}).get("data", {})
    found = {"format": info["format"], "virtual-size": info["virtual-size"], "sniffed": imagefile.sniff(path)}
    if fmt == "qcow2":
        check = json.loads(qemu("check", "--output=json", "-f", "qcow2", str(path)).stdout)
        found |= {"compression-type": data["compression-type"], "compat": data["compat"],
                  "allocated-clusters": check["allocated-clusters"],
                  "compressed-clusters": check["compressed-clusters"]}
    if fmt == "vmdk":
        found |= {"create-type": data["create-type"]}
    if fmt == "vhd":  # the footer's disk type: 2 = fixed
        found |= {"disk-type": int.from_bytes(path.read_bytes()[-512:][60:64], "big")}
    return found


def test_parallel_conversion_gives_what_sequential_conversion_gives(disk, tmp_path):
    (tmp_path / "parallel").mkdir()
    (tmp_path / "sequential").mkdir()
    made = convert.convert_all(disk, {fmt: tmp_path / "parallel" / f"disk.{fmt}" for fmt in FORMATS})
    assert sorted(made) == sorted(FORMATS)
    for fmt in FORMATS:
        parallel = made[fmt]
        sequential = convert.convert(disk, tmp_path / "sequential" / f"disk.{fmt}", fmt)
        assert kind(parallel, fmt) == kind(sequential, fmt)
        compare = qemu("compare", "-f", "raw", "-F", imagefile.QEMU_FORMAT[fmt], str(disk), str(parallel))
        assert compare.returncode == 0, compare.stdout + compare.stderr  # identical guest contents
        if fmt in ("qcow2", "vmdk"):
            check = qemu("check", "-f", fmt, str(parallel))
            assert check.returncode == 0, check.stdout + check.stderr
    qcow2 = kind(made["qcow2"], "qcow2")
    assert qcow2["compressed-clusters"] > 0 and qcow2["compression-type"] == "zlib"
    assert kind(made["vmdk"], "vmdk")["create-type"] == "streamOptimized"
    assert kind(made["vhd"], "vhd")["disk-type"] == 2
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_failed_conversion_fails_the_whole_call_and_leaves_no_partial_file(disk, tmp_path):
    outputs = {"qcow2": tmp_path / "disk.qcow2", "vmdk": tmp_path / "missing-dir" / "disk.vmdk"}
    with pytest.raises(ToolError):
        convert.convert_all(disk, outputs)
    assert (tmp_path / "disk.qcow2").is_file()  # the other conversion still finished, whole
    assert not list(tmp_path.rglob(".*.tmp")) and not (tmp_path / "missing-dir").exists()


def test_an_interrupt_stops_every_running_conversion_and_leaves_nothing(tmp_path, monkeypatch):
    source = tmp_path / "source" / "big.raw"
    source.parent.mkdir()
    source.write_bytes(hybrid_head(64 * MiB)[:512] + random.Random(3).randbytes(64 * MiB - 512))  # seconds of work
    out = tmp_path / "out"
    out.mkdir()
    spawned = []
    spawn = proc.spawn

    def recording(*args, **kwargs):
        context = spawn(*args, **kwargs)
        process = context.__enter__()
        if "convert" in process.args:  # not the inspection's qemu-img info
            spawned.append(process)
        return _Entered(context, process)

    sleep, fired = time.sleep, []

    def interrupted(seconds):
        # once, while both run (time.sleep is the module's: stopping the tools may sleep too)
        if fired or len(spawned) < 2 or any(p.poll() is not None for p in spawned):
            return sleep(seconds)
        fired.append(True)
        raise KeyboardInterrupt

    monkeypatch.setattr(convert.proc, "spawn", recording)
    monkeypatch.setattr(convert.time, "sleep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert.convert_all(source, {fmt: out / f"disk.{fmt}" for fmt in ("qcow2", "vmdk")}, jobs=2)
    assert len(spawned) == 2
    assert [p.returncode for p in spawned] == [-signal.SIGTERM] * 2  # stopped, not finished
    assert list(out.iterdir()) == []


class _Entered:
    """A context manager already entered: leaving it leaves the one it wraps."""

    def __init__(self, context, value) -> None:
        self._context, self._value = context, value

    def __enter__(self):
        return self._value

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)


@pytest.mark.parametrize("target", ["raw", "vmdk", "vhd"])
def test_the_clouds_upload_conversions_use_the_builds_options_and_are_valid(disk, tmp_path, monkeypatch, target):
    """clouds/diskfile.py converts a build's compressed qcow2 for an upload with the builds' command line
    (qemu-img's parallel coroutines; out-of-order writes except for the streamOptimized VMDK), and the file it
    leaves is the kind a cloud expects and holds the disk exactly."""
    from eulerpub.clouds import diskfile
    from eulerpub.clouds.base import DiskImage
    from eulerpub.manifest import sha256_file

    monkeypatch.setenv("EULERPUB_CACHE_DIR", str(tmp_path / "cache"))
    qcow2 = convert.convert(disk, tmp_path / "disk.qcow2", "qcow2")
    image = DiskImage(path=qcow2, format="qcow2", size=qcow2.stat().st_size, virtual_size=48 * MiB,
                      sha256=sha256_file(qcow2))
    ran, run = [], proc.run

    def recording(argv, **kwargs):
        if "convert" in argv:  # not the inspection's qemu-img info
            ran.append(argv)
        return run(argv, **kwargs)

    monkeypatch.setattr(diskfile.proc, "run", recording)
    out = diskfile.as_format(image, target)
    [argv] = ran
    assert argv == convert.convert_argv(qcow2, Path(argv[-1]), target, source_format="qcow2", force_share=True)
    assert "-m" in argv and ("-W" in argv) == (target != "vmdk")
    compare = qemu("compare", "-f", "raw", "-F", imagefile.QEMU_FORMAT[target], str(disk), str(out))
    assert compare.returncode == 0, compare.stdout + compare.stderr
    if target == "vmdk":
        assert kind(out, "vmdk")["create-type"] == "streamOptimized"
        check = qemu("check", "-f", "vmdk", str(out))
        assert check.returncode == 0, check.stdout + check.stderr
    if target == "vhd":
        assert kind(out, "vhd")["disk-type"] == 2 and kind(out, "vhd")["virtual-size"] == 48 * MiB
    assert diskfile.as_format(image, target) == out and len(ran) == 1  # cached by content: converted once
