"""Disk format conversion with qemu-img: what each cloud wants from one raw image.

- qcow2: compressed (zlib, readable by every cloud's importer) for Huawei/Tencent and OpenStack;
- raw: as built, for AWS EBS direct upload;
- vmdk: streamOptimized, for AWS VM Import and VMware;
- vhd: fixed size with the exact virtual size (`force_size`), for Azure-style importers; `vhd-util`
  is not packaged on Debian, and qemu-img writes the same thing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from eulerpub import imagefile, proc
from eulerpub.errors import UsageError

EXTENSIONS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vhd": "vhd"}
QEMU_FORMAT = imagefile.QEMU_FORMAT  # eulerpub's names -> qemu-img's (a fixed VHD reads as raw unless told)
COROUTINES = "4"  # parallel qemu-img coroutines: 2 cores here, the rest hides I/O latency


def convert_argv(source: Path, dest: Path, fmt: str, *, source_format: str = "raw") -> list[str]:
    base = ["qemu-img", "convert", "-f", QEMU_FORMAT[source_format]]
    if fmt == "qcow2":
        return [*base, "-O", "qcow2", "-c", "-o", "compression_type=zlib", "-m", COROUTINES, "-W",
                str(source), str(dest)]
    if fmt == "vmdk":
        return [*base, "-O", "vmdk", "-o", "subformat=streamOptimized", str(source), str(dest)]
    if fmt == "vhd":
        return [*base, "-O", "vpc", "-o", "subformat=fixed,force_size=on", str(source), str(dest)]
    if fmt == "raw":
        return [*base, "-O", "raw", str(source), str(dest)]
    raise UsageError(f"unknown image format {fmt!r}; use qcow2, raw, vmdk or vhd")


def convert(source: Path, dest: Path, fmt: str, *, source_format: str = "raw") -> Path:
    """Write `source` as `fmt` to `dest` (through a temporary name, so `dest` is whole or absent).

    `source` is inspected as `source_format` first (no backing file, no data file, no other format's header).
    """
    imagefile.inspect(source, source_format, bootable=False)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        if fmt == "raw" and source_format == "raw":
            shutil.copyfile(source, tmp)
        else:
            proc.run(convert_argv(Path(imagefile.qemu_path(source)), tmp, fmt, source_format=source_format))
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def virtual_size(path: Path, fmt: str) -> int:
    """The guest-visible disk size in bytes (of a file inspected as `fmt`)."""
    return imagefile.inspect(path, fmt, bootable=False).virtual_size
