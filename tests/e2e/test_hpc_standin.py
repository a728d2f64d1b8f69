"""End to end: stand-in base on a local mirror -> real `eulerpub build` (hybrid: GPT, BIOS boot partition, ESP) ->
inspect -> reuse -> boot test under SeaBIOS and OVMF -> publish to AWS (moto), registered uefi-preferred.

Runs diskimage-builder for real (root, loop devices) and boots under QEMU (TCG here): about 10 minutes
with warm caches (stand-in, apt .debs), 15 on a fresh machine. Select with `-m e2e`; skip with `-m "not e2e"`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from eulerpub import bootcheck
from eulerpub.bootmodes import parse_partition_table
from eulerpub.manifest import artifact_path, read_record, sha256_file
from tests.e2e.builds import standin_build_args
from tests.fixtures_moto import snapshot_blocks

EBS_BLOCK = 512 * 1024

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.needs_root("diskimage-builder needs root (loop devices, mounts)"),
]


def build_args(mirror: str, output: Path) -> list[str]:
    return standin_build_args("hpc-standin", mirror, output)


@contextlib.contextmanager
def mounted_root(raw: Path, mountpoint: Path) -> Iterator[Path]:
    """Loop-mount the image's root filesystem (its last partition) read-only, without partition devices."""
    table = json.loads(subprocess.run(["sfdisk", "-J", str(raw)], check=True, capture_output=True).stdout)
    part = table["partitiontable"]["partitions"][-1]
    sector = table["partitiontable"].get("sectorsize", 512)
    loop = subprocess.run(["losetup", "-r", "-f", "--show", "-o", str(part["start"] * sector),
                           "--sizelimit", str(part["size"] * sector), str(raw)],
                          check=True, capture_output=True, text=True).stdout.strip()
    mountpoint.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-o", "ro,noload", loop, str(mountpoint)], check=True)
        try:
            yield mountpoint
        finally:
            subprocess.run(["umount", str(mountpoint)], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def first_directive(text: str, name: str) -> str | None:
    for line in text.splitlines():
        words = line.split()
        if words and words[0].lower() == name.lower():
            return words[1] if len(words) > 1 else ""
    return None


def inspect_image(root: Path) -> None:
    shadow = (root / "etc/shadow").read_text().splitlines()
    root_hash = next(line.split(":")[1] for line in shadow if line.startswith("root:"))
    assert root_hash.startswith(("!", "*")), f"root is not locked: {root_hash[:3]}..."

    sshd = (root / "etc/ssh/sshd_config").read_text()
    assert first_directive(sshd, "PasswordAuthentication") == "no"
    for drop_in in (root / "etc/ssh/sshd_config.d").glob("*.conf"):
        assert first_directive(drop_in.read_text(), "PasswordAuthentication") in (None, "no"), drop_in
    assert not list((root / "etc/ssh").glob("ssh_host_*")), "SSH host keys were left in the image"

    assert (root / "etc/machine-id").stat().st_size == 0
    resolv = root / "etc/resolv.conf"
    if resolv.exists() and not resolv.is_symlink():
        assert resolv.read_text() != Path("/etc/resolv.conf").read_text(), "the build host's resolv.conf leaked"

    assert (root / "usr/bin/cloud-init").exists()
    cloud_cfg = (root / "etc/cloud/cloud.cfg.d/50-eulerpub-cloud.cfg").read_text()
    assert "name: openeuler" in cloud_cfg and "lock_passwd: true" in cloud_cfg and "ssh_pwauth: false" in cloud_cfg
    assert "NoCloud" in (root / "etc/cloud/cloud.cfg.d/90-eulerpub-datasources.cfg").read_text()

    assert not list((root / "var/cache/apt/archives").glob("*.deb")), "apt's package cache was left"
    lists = [p for p in (root / "var/lib/apt/lists").iterdir() if p.is_file() and p.name != "lock"]
    assert not lists, f"apt lists were left: {lists[:3]}"
    assert not list((root / "var/lib/cloud").glob("instance*")), "cloud-init state was left"
    assert not (root / "root/.bash_history").exists()
    assert not (root / "usr/local/bin/eulerpub-unit-installed").exists(), "eulerpub-lib's build helper was left"

    modules = root / "usr/share/modules/modulefiles/mpi"
    assert {"openmpi", "mpich"} <= {p.name for p in modules.iterdir()}
    grub_cfg = (root / "boot/grub/grub.cfg").read_text()
    # The stand-in carries openEuler's official GRUB_CMDLINE_LINUX: hpc drops softlockup_panic=1 and nothing else,
    # and diskimage-builder's "nomodeset" default is not added.
    assert "softlockup_panic=1" not in grub_cfg
    for kept in ("console=ttyS0", "oops=panic", "panic=3", "crashkernel=256M", "nmi_watchdog=1"):
        assert kept in grub_cfg, kept
    assert "nomodeset" not in grub_cfg


def inspect_boot(raw: Path) -> None:
    """The hybrid layout: GPT with an ESP holding a removable-path grub, and grub's core in the BIOS boot partition."""
    with open(raw, "rb") as handle:
        table = parse_partition_table(handle.read(1 << 20))
    assert (table.label, table.esp, table.bios_boot, table.boot_code) == ("gpt", True, True, True), table
    parts = json.loads(subprocess.run(["sfdisk", "-J", str(raw)], check=True, capture_output=True).stdout)
    by_type = {p["type"].upper(): p for p in parts["partitiontable"]["partitions"]}
    esp = by_type["C12A7328-F81F-11D2-BA4B-00A0C93EC93B"]
    listing = subprocess.run(["mdir", "-b", "-/", "-i", f"{raw}@@{esp['start'] * 512}", "::/EFI"], check=True,
                             capture_output=True, text=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
    assert "::/EFI/BOOT/BOOTX64.EFI" in listing.upper().replace("\\", "/"), listing
    # The base's EFI tree (grub built for openEuler's MBR layout, prefix (,msdos1)) was dropped, not carried over.
    assert "OPENEULER" not in listing.upper(), listing
    loader = subprocess.run(["mtype", "-i", f"{raw}@@{esp['start'] * 512}", "::/EFI/BOOT/BOOTX64.EFI"], check=True,
                            capture_output=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
    assert loader.startswith(b"MZ") and b"(,msdos1)" not in loader
    bios_boot = by_type["21686148-6449-6E6F-744E-656564454649"]
    with open(raw, "rb") as handle:
        handle.seek(bios_boot["start"] * 512)
        assert any(handle.read(64 * 1024)), "grub's core.img is not in the BIOS boot partition"


def nonzero_block_digests(raw: Path) -> dict[int, str]:
    """sha256 of every 512 KiB block of `raw` that is not all zeros, by block index (holes are skipped)."""
    digests: dict[int, str] = {}
    zero = bytes(EBS_BLOCK)
    with open(raw, "rb") as handle:
        fd, end, offset = handle.fileno(), os.fstat(handle.fileno()).st_size, 0
        while offset < end:
            try:
                offset = os.lseek(fd, offset, os.SEEK_DATA) // EBS_BLOCK * EBS_BLOCK
            except OSError:  # no data after offset
                break
            handle.seek(offset)
            block = handle.read(EBS_BLOCK)
            if block.ljust(EBS_BLOCK, b"\0") != zero:
                digests[offset // EBS_BLOCK] = hashlib.sha256(block.ljust(EBS_BLOCK, b"\0")).hexdigest()
            offset += EBS_BLOCK
    return digests


def publish_to_aws(cli, record_path: Path, moto) -> None:
    """The built image, published from its record to moto: EBS direct, a copy, a share, every block right."""
    record = read_record(record_path)
    result = cli("publish", "--cloud", "aws", "--record", str(record_path), "--region", "us-east-1",
                 "--copy-to", "eu-west-1", "--share", "210987654321", "--json")
    assert result.exit_code == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["build_id"] == record.build_id
    (_region, sent), = moto.registered
    assert sent["BootMode"] == "uefi-preferred"  # both modes proven by the boot test
    snapshot_id = sent["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    stored = {i: hashlib.sha256(b).hexdigest() for i, b in snapshot_blocks("us-east-1", snapshot_id).items()}
    assert stored == nonzero_block_digests(artifact_path(record_path, record.artifact("raw")))
    for row in report["regions"]:
        (ami,) = boto3.client("ec2", region_name=row["region"]).describe_images(Owners=["self"])["Images"]
        assert ami["State"] == "available"
        assert ami["Name"].startswith("openEuler-24.03-LTS-SP1-x86_64-hpc-standin-")
        tags = {t["Key"]: t["Value"] for t in ami["Tags"]}
        assert tags["eulerpub:build-id"] == record.build_id and tags["eulerpub:profile"] == "hpc-standin"


def test_hpc_standin_build_inspect_reuse_boot_publish(cli, openeuler_mirror, persistent_cache, tmp_path,
                                                      aws_env, monkeypatch, hpc_standin_build):
    # The first build is the session's (conftest: test_hpcnow_standin boots it too).
    built, build_s = hpc_standin_build.report, hpc_standin_build.seconds
    assert built["status"] == "built"
    record_path = Path(built["record"])
    output = record_path.parent.parent
    record = read_record(record_path)

    # The record: inputs, base, every artifact's size and sha256 match the files.
    assert record.profile == "hpc-standin" and record.release == "24.03-LTS-SP1" and record.arch == "x86_64"
    assert record.base.url.startswith(openeuler_mirror)
    assert {a.format for a in record.artifacts} == {"qcow2", "raw"}
    for artifact in record.artifacts:
        path = artifact_path(record_path, artifact)
        assert path.stat().st_size == artifact.size
        assert sha256_file(path) == artifact.sha256
        # image_size_gb sizes the root; DIB's EFI layout adds its ESP and BIOS boot partition on top.
        assert 6 * 1024**3 <= artifact.virtual_size < 7 * 1024**3
    for name in ("cloud-init", "openmpi-bin", "mpich", "gfortran", "environment-modules", "libhdf5-dev"):
        assert any(p.startswith(f"{name}-") for p in record.packages), f"{name} is not in the package list"
    assert "mpi" in record.checks
    assert record.boot is not None and (record.boot.layout, record.boot.modes) == ("hybrid", ["bios", "uefi"])
    assert not list(output.glob("*.partial")), "a partial build directory was left behind"

    # An inspection of the image itself.
    raw = artifact_path(record_path, record.artifact("raw"))
    with mounted_root(raw, tmp_path / "root") as root:
        inspect_image(root)
    inspect_boot(raw)

    # Same inputs: no DIB run, the same record and log, reported as reused.
    record_bytes = record_path.read_bytes()
    log_path = record_path.parent / "build.log"
    log_stat = log_path.stat()
    started = time.monotonic()
    second = cli(*build_args(openeuler_mirror, output))
    reuse_s = time.monotonic() - started
    assert second.exit_code == 0, second.stderr[-3000:]
    reused = json.loads(second.stdout)
    assert reused["status"] == "reused" and reused["build_id"] == record.build_id
    assert record_path.read_bytes() == record_bytes
    assert log_path.stat().st_mtime_ns == log_stat.st_mtime_ns and log_path.stat().st_size == log_stat.st_size

    # Boot it: cloud-init, growroot and an MPI hello world on 2 ranks (Open MPI and MPICH).
    started = time.monotonic()
    tested = cli("test", str(record_path), "--json")
    boot_s = time.monotonic() - started
    report = json.loads(tested.stdout)
    failed = {c["name"]: c["detail"] for c in report["checks"] if not c["passed"]}
    assert tested.exit_code == 0 and not failed, f"{failed}; console: {report.get('console_log')}"
    assert report["modes"] == {"bios": "passed", "uefi": "passed"}
    by_mode = {m: {c["name"] for c in report["checks"] if c["firmware"] == m} for m in ("bios", "uefi")}
    assert by_mode == {"bios": {"booted", "cloud-init", "growroot", "mpi"},
                       "uefi": {"booted", "cloud-init", "growroot"}}  # the first mode runs every check
    kept = json.loads((record_path.parent / bootcheck.RESULT_NAME).read_text())
    assert kept["build_id"] == record.build_id and kept["modes"] == report["modes"]

    # Publish what was built and booted: the record is all publish reads.
    monkeypatch.setenv("EULERPUB_POLL_INTERVAL", "0.2")
    started = time.monotonic()
    publish_to_aws(cli, record_path, aws_env)
    publish_s = time.monotonic() - started
    boots = ", ".join(f"{b['firmware']} {b['total_seconds']:.0f} s (SSH at {b['boot_seconds']:.0f} s)"
                      for b in report["boots"])
    print(f"e2e wall times: build {build_s:.0f} s, reused build {reuse_s:.1f} s, boot test {boot_s:.0f} s "
          f"({boots}; {report['accel']}), publish {publish_s:.0f} s")
