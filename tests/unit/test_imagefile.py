"""imagefile: every hostile or broken image file is refused with one sentence, and good ones pass.

The files are made with qemu-img itself (a backing file, an external data file), or are plain bytes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from eulerpub import imagefile
from eulerpub.errors import EXIT_BAD_INPUT
from eulerpub.imagefile import BadImage

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")

MiB = 1 << 20


def qemu_img(*args: str | Path) -> None:
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True)


def mbr_disk(path: Path, size: int = 4 * MiB) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
        handle.seek(446)
        handle.write(bytes([0x80, 0, 0x21, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little")
                     + (size // 512 - 2048).to_bytes(4, "little"))  # one Linux partition entry
        handle.write(b"\0" * 48 + b"\x55\xaa")
    return path


@pytest.fixture
def secret(tmp_path) -> Path:
    """A host file an attacker wants: its bytes must never be read as an image."""
    path = tmp_path / "host-secret"
    path.write_bytes(b"root:x:0:0:HOST-SECRET-MARKER:/root:/bin/bash\n" * 100)
    return path


def refused(path: Path, fmt: str | None = None, **kwargs) -> str:
    with pytest.raises(BadImage) as caught:
        if fmt is None:
            imagefile.inspect_file(path, **kwargs)
        else:
            imagefile.inspect(path, fmt, **kwargs)
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "\n" not in message and message.startswith(str(path)), message
    return message


def test_a_qcow2_with_a_backing_file_is_refused(tmp_path, secret):
    image = tmp_path / "x.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", secret, "-F", "raw", image, "1M")
    assert "backing file" in refused(image, "qcow2")
    assert "backing file" in refused(image)  # sniffed as qcow2, same answer


def test_a_qcow2_with_a_qcow2_backing_file_is_refused_too(tmp_path):
    base = tmp_path / "base.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", mbr_disk(tmp_path / "d.raw"), base)
    image = tmp_path / "top.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", base, "-F", "qcow2", image)
    assert "backing file" in refused(image, "qcow2")


def test_a_qcow2_with_an_external_data_file_is_refused(tmp_path, secret):
    image = tmp_path / "x.qcow2"
    data = tmp_path / "data.raw"
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={data}", image, "1M")
    assert "external data file" in refused(image, "qcow2")
    # Pointed at a host file by hand (as an attacker would), it is refused before qemu-img opens that file.
    qemu_img("amend", "-f", "qcow2", "-o", f"data_file={secret}", image)
    assert "external data file" in refused(image, "qcow2")


def test_a_raw_file_with_a_qcow2_header_is_refused(tmp_path, secret):
    qcow2 = tmp_path / "x.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", secret, "-F", "raw", qcow2, "1M")
    fake = tmp_path / "disk.raw"
    fake.write_bytes(qcow2.read_bytes())
    assert "qcow2 header" in refused(fake, "raw")


@pytest.mark.parametrize("header", [b"KDMV\x01\0\0\0", b"conectix", b"vhdxfile", b"QED\0", b"LUKS\xba\xbe"])
def test_a_raw_file_with_another_formats_header_is_refused(tmp_path, header):
    fake = mbr_disk(tmp_path / "disk.raw")
    with open(fake, "r+b") as handle:
        handle.write(header)
    assert "header" in refused(fake, "raw")


def test_a_declared_qcow2_that_is_raw_is_refused(tmp_path):
    assert "not a qcow2 image" in refused(mbr_disk(tmp_path / "disk.qcow2"), "qcow2")


def test_an_empty_file_is_refused(tmp_path):
    empty = tmp_path / "empty.qcow2"
    empty.touch()
    assert "empty" in refused(empty)
    assert "empty" in refused(empty, "raw")


def test_a_text_file_is_refused(tmp_path):
    text = tmp_path / "notes.raw"
    text.write_text("this is not a disk image\n")  # 25 bytes
    assert "text file" in refused(text)
    assert "text file" in refused(text, "qcow2")


def test_a_vmdk_descriptor_naming_host_files_is_refused(tmp_path, secret):
    descriptor = tmp_path / "disk.vmdk"
    descriptor.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                          f'createType="monolithicFlat"\nRW 1 FLAT "{secret}" 0\n')
    refused(descriptor, "vmdk")
    refused(descriptor)


@pytest.mark.parametrize("keep", [40, 80, 100])
def test_a_truncated_qcow2_header_is_refused(tmp_path, keep):
    good = tmp_path / "good.qcow2"
    qemu_img("create", "-f", "qcow2", good, "1M")
    cut = tmp_path / "cut.qcow2"
    cut.write_bytes(good.read_bytes()[:keep])
    assert "truncated" in refused(cut, "qcow2")


def test_a_qcow2_cut_after_its_header_is_refused(tmp_path):
    good = tmp_path / "good.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", mbr_disk(tmp_path / "d.raw"), good)
    cut = tmp_path / "cut.qcow2"
    cut.write_bytes(good.read_bytes()[:4096])
    refused(cut, "qcow2")


def test_a_raw_disk_without_a_partition_table_is_refused(tmp_path):
    blank = tmp_path / "blank.raw"
    with open(blank, "wb") as handle:
        handle.truncate(4 * MiB)
        handle.write(b"\x01" * 4096)  # data, but no MBR signature and no GPT header
    assert "no partition table" in refused(blank, "raw")
    assert imagefile.inspect(blank, "raw", bootable=False).virtual_size == 4 * MiB  # e.g. a data disk


def test_a_qcow2_whose_guest_has_no_partition_table_is_refused(tmp_path):
    image = tmp_path / "empty.qcow2"
    qemu_img("create", "-f", "qcow2", image, "4M")
    assert "no partition table" in refused(image, "qcow2")


def test_a_good_raw_disk_with_an_mbr_passes(tmp_path):
    disk = mbr_disk(tmp_path / "disk.raw")
    inspected = imagefile.inspect(disk, "raw")
    assert (inspected.format, inspected.qemu_format, inspected.virtual_size) == ("raw", "raw", 4 * MiB)
    assert imagefile.sniff(disk) == "raw"


def test_a_good_gpt_disk_passes(tmp_path):
    disk = tmp_path / "gpt.raw"
    with open(disk, "wb") as handle:
        handle.truncate(4 * MiB)
        handle.seek(512)
        handle.write(b"EFI PART")
    assert imagefile.inspect(disk, "raw").virtual_size == 4 * MiB


@pytest.mark.parametrize(("fmt", "qemu", "options"), [
    ("qcow2", "qcow2", []),
    ("vmdk", "vmdk", ["-o", "subformat=streamOptimized"]),
    ("vhd", "vpc", ["-o", "subformat=fixed,force_size=on"]),
    ("vhd", "vpc", []),  # dynamic
])
def test_good_images_of_every_format_pass(tmp_path, fmt, qemu, options):
    image = tmp_path / f"disk.{fmt}"
    qemu_img("convert", "-f", "raw", "-O", qemu, *options, mbr_disk(tmp_path / "d.raw"), image)
    assert imagefile.sniff(image) == fmt
    inspected = imagefile.inspect(image, fmt)
    assert inspected.format == fmt and inspected.virtual_size >= 4 * MiB
    assert imagefile.inspect_file(image) == inspected


def test_inspection_never_probes_and_never_follows_a_backing_chain(tmp_path, secret, monkeypatch):
    """Every qemu-img call names the format and stays within the file (no --backing-chain)."""
    calls: list[list[str]] = []
    real = imagefile.proc.run

    def spy(argv, **kwargs):
        calls.append([str(a) for a in argv])
        return real(argv, **kwargs)

    monkeypatch.setattr(imagefile.proc, "run", spy)
    image = tmp_path / "good.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", mbr_disk(tmp_path / "d.raw"), image)
    imagefile.inspect(image, "qcow2")
    bad = tmp_path / "bad.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", secret, "-F", "raw", bad, "1M")
    refused(bad, "qcow2")
    assert calls and all("-f" in c and "--backing-chain" not in c for c in calls)
    assert not any(str(bad) in " ".join(c) for c in calls), "the backing-file image never reached qemu-img"


def test_qemu_img_info_agrees_about_the_hostile_files(tmp_path, secret):
    """The files above really are what the tests say (so each refusal is for the stated reason)."""
    image = tmp_path / "x.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", secret, "-F", "raw", image, "1M")
    info = json.loads(subprocess.run(["qemu-img", "info", "-f", "qcow2", "--output=json", str(image)],
                                     check=True, capture_output=True).stdout)
    assert info["backing-filename"] == str(secret)


def test_a_vmdk_delta_of_another_file_is_refused(tmp_path):
    """A sparse VMDK can name a parent too (parentFileNameHint): qemu-img info reports it as a backing file."""
    parent = tmp_path / "parent.vmdk"
    qemu_img("convert", "-f", "raw", "-O", "vmdk", mbr_disk(tmp_path / "d.raw"), parent)
    image = tmp_path / "delta.vmdk"
    qemu_img("create", "-f", "vmdk", "-b", parent, "-F", "vmdk", image)
    assert "backing file" in refused(image, "vmdk")
