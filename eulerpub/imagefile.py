"""The one place an image file is inspected before anything reads it: fetch, build, convert, test and publish.

An image file is untrusted input. A qcow2 can name a backing file or an external data file anywhere on the host
(`qemu-img create -f qcow2 -b /etc/passwd -F raw x.qcow2`), and any tool that follows it reads that host file as
if it were the disk; a "raw" file whose first bytes are a qcow2 header is parsed as a qcow2 by the cloud it is
uploaded to. So every caller names the format it expects, and `inspect` checks, in this order and before
qemu-img opens anything beyond the file itself:

1. a regular file that is not empty and not text;
2. its own header (read here, in Python) agrees with the expected format: a raw file carries no other format's
   magic, a qcow2 header is complete and names no backing file and no external data file, a VHD is not a
   differencing disk;
3. `qemu-img info -f FORMAT` (never a probe, never the backing chain, `-U` so a running VM does not block it)
   reads the metadata, and says again that there is no backing file, data file or foreign extent;
4. for a disk that is to boot (`bootable`), its first sectors hold a partition table (the MBR signature or a GPT
   header).

Each refusal is a `BadImage` (exit 2) with one sentence. Only after `inspect` returns may anything read, convert,
boot or upload the file, and then only with `-f` set to the format it returned.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eulerpub import proc
from eulerpub.errors import ToolError, UsageError

# eulerpub's format names -> qemu-img's driver names (a VHD is qemu's "vpc").
QEMU_FORMAT = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc"}
HEAD_BYTES = 64 << 10  # enough for every header below and for the text check
TEXT_PROBE_BYTES = 4096  # a disk image has NUL bytes in its first 4 KiB (an MBR, a qcow2 header); text has none
VHD_FOOTER_BYTES = 512  # a fixed VHD ends in this footer, which starts with the cookie "conectix"
VHD_DIFFERENCING = 4  # disk type in a VHD footer (offset 60): 2 fixed, 3 dynamic, 4 differencing
QCOW2_V2_HEADER = 72  # bytes of a version 2 qcow2 header (QEMU docs/interop/qcow2.txt)
QCOW2_V3_HEADER = 104  # bytes of the mandatory version 3 header
QCOW2_INCOMPAT_DATA_FILE = 1 << 2  # incompatible feature bit 2: the guest data lives in an external file
QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS = 9, 21  # qemu's limits on cluster size (512 B .. 2 MiB)
MBR_SIGNATURE_OFFSET = 510  # b"\x55\xaa" ends a DOS partition table (also GPT's protective MBR)
GPT_HEADER_OFFSET = 512  # "EFI PART" at LBA 1 for 512-byte sectors
BOOT_SECTOR_BYTES = 1024

# Headers of formats a cloud or qemu would parse instead of reading the bytes as a raw disk, by offset.
# Sources: QEMU's block drivers (qcow2.c, qed.h, vmdk.c, vpc.c, vhdx.h, vdi.c, parallels.c) and the LUKS spec.
_MAGICS: tuple[tuple[str, int, bytes], ...] = (
    ("qcow2", 0, b"QFI\xfb"),  # also qcow version 1, which qemu reads as "qcow"
    ("qed", 0, b"QED\x00"),
    ("vmdk", 0, b"KDMV"),  # a sparse (monolithic or streamOptimized) VMDK
    ("vmdk", 0, b"COWD"),  # an ESX sparse VMDK
    ("vhd", 0, b"conectix"),  # a dynamic VHD starts with a copy of its footer
    ("vhdx", 0, b"vhdxfile"),
    ("vdi", 64, b"\x7f\x10\xda\xbe"),
    ("parallels", 0, b"WithoutFreeSpace"),
    ("parallels", 0, b"WithouFreSpacExt"),
    ("luks", 0, b"LUKS\xba\xbe"),
)


class BadImage(UsageError):
    """An image file eulerpub will not read: wrong format, host files by indirection, or not a disk at all.

    `reason` is the sentence without the file's name, for callers that name the file another way (a URL).
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class ImageFile:
    """An inspected image: safe to read with `qemu-img -f <qemu_format>`."""

    path: Path
    format: str  # eulerpub's name: raw, qcow2, vmdk, vhd
    size: int  # bytes on disk
    virtual_size: int  # bytes the guest sees

    @property
    def qemu_format(self) -> str:
        return QEMU_FORMAT[self.format]


def sniff(path: Path) -> str:
    """The format an image file's own header declares (raw when it declares none): what a cloud would take it for.

    This reads magic numbers here and never asks qemu-img to probe. The result is then checked by `inspect`
    like any other expected format, so a file can never be read as something other than what it says it is.
    """
    head, tail = _read_ends(path, _regular_file(path))
    found = _foreign_header(head)
    if found is not None:
        return found
    if tail.startswith(b"conectix"):
        return "vhd"  # a fixed VHD: raw data plus a footer
    return "raw"


def inspect(path: Path, fmt: str, *, bootable: bool = True) -> ImageFile:
    """Check that `path` is a `fmt` image that reads nothing but itself; raise BadImage with one sentence if not."""
    if fmt not in QEMU_FORMAT:
        raise UsageError(f"unknown image format {fmt!r}; use {', '.join(QEMU_FORMAT)}")
    size = _regular_file(path)
    head, tail = _read_ends(path, size)
    if _is_text(head):
        raise BadImage(path, "is a text file, not a disk image")
    found = _foreign_header(head)
    if found is None and fmt == "vhd" and tail.startswith(b"conectix"):
        found = "vhd"  # a fixed VHD: its only marker is the footer
    if fmt == "raw" and found is not None:
        raise BadImage(path, f"is meant to be a raw disk but starts with a {found} header, which a cloud would "
                       f"parse as {found}; convert it to raw first")
    if fmt != "raw" and found != fmt:
        raise BadImage(path, f"is not a {fmt} image (its header says {found or 'nothing: a raw disk or data'})")
    if fmt == "qcow2":
        _check_qcow2_header(path, head, size)
    if fmt == "vhd" and _vhd_disk_type(head if found == "vhd" else tail) == VHD_DIFFERENCING:
        raise BadImage(path, "is a differencing VHD, which reads its data from a parent file; upload a fixed "
                       "or dynamic VHD")
    virtual_size = _check_metadata(path, fmt)
    image = ImageFile(path=path, format=fmt, size=size, virtual_size=virtual_size)
    if bootable:
        _check_partition_table(image, head)
    return image


def inspect_file(path: Path, *, bootable: bool = True) -> ImageFile:
    """Inspect a file whose format nobody declared (`publish --image`): the format its header states, checked."""
    return inspect(path, sniff(path), bootable=bootable)


def qemu_path(path: Path) -> str:
    """How to name a file to qemu: absolute, so a name like `json:{...}` or `nbd:host` is never a protocol."""
    return os.path.abspath(path)


# ---------------------------------------------------------------------------------------------------------


def _regular_file(path: Path) -> int:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BadImage(path, "does not exist") from None
    except OSError as exc:
        raise BadImage(path, f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadImage(path, "is not a regular file")
    if info.st_size == 0:
        raise BadImage(path, "is empty (0 bytes), not a disk image")
    return info.st_size


def _read_ends(path: Path, size: int) -> tuple[bytes, bytes]:
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
            tail = b""
            if size >= VHD_FOOTER_BYTES:
                handle.seek(size - VHD_FOOTER_BYTES)
                tail = handle.read(VHD_FOOTER_BYTES)
    except OSError as exc:
        raise BadImage(path, f"cannot be read: {exc.strerror}") from None
    return head, tail


def _is_text(head: bytes) -> bool:
    """Printable UTF-8 with ordinary whitespace only (a disk image's first 4 KiB has NULs and control bytes)."""
    probe = head[:TEXT_PROBE_BYTES]
    try:
        text = probe.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(probe) - 3:  # not just a character cut at the end of the probe
            return False
        text = probe[:exc.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r\f\v" for c in text)


def _foreign_header(head: bytes) -> str | None:
    for name, offset, magic in _MAGICS:
        if head[offset:offset + len(magic)] == magic:
            return name
    return None


def _check_qcow2_header(path: Path, head: bytes, size: int) -> None:
    """The fields of the qcow2 header (QEMU docs/interop/qcow2.txt) that make qemu read other files."""
    if len(head) < QCOW2_V2_HEADER:
        raise BadImage(path, f"has a truncated qcow2 header ({len(head)} of at least {QCOW2_V2_HEADER} bytes)")
    version, backing_offset, backing_size, cluster_bits = struct.unpack_from(">IQII", head, 4)
    if version not in (2, 3):
        raise BadImage(path, f"is a qcow2 version {version} image; eulerpub reads versions 2 and 3")
    if not QCOW2_MIN_CLUSTER_BITS <= cluster_bits <= QCOW2_MAX_CLUSTER_BITS:
        raise BadImage(path, f"has a damaged qcow2 header (cluster_bits {cluster_bits})")
    if backing_offset or backing_size:
        raise BadImage(path, "has a backing file, so its content would be read from another file on this host; "
                       "flatten it first (qemu-img convert -f qcow2 -O qcow2 without -B)")
    if version == 3:
        if len(head) < QCOW2_V3_HEADER:
            raise BadImage(path, f"has a truncated qcow2 header ({len(head)} of {QCOW2_V3_HEADER} bytes)")
        incompatible = struct.unpack_from(">Q", head, 72)[0]
        header_length = struct.unpack_from(">I", head, 100)[0]
        if incompatible & QCOW2_INCOMPAT_DATA_FILE:
            raise BadImage(path, "keeps its data in an external data file, so its content would be read from "
                           "another file on this host; convert it to a self-contained qcow2 first")
        if header_length < QCOW2_V3_HEADER or header_length > size:
            raise BadImage(path, f"has a truncated or damaged qcow2 header (header length {header_length})")
    if size < 1 << cluster_bits:
        raise BadImage(path, f"is truncated: {size} bytes, less than one qcow2 cluster")


def _vhd_disk_type(footer: bytes) -> int | None:
    return struct.unpack_from(">I", footer, 60)[0] if len(footer) >= 64 and footer.startswith(b"conectix") else None


def _check_metadata(path: Path, fmt: str) -> int:
    """qemu-img's reading of the metadata, with the format named and the backing chain left closed."""
    argv = ["qemu-img", "info", "-U", "-f", QEMU_FORMAT[fmt], "--output=json", qemu_path(path)]
    try:
        info = json.loads(proc.output(argv))
    except ToolError as exc:
        if exc.returncode == 127:
            raise
        reason = (exc.stderr_tail.strip().splitlines() or ["qemu-img cannot open it"])[-1]
        raise BadImage(path, f"is not a usable {fmt} image: {reason.removeprefix('qemu-img: ')}") from None
    if info.get("format") != QEMU_FORMAT[fmt]:
        raise BadImage(path, f"is not a {fmt} image (qemu-img reads it as {info.get('format')})")
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise BadImage(path, "has a backing file, so its content would be read from another file on this host; "
                       "flatten it first")
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file"):
        raise BadImage(path, "keeps its data in an external data file, so its content would be read from "
                       "another file on this host; convert it to a self-contained image first")
    if data.get("corrupt"):
        raise BadImage(path, "is marked corrupt in its qcow2 header; repair it with qemu-img check -r all")
    for extent in data.get("extents") or []:  # VMDK: every extent must be the file itself
        if os.path.abspath(str(extent.get("filename", ""))) != qemu_path(path):
            raise BadImage(path, f"reads its data from another file ({extent.get('filename')}); upload a "
                           "monolithic or streamOptimized VMDK")
    virtual_size = int(info.get("virtual-size") or 0)
    if virtual_size <= 0:
        raise BadImage(path, "has a virtual size of 0 bytes")
    return virtual_size


def _check_partition_table(image: ImageFile, head: bytes) -> None:
    sector = head[:BOOT_SECTOR_BYTES] if image.format == "raw" else guest_head(image, BOOT_SECTOR_BYTES)
    if sector[MBR_SIGNATURE_OFFSET:MBR_SIGNATURE_OFFSET + 2] == b"\x55\xaa":
        return
    if sector[GPT_HEADER_OFFSET:GPT_HEADER_OFFSET + 8] == b"EFI PART":
        return
    raise BadImage(image.path, "has no partition table (no MBR signature at byte 510, no GPT header at byte "
                   "512), so it cannot boot")


def guest_head(image: ImageFile, size: int) -> bytes:
    """The first `size` bytes the guest sees (a raw file is read directly; any other format through qemu-img
    with its format named: safe once `inspect` has passed it)."""
    if image.format == "raw":
        with open(image.path, "rb") as handle:
            return handle.read(size)
    with tempfile.TemporaryDirectory(prefix="eulerpub-inspect-") as tmp:
        out = Path(tmp) / "sectors"
        try:
            proc.run(["qemu-img", "dd", "-U", "-f", image.qemu_format, "-O", "raw", f"bs={size}",
                      "count=1", f"if={qemu_path(image.path)}", f"of={out}"])
        except ToolError as exc:
            if exc.returncode == 127:
                raise
            raise BadImage(image.path, f"is not a readable {image.format} image") from None
        return out.read_bytes()
