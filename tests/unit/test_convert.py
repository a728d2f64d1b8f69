"""convert: the qemu-img command for each format, and a real round trip of a small disk."""

from __future__ import annotations

import shutil

import pytest

from eulerpub import convert, imagefile
from eulerpub.errors import UsageError


def test_argv_per_format(tmp_path):
    src, dst = tmp_path / "a.raw", tmp_path / "b"
    assert "-c" in convert.convert_argv(src, dst, "qcow2")
    assert "subformat=streamOptimized" in convert.convert_argv(src, dst, "vmdk")
    vhd = convert.convert_argv(src, dst, "vhd")
    assert vhd[vhd.index("-O") + 1] == "vpc" and "subformat=fixed,force_size=on" in vhd
    with pytest.raises(UsageError):
        convert.convert_argv(src, dst, "iso")


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
@pytest.mark.parametrize("fmt", ["qcow2", "raw", "vmdk", "vhd"])
def test_round_trip_keeps_virtual_size(tmp_path, fmt):
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(16 * 1024**2)
        handle.seek(1024**2)
        handle.write(b"eulerpub" * 4096)
    out = convert.convert(raw, tmp_path / f"disk.{fmt}", fmt)
    assert out.exists() and not list(tmp_path.glob(".*.tmp"))
    assert convert.virtual_size(out, fmt) == 16 * 1024**2
    assert imagefile.sniff(out) == fmt
