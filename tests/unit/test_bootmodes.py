"""bootmodes: partition tables read from synthetic disks (made with sgdisk/sfdisk, never mounted), layouts, and
the boot mode each cloud is told."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from eulerpub import bootmodes
from eulerpub.bootmodes import BootEvidence, decide, parse_partition_table
from eulerpub.errors import UsageError

MiB = 1 << 20
BOOT_CODE = b"\xeb\x63\x90" + b"\x10" * 100  # stands in for grub's boot.img in sector 0

needs_tools = pytest.mark.skipif(not (shutil.which("sgdisk") and shutil.which("sfdisk")),
                                 reason="sgdisk (gdisk) and sfdisk (fdisk) make the synthetic disks")


def disk(tmp_path: Path, name: str, size: int = 64 * MiB) -> Path:
    path = tmp_path / name
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def with_boot_code(path: Path) -> Path:
    with open(path, "r+b") as handle:
        handle.write(BOOT_CODE)
    return path


def gpt(tmp_path: Path, name: str, *types: str) -> Path:
    path = disk(tmp_path, name)
    args = []
    for n, code in enumerate(types, start=1):
        args += [f"-n{n}:0:{'+8M' if n < len(types) else '0'}", f"-t{n}:{code}"]
    subprocess.run(["sgdisk", *args, str(path)], check=True, capture_output=True)
    return path


def mbr(tmp_path: Path, name: str, script: str) -> Path:
    path = disk(tmp_path, name)
    subprocess.run(["sfdisk", "-q", str(path)], input=f"label: dos\n{script}", text=True, check=True,
                   capture_output=True)
    return path


def table(path: Path) -> bootmodes.PartitionTable:
    return parse_partition_table(path.read_bytes()[:bootmodes.HEAD_BYTES])


def sent(modes: frozenset[str]) -> dict[str, str]:
    return bootmodes.cloud_summary(decide(None, BootEvidence("partition table", modes), what="the image"))


@needs_tools
def test_mbr_only_is_bios_only(tmp_path):
    found = table(with_boot_code(mbr(tmp_path, "mbr.raw", "start=1MiB, size=16MiB, type=83, bootable\n")))
    assert (found.label, found.modes) == ("mbr", {"bios"})
    assert sent(found.modes) == {"aws": "legacy-bios", "huawei": "bios", "tencent": "Legacy BIOS",
                                 "alibaba": "BIOS"}


@needs_tools
def test_mbr_without_boot_code_or_active_partition_boots_nothing(tmp_path):
    assert table(mbr(tmp_path, "nocode.raw", "start=1MiB, size=16MiB, type=83, bootable\n")).modes == set()
    inactive = with_boot_code(mbr(tmp_path, "inactive.raw", "start=1MiB, size=16MiB, type=83\n"))
    assert table(inactive).modes == set()


@needs_tools
def test_mbr_with_an_esp_type_partition_is_uefi_capable(tmp_path):
    path = with_boot_code(mbr(tmp_path, "mbr-esp.raw", "start=1MiB, size=16MiB, type=ef\n"
                                                       "size=16MiB, type=83, bootable\n"))
    assert table(path).modes == {"bios", "uefi"}


@needs_tools
def test_gpt_with_esp_only_is_uefi_only(tmp_path):
    found = table(gpt(tmp_path, "esp.raw", "EF00", "8300"))
    assert (found.label, found.esp, found.bios_boot, found.modes) == ("gpt", True, False, {"uefi"})
    assert sent(found.modes) == {"aws": "uefi", "huawei": "uefi", "tencent": "UEFI", "alibaba": "UEFI"}


@needs_tools
def test_gpt_with_bios_boot_and_esp_is_hybrid(tmp_path):
    found = table(with_boot_code(gpt(tmp_path, "hybrid.raw", "EF00", "EF02", "8300")))
    assert (found.esp, found.bios_boot, found.partitions, found.modes) == (True, True, 3, {"bios", "uefi"})
    assert sent(found.modes) == {"aws": "uefi-preferred", "huawei": "bios", "tencent": "Legacy BIOS",
                                 "alibaba": "BIOS"}
    assert "BIOS boot partition" in found.describe() and "ESP" in found.describe()


@needs_tools
def test_gpt_bios_boot_partition_without_boot_code_is_not_bios(tmp_path):
    assert table(gpt(tmp_path, "nocode.raw", "EF00", "EF02", "8300")).modes == {"uefi"}


def test_no_partition_table_boots_nothing_and_nothing_is_registered(tmp_path):
    found = table(with_boot_code(disk(tmp_path, "blank.raw")))
    assert (found.label, found.modes) == ("none", set())
    with pytest.raises(UsageError, match="proven to boot in no mode"):
        decide(None, BootEvidence("partition table", found.modes, found.describe()), what="blank.raw")


def test_a_requested_mode_must_be_proven():
    bios_only = BootEvidence("boot test", frozenset({"bios"}), not_tried=frozenset({"uefi"}))
    assert decide("legacy-bios", bios_only, what="build x") == "legacy-bios"
    with pytest.raises(UsageError, match=r"--boot-mode uefi-preferred needs bios and uefi boot proven, but build "
                                         r"x proves BIOS \(boot test\)"):
        decide("uefi-preferred", bios_only, what="build x")
    with pytest.raises(UsageError, match="--boot-mode uefi needs uefi"):
        decide("uefi", bios_only, what="build x")
    hybrid = BootEvidence("boot test", frozenset({"bios", "uefi"}))
    assert [decide(m, hybrid, what="x") for m in ("uefi", "legacy-bios", "uefi-preferred")] == [
        "uefi", "legacy-bios", "uefi-preferred"]


def test_layouts_per_arch():
    assert bootmodes.resolve_layout(None, "x86_64") == "hybrid"
    assert bootmodes.resolve_layout("bios", "x86_64") == "bios"
    assert bootmodes.resolve_layout(None, "aarch64") == "uefi"
    assert bootmodes.layout_element("hybrid") == "block-device-efi"
    assert bootmodes.layout_element("bios") == "block-device-mbr"
    with pytest.raises(UsageError, match="boot: bios cannot be built for aarch64"):
        bootmodes.resolve_layout("bios", "aarch64")
    with pytest.raises(UsageError, match="boot: uefi cannot be built for x86_64"):
        bootmodes.resolve_layout("uefi", "x86_64")
