"""The first sectors of test disks: a real partition table, written in Python (no tools, no mounts).

Publish registers only the boot modes a disk can be shown to boot in (`eulerpub.bootmodes`), so a test disk
that is to be published carries a partition table like eulerpub's builds: `hybrid_head()` is diskimage-builder's
x86_64 EFI layout (protective MBR with boot code, GPT: ESP, BIOS boot partition, root), `mbr_head()` its BIOS
layout (boot code, one active Linux partition). Write either at offset 0 of the raw disk.
"""

from __future__ import annotations

import struct
import uuid
import zlib

SECTOR = 512
ENTRIES = 128
ENTRY_SIZE = 128
BOOT_CODE = b"\xeb\x63\x90" + b"\x90" * 100  # stands in for grub's boot.img
ESP = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
BIOS_BOOT = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
LINUX = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")


def _mbr(entries: list[bytes]) -> bytes:
    table = b"".join(entries).ljust(64, b"\0")
    return BOOT_CODE.ljust(446, b"\0") + table + b"\x55\xaa"


def _mbr_entry(active: bool, ptype: int, start: int, sectors: int) -> bytes:
    return struct.pack("<B3sB3sII", 0x80 if active else 0, b"\0\0\0", ptype, b"\0\0\0", start, sectors)


def mbr_head(size: int) -> bytes:
    """An MBR with boot code and one active Linux partition from 1 MiB to the end."""
    return _mbr([_mbr_entry(True, 0x83, 2048, size // SECTOR - 2048)])


def hybrid_head(size: int) -> bytes:
    """Protective MBR with boot code, GPT header and entries: ESP, BIOS boot, root (34 sectors)."""
    last = size // SECTOR - 34
    parts = [(ESP, 2048, 4095, "ESP"), (BIOS_BOOT, 4096, 6143, "BSP"), (LINUX, 6144, last, "root")]
    entries = bytearray(ENTRIES * ENTRY_SIZE)
    for i, (ptype, first, end, name) in enumerate(parts):
        struct.pack_into("<16s16sQQQ72s", entries, i * ENTRY_SIZE, ptype.bytes_le, uuid.uuid4().bytes_le, first,
                         end, 0, name.encode("utf-16-le"))
    header = bytearray(struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, 0, 0, 1, size // SECTOR - 1,
                                   34, last, uuid.uuid4().bytes_le, 2, ENTRIES, ENTRY_SIZE, zlib.crc32(entries)))
    struct.pack_into("<I", header, 16, zlib.crc32(bytes(header)))
    protective = _mbr([_mbr_entry(False, 0xEE, 1, min(size // SECTOR - 1, 0xFFFFFFFF))])
    return protective + bytes(header).ljust(SECTOR, b"\0") + bytes(entries)
