"""Disk format conversion with qemu-img: what each cloud wants from one raw image.

- qcow2: compressed (zlib, readable by every cloud's importer) for Huawei/Tencent and OpenStack;
- raw: as built, for AWS EBS direct upload;
- vmdk: streamOptimized, for AWS VM Import and VMware;
- vhd: fixed size with the exact virtual size (`force_size`), for Azure-style importers; `vhd-util`
  is not packaged on Debian, and qemu-img writes the same thing.

A build's formats are converted concurrently (`convert_all`), at most one qemu-img per core, the slowest
(compressing) ones first. Within each run qemu-img's own parallelism is used where the output stays what it
should be: `-m` (parallel coroutines) for every format; `-W` (out-of-order writes) for the compressed qcow2,
the fixed VHD and raw, whose readers look clusters up through tables or offsets. qemu-img's manual still says
out-of-order writes do not work with compressed output, but qemu-img.c no longer refuses the pair (its checks
on compressed output are the format, encryption and preallocation), and the result passes `qemu-img check`
and `qemu-img compare` (tests/integration/test_convert_parallel.py). Never `-W` for the streamOptimized VMDK:
that format exists to be read front to back as a stream (VM Import, VMware), so its grains stay in order.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eulerpub import imagefile, proc
from eulerpub.errors import UsageError

EXTENSIONS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vhd": "vhd"}
QEMU_FORMAT = imagefile.QEMU_FORMAT  # eulerpub's names -> qemu-img's (a fixed VHD reads as raw unless told)
COROUTINES = "8"  # parallel qemu-img coroutines (qemu-img's default): compressed clusters are deflated in parallel
# Slowest first, so the compressing runs start at once and the copies fill the gaps.
ORDER = ("qcow2", "vmdk", "vhd", "raw")


def convert_argv(source: Path, dest: Path, fmt: str, *, source_format: str = "raw") -> list[str]:
    base = ["qemu-img", "convert", "-f", QEMU_FORMAT[source_format], "-m", COROUTINES]
    if fmt == "qcow2":
        return [*base, "-W", "-O", "qcow2", "-c", "-o", "compression_type=zlib", str(source), str(dest)]
    if fmt == "vmdk":  # in order: a stream-optimized disk is read front to back
        return [*base, "-O", "vmdk", "-o", "subformat=streamOptimized", str(source), str(dest)]
    if fmt == "vhd":
        return [*base, "-W", "-O", "vpc", "-o", "subformat=fixed,force_size=on", str(source), str(dest)]
    if fmt == "raw":
        return [*base, "-W", "-O", "raw", str(source), str(dest)]
    raise UsageError(f"unknown image format {fmt!r}; use qcow2, raw, vmdk or vhd")


def convert(source: Path, dest: Path, fmt: str, *, source_format: str = "raw") -> Path:
    """Write `source` as `fmt` to `dest` (through a temporary name, so `dest` is whole or absent).

    `source` is inspected as `source_format` first (no backing file, no data file, no other format's header).
    """
    imagefile.inspect(source, source_format, bootable=False)
    return _convert_inspected(source, dest, fmt, source_format)


def convert_all(source: Path, outputs: Mapping[str, Path], *, source_format: str = "raw",
                jobs: int | None = None) -> dict[str, Path]:
    """Write `source` in every format of `outputs` (format -> destination) at once: at most `jobs` (default:
    the machine's cores) qemu-img runs at a time. Each output is whole or absent, as with `convert`; if any
    conversion fails, the others still finish and the first failure (in ORDER) is raised."""
    for fmt in outputs:
        if fmt not in EXTENSIONS:
            raise UsageError(f"unknown image format {fmt!r}; use qcow2, raw, vmdk or vhd")
    imagefile.inspect(source, source_format, bootable=False)
    formats = sorted(outputs, key=ORDER.index)
    workers = max(1, min(len(formats), jobs or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eulerpub-convert") as pool:
        futures = [pool.submit(_convert_inspected, source, outputs[fmt], fmt, source_format) for fmt in formats]
    for future in futures:
        future.result()  # raises the first failure
    return {fmt: outputs[fmt] for fmt in formats}


def _convert_inspected(source: Path, dest: Path, fmt: str, source_format: str) -> Path:
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
