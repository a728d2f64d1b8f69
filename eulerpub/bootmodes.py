"""Boot modes: what a layout is built for, what a disk's partition table allows, what each cloud is told.

Three facts meet here, and only the last one may reach a cloud:

- the **layout** a profile asks for (`boot: hybrid | bios | uefi`) and the diskimage-builder block-device
  element that builds it (x86_64 hybrid: GPT with a BIOS boot partition, an ESP and the root;
  bios: DIB's MBR layout; aarch64: GPT with an ESP, UEFI only);
- the **partition table** of a disk, read here from its first sectors in pure Python: an ESP means
  UEFI-capable; a BIOS boot partition on GPT, or boot code with an active partition on MBR, with boot code in
  sector 0, means BIOS-capable;
- the **proof**: the modes a boot test passed in (`eulerpub test` records them beside the build record).

`decide` turns the proven modes (or, for a plain `--image` file, the partition table's) into the AWS boot
mode every adapter reads from `PublishSpec.boot_mode`: `uefi-preferred` only when both modes are proven,
`legacy-bios` for BIOS only, `uefi` for UEFI only; Huawei's `hw_firmware_type` and Tencent's `BootMode`
follow from it (`uefi` for UEFI-only images, `bios` / `Legacy BIOS` otherwise).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from typing import Literal, get_args

from eulerpub import imagefile
from eulerpub.errors import UsageError

Layout = Literal["hybrid", "bios", "uefi"]
Mode = Literal["bios", "uefi"]
MODES: tuple[Mode, ...] = get_args(Mode)
AwsBootMode = Literal["uefi", "legacy-bios", "uefi-preferred"]

LAYOUT_MODES: dict[Layout, tuple[Mode, ...]] = {"hybrid": ("bios", "uefi"), "bios": ("bios",), "uefi": ("uefi",)}
# The layouts each arch can be built with; the first is the default. x86_64 `uefi` alone would need a layout
# DIB does not offer (its EFI layout always installs the BIOS grub too), so x86_64 builds hybrid or bios.
ARCH_LAYOUTS: dict[str, tuple[Layout, ...]] = {"x86_64": ("hybrid", "bios"), "aarch64": ("uefi",),
                                               "riscv64": ("uefi",)}
ARCH_FIRMWARE: dict[str, frozenset[Mode]] = {"x86_64": frozenset({"bios", "uefi"}), "aarch64": frozenset({"uefi"}),
                                             "riscv64": frozenset({"uefi"})}
LAYOUT_ELEMENT: dict[Layout, str] = {"hybrid": "block-device-efi", "bios": "block-device-mbr",
                                     "uefi": "block-device-efi"}

# What each AWS boot mode needs proven (AWS: uefi-preferred boots UEFI where the instance type supports it and
# legacy BIOS elsewhere, so it needs both).
AWS_NEEDS: dict[AwsBootMode, frozenset[Mode]] = {
    "uefi-preferred": frozenset({"bios", "uefi"}),
    "legacy-bios": frozenset({"bios"}),
    "uefi": frozenset({"uefi"}),
}

SECTOR = 512
MBR_SIGNATURE = b"\x55\xaa"
MBR_CODE_BYTES = 440  # boot code before the disk signature and the partition entries
MBR_TABLE_OFFSET = 446
MBR_ESP_TYPE = 0xEF
MBR_PROTECTIVE_TYPE = 0xEE
GPT_SIGNATURE = b"EFI PART"
ESP_GUID = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
BIOS_BOOT_GUID = uuid.UUID("21686148-6449-6e6f-744e-656564454649")
HEAD_BYTES = 1 << 20  # the MBR, the GPT header and its entries as every partitioning tool lays them out


def resolve_layout(boot: str | None, arch: str) -> Layout:
    """The layout to build for `arch`: the profile's `boot` setting, checked, or the arch's default."""
    allowed = ARCH_LAYOUTS.get(arch)
    if not allowed:
        raise UsageError(f"no boot layout is known for arch {arch!r}")
    if boot is None:
        return allowed[0]
    if boot not in allowed:
        raise UsageError(f"boot: {boot} cannot be built for {arch}; choose {' or '.join(allowed)}")
    return boot  # type: ignore[return-value]


def layout_element(layout: Layout) -> str:
    return LAYOUT_ELEMENT[layout]


# --- partition tables --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PartitionTable:
    """What a disk's first sectors say about how it can boot."""

    label: Literal["gpt", "mbr", "none"]
    esp: bool = False  # an EFI system partition (GPT type GUID, or MBR type 0xEF)
    bios_boot: bool = False  # GPT: a BIOS boot partition (where grub's core.img is embedded)
    boot_code: bool = False  # sector 0 holds boot code (not all zeros)
    active: bool = False  # MBR: a partition is marked bootable (0x80)
    partitions: int = 0

    @property
    def modes(self) -> frozenset[Mode]:
        found: set[Mode] = set()
        if self.esp:
            found.add("uefi")
        if self.boot_code and (self.bios_boot if self.label == "gpt" else self.active):
            found.add("bios")
        return frozenset(found)

    def describe(self) -> str:
        if self.label == "none":
            return "no partition table"
        parts = [self.label.upper()]
        if self.bios_boot:
            parts.append("BIOS boot partition")
        if self.esp:
            parts.append("ESP")
        if self.label == "mbr" and self.active:
            parts.append("active partition")
        parts.append("boot code" if self.boot_code else "no boot code")
        return ", ".join(parts)

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "esp": self.esp, "bios_boot": self.bios_boot, "boot_code": self.boot_code,
                "active": self.active, "partitions": self.partitions, "modes": sorted(self.modes)}


def parse_partition_table(head: bytes) -> PartitionTable:
    """Read an MBR or GPT (512-byte sectors) from a disk's first bytes (at least HEAD_BYTES for GPT entries)."""
    if len(head) < SECTOR or head[510:512] != MBR_SIGNATURE:
        return PartitionTable("none")
    boot_code = any(head[:MBR_CODE_BYTES])
    entries = [head[MBR_TABLE_OFFSET + 16 * i:MBR_TABLE_OFFSET + 16 * (i + 1)] for i in range(4)]
    types = [e[4] for e in entries]
    if MBR_PROTECTIVE_TYPE in types and head[SECTOR:SECTOR + 8] == GPT_SIGNATURE:
        return _parse_gpt(head, boot_code)
    used = [e for e in entries if e[4] != 0]
    return PartitionTable("mbr", esp=MBR_ESP_TYPE in types, boot_code=boot_code,
                          active=any(e[0] == 0x80 for e in used), partitions=len(used))


def partition_table_of(image: imagefile.ImageFile) -> PartitionTable:
    """The partition table of an image file that `eulerpub.imagefile` has inspected."""
    return parse_partition_table(imagefile.guest_head(image, HEAD_BYTES))


def _parse_gpt(head: bytes, boot_code: bool) -> PartitionTable:
    header = head[SECTOR:2 * SECTOR]
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if entry_size < 128 or count > 1024:
        raise ValueError(f"implausible GPT header (entry size {entry_size}, {count} entries)")
    start = entries_lba * SECTOR
    end = start + count * entry_size
    if end > len(head):
        raise ValueError(f"the GPT entries end at byte {end}, beyond the {len(head)} bytes read")
    guids = []
    for i in range(count):
        raw = head[start + i * entry_size:start + i * entry_size + 16]
        if any(raw):
            guids.append(uuid.UUID(bytes_le=bytes(raw)))
    return PartitionTable("gpt", esp=ESP_GUID in guids, bios_boot=BIOS_BOOT_GUID in guids, boot_code=boot_code,
                          partitions=len(guids))


# --- what the clouds are told -----------------------------------------------------------------------------

@dataclass(frozen=True)
class BootEvidence:
    """The boot modes a source is known to boot in, and how that is known."""

    basis: Literal["boot test", "partition table"]
    modes: frozenset[Mode]
    detail: str = ""  # e.g. the partition table's description, or which modes were not tried
    not_tried: frozenset[Mode] = field(default_factory=frozenset)

    def to_json(self) -> dict[str, object]:
        return {"basis": self.basis, "modes": sorted(self.modes), "not_tried": sorted(self.not_tried),
                "detail": self.detail}


def aws_mode_for(modes: frozenset[Mode]) -> AwsBootMode | None:
    if modes >= {"bios", "uefi"}:
        return "uefi-preferred"
    if "uefi" in modes:
        return "uefi"
    if "bios" in modes:
        return "legacy-bios"
    return None


def huawei_firmware(mode: AwsBootMode | None) -> Literal["bios", "uefi"]:
    """IMS `hw_firmware_type`: UEFI only for UEFI-only images. IMS has no "UEFI if possible", so a hybrid image
    is registered as BIOS, which every x86 flavor boots."""
    return "uefi" if mode == "uefi" else "bios"


def tencent_boot_mode(mode: AwsBootMode | None) -> Literal["Legacy BIOS", "UEFI"]:
    """CVM ImportImage `BootMode`: the same rule as Huawei's (CVM has no "UEFI if possible" either)."""
    return "UEFI" if mode == "uefi" else "Legacy BIOS"


def alibaba_boot_mode(mode: AwsBootMode | None) -> Literal["BIOS", "UEFI"]:
    """ECS ImportImage `BootMode`: the same rule again (ECS imports BIOS or UEFI, no "UEFI if possible")."""
    return "UEFI" if mode == "uefi" else "BIOS"


def decide(requested: str | None, evidence: BootEvidence, *, what: str, arch: str = "x86_64") -> AwsBootMode:
    """The boot mode to register: the requested one if the evidence proves what it needs, else the widest
    the evidence proves, among the modes the arch has (aarch64: UEFI only). `what` names the source in the
    one-sentence refusal."""
    proven = evidence.modes & ARCH_FIRMWARE.get(arch, frozenset())
    if requested is not None:
        if requested not in AWS_NEEDS:
            raise UsageError(f"--boot-mode {requested!r}: choose one of {', '.join(AWS_NEEDS)}")
        missing = AWS_NEEDS[requested] - proven  # type: ignore[index]
        if missing:
            raise UsageError(f"--boot-mode {requested} needs {' and '.join(sorted(AWS_NEEDS[requested]))} "  # type: ignore[index]
                             f"boot proven, but {what} proves {_modes_text(proven)} ({evidence.basis}"
                             f"{': ' + evidence.detail if evidence.detail else ''})")
        return requested  # type: ignore[return-value]
    chosen = aws_mode_for(proven)
    if chosen is None:
        raise UsageError(f"{what} is proven to boot in no mode ({evidence.basis}"
                         f"{': ' + evidence.detail if evidence.detail else ''}); nothing can be registered")
    return chosen


def cloud_summary(mode: AwsBootMode) -> dict[str, str]:
    """What each cloud is told for an AWS-style boot mode (for plans and docs)."""
    return {"aws": mode, "huawei": huawei_firmware(mode), "tencent": tencent_boot_mode(mode),
            "alibaba": alibaba_boot_mode(mode)}


def _modes_text(modes: frozenset[Mode]) -> str:
    return " and ".join(m.upper() for m in sorted(modes)) or "no mode"
