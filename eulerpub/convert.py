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

import contextlib
import os
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from eulerpub import imagefile, proc
from eulerpub.errors import ToolError, UsageError

EXTENSIONS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vhd": "vhd"}
QEMU_FORMAT = imagefile.QEMU_FORMAT  # eulerpub's names -> qemu-img's (a fixed VHD reads as raw unless told)
COROUTINES = "8"  # parallel qemu-img coroutines (qemu-img's default): compressed clusters are deflated in parallel
# Slowest first, so the compressing runs start at once and the copies fill the gaps.
ORDER = ("qcow2", "vmdk", "vhd", "raw")
POLL_S = 0.1  # how often running conversions are checked: they take seconds to minutes


def convert_argv(source: Path, dest: Path, fmt: str, *, source_format: str = "raw",
                 force_share: bool = False) -> list[str]:
    """The one qemu-img command line for writing `source` as `fmt`: output options and parallelism per format
    (see the module docstring). Every conversion eulerpub runs is built here (builds, and the clouds' upload
    conversions in clouds/diskfile.py). `force_share` (`-U`) reads a source another process may hold open."""
    base = ["qemu-img", "convert", *(["-U"] if force_share else []), "-f", QEMU_FORMAT[source_format],
            "-m", COROUTINES]
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
    tmp = _temporary(dest)
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


def convert_all(source: Path, outputs: Mapping[str, Path], *, source_format: str = "raw",
                jobs: int | None = None) -> dict[str, Path]:
    """Write `source` in every format of `outputs` (format -> destination) at once: at most `jobs` (default:
    the machine's cores) qemu-img runs at a time. Each output is whole or absent, as with `convert`; if any
    conversion fails, the others still finish and the first failure (in ORDER) is raised. The tools are
    started and watched from the calling thread, so an interrupt stops every one of them (`proc.spawn`)."""
    for fmt in outputs:
        if fmt not in EXTENSIONS:
            raise UsageError(f"unknown image format {fmt!r}; use qcow2, raw, vmdk or vhd")
    imagefile.inspect(source, source_format, bootable=False)
    formats = sorted(outputs, key=ORDER.index)
    limit = max(1, min(len(formats), jobs or os.cpu_count() or 1))
    pending, running = deque(formats), {}
    failures: dict[str, ToolError] = {}
    with contextlib.ExitStack() as stack:  # on any way out: running tools stopped, temporary files removed
        while pending or running:
            while pending and len(running) < limit:
                fmt = pending.popleft()
                tmp = _temporary(outputs[fmt])
                stack.callback(tmp.unlink, missing_ok=True)  # a no-op once renamed
                if fmt == "raw" and source_format == "raw":
                    shutil.copyfile(source, tmp)
                    tmp.replace(outputs[fmt])
                    continue
                argv = convert_argv(Path(imagefile.qemu_path(source)), tmp, fmt, source_format=source_format)
                running[fmt] = (argv, tmp, stack.enter_context(proc.spawn(argv, stdout=subprocess.DEVNULL)))
            for fmt, (argv, tmp, process) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[fmt]
                if process.returncode:
                    tail = process.stderr.read()[-proc.STDERR_TAIL_CHARS:].decode(errors="replace")
                    failures[fmt] = ToolError(argv, process.returncode, tail)
                else:
                    tmp.replace(outputs[fmt])
            if running:
                time.sleep(POLL_S)
    for fmt in formats:
        if fmt in failures:
            raise failures[fmt]
    return {fmt: outputs[fmt] for fmt in formats}


def _temporary(dest: Path) -> Path:
    """Where `dest` is written until it is whole (removed first: a killed run may have left it)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    return tmp


def virtual_size(path: Path, fmt: str) -> int:
    """The guest-visible disk size in bytes (of a file inspected as `fmt`)."""
    return imagefile.inspect(path, fmt, bootable=False).virtual_size
