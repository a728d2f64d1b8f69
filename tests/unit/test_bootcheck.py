"""bootcheck: check selection, the QEMU command, and each check's verdict on canned guest answers."""

from __future__ import annotations

import subprocess

import pytest

from eulerpub import bootcheck
from eulerpub.errors import UsageError


class FakeGuest:
    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.commands: list[str] = []

    def run(self, command, *, timeout=0, stdin=None):
        self.commands.append(command)
        for needle, (rc, out) in self.answers.items():
            if needle in command:
                return subprocess.CompletedProcess(command, rc, out, "")
        return subprocess.CompletedProcess(command, 0, "", "")


def test_select_checks_adds_the_basics_and_rejects_unknown():
    assert bootcheck.select_checks(["mpi"]) == ["booted", "cloud-init", "growroot", "mpi"]
    assert bootcheck.select_checks([]) == ["booted", "cloud-init", "growroot"]
    assert bootcheck.select_checks(["hpcnow", "desktop", "mpi"])[3:] == ["mpi", "desktop", "hpcnow"]
    with pytest.raises(UsageError):
        bootcheck.select_checks(["gpu"])


def test_qemu_argv_tcg_and_kvm(tmp_path):
    common = dict(overlay=tmp_path / "o.qcow2", seed=tmp_path / "s.iso", port=2222, console=tmp_path / "c")
    tcg = bootcheck.qemu_argv(accel="tcg", **common)
    assert tcg[tcg.index("-accel") + 1] == "tcg" and tcg[tcg.index("-cpu") + 1] == "max"
    assert any("hostfwd=tcp:127.0.0.1:2222-:22" in a for a in tcg)
    kvm = bootcheck.qemu_argv(accel="kvm", **common)
    assert kvm[kvm.index("-cpu") + 1] == "host"
    assert tcg[0] == "qemu-system-x86_64" and "-bios" not in tcg


def test_qemu_argv_aarch64_boots_uefi_on_the_virt_board(tmp_path):
    common = dict(overlay=tmp_path / "o.qcow2", seed=tmp_path / "s.iso", port=2222, console=tmp_path / "c")
    argv = bootcheck.qemu_argv(accel="tcg", arch="aarch64", **common)
    assert argv[0] == "qemu-system-aarch64"
    assert argv[argv.index("-machine") + 1] == "virt"
    assert argv[argv.index("-bios") + 1].endswith("QEMU_EFI.fd")
    with pytest.raises(UsageError, match="not riscv64"):
        bootcheck.qemu_argv(accel="tcg", arch="riscv64", **common)


def _parts(data: str) -> list[tuple[str, str]]:
    import email

    message = email.message_from_string(data)
    assert message.is_multipart()
    return [(part.get_content_type(), part.get_payload(decode=True).decode()) for part in message.get_payload()]


def test_user_data_is_mime_with_one_cloud_config_and_the_scripts():
    import yaml

    plain = _parts(bootcheck.user_data("ssh-ed25519 AAAA test\n"))
    assert [kind for kind, _ in plain] == ["text/cloud-config"]
    assert plain[0][1].startswith("#cloud-config\n")
    config = yaml.safe_load(plain[0][1])
    assert config["ssh_authorized_keys"] == ["ssh-ed25519 AAAA test"] and "users" not in config

    data = bootcheck.user_data("ssh-ed25519 AAAA test", users=[{"name": "u1"}], runcmd=[["true"]],
                               scripts=["#!/bin/bash\necho one\n", "#!/bin/bash\necho two\n"], check_user=True,
                               write_files=[{"path": "/etc/x", "content": "y"}])
    parts = _parts(data)
    assert [kind for kind, _ in parts] == ["text/cloud-config", "text/x-shellscript", "text/x-shellscript"]
    assert [body for _, body in parts[1:]] == ["#!/bin/bash\necho one\n", "#!/bin/bash\necho two\n"]
    config = yaml.safe_load(parts[0][1])
    assert config["users"][0] == "default"  # the image's default user is kept (and gets the key)
    check_user = config["users"][1]
    assert check_user["name"] == bootcheck.CHECK_USER and check_user["ssh_authorized_keys"] == ["ssh-ed25519 AAAA test"]
    assert config["users"][2] == {"name": "u1"}
    assert config["runcmd"][-1] == ["true"] and "EULERPUB-BOOTCHECK-RUNCMD" in str(config["runcmd"][0])
    assert config["write_files"] == [{"path": "/etc/x", "content": "y"}]
    assert config["no_ssh_fingerprints"] is True  # the scripts delete the default user, whose keys it would print


def test_qemu_argv_forwards_more_guest_ports(tmp_path):
    common = dict(overlay=tmp_path / "o.qcow2", seed=tmp_path / "s.iso", port=2222, console=tmp_path / "c")
    argv = bootcheck.qemu_argv(accel="tcg", forwards={3389: 40001, 5901: 40002}, memory_mb=4096, **common)
    nic = argv[argv.index("-nic") + 1]
    assert nic == ("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:40001-:3389,"
                   "hostfwd=tcp:127.0.0.1:40002-:5901")
    assert argv[argv.index("-m") + 1] == "4096"


def test_cloud_init_check():
    done = FakeGuest({"cloud-init status": (0, "status: done\n")})
    assert bootcheck.check_cloud_init(done, 0).passed
    failed = FakeGuest({"cloud-init status": (1, "status: error\n"), "grep": (0, "ERROR boom")})
    result = bootcheck.check_cloud_init(failed, 0)
    assert not result.passed and "error" in result.detail and "boom" in result.detail


def test_growroot_check():
    gib = 1024**3
    grown = FakeGuest({"df": (0, f"{7 * gib}\n{8 * gib}\n")})
    assert bootcheck.check_growroot(grown, 6 * gib).passed
    not_grown = FakeGuest({"df": (0, f"{5 * gib}\n{8 * gib}\n")})
    assert not bootcheck.check_growroot(not_grown, 6 * gib).passed


def test_mpi_check_needs_both_ranks_for_both_mpis():
    ranks = "hello from rank 1 of 2\nhello from rank 0 of 2\n"
    good = FakeGuest({"mpi/openmpi": (0, ranks), "mpi/mpich": (0, ranks)})
    assert bootcheck.check_mpi(good, 0).passed
    one_rank = FakeGuest({"mpi/openmpi": (0, ranks), "mpi/mpich": (0, "hello from rank 0 of 2\n")})
    assert not bootcheck.check_mpi(one_rank, 0).passed


def test_qemu_argv_per_firmware_mode(tmp_path):
    common = dict(overlay=tmp_path / "o.qcow2", seed=tmp_path / "s.iso", port=2222, console=tmp_path / "c")
    bios = bootcheck.qemu_argv(accel="tcg", firmware="bios", **common)
    uefi = bootcheck.qemu_argv(accel="tcg", firmware="uefi", **common)
    assert "-bios" not in bios  # QEMU's own SeaBIOS
    assert uefi[uefi.index("-bios") + 1] == "/usr/share/ovmf/OVMF.fd"
    arm = bootcheck.qemu_argv(accel="tcg", arch="aarch64", **common)
    assert arm[arm.index("-cpu") + 1] == "max,pauth-impdef=on"
    with pytest.raises(UsageError, match="cannot be boot-tested under bios"):
        bootcheck.machine_for("aarch64", "bios")


def hybrid_image(tmp_path):
    from tests.disks import hybrid_head

    image = tmp_path / "disk.raw"
    with open(image, "wb") as handle:
        handle.truncate(64 << 20)
        handle.write(hybrid_head(64 << 20))
    return image


def test_each_mode_is_booted_the_first_with_every_check_and_missing_firmware_is_not_tried(monkeypatch, tmp_path):
    booted = []

    def fake_boot(image, inspected, work, *, arch, firmware, checks, report, **_):
        booted.append((firmware, list(checks)))
        passed = firmware == "bios"
        report.checks.append(bootcheck.CheckResult("booted", passed, "fake", firmware))
        return bootcheck.ModeBoot(firmware=firmware, passed=passed, boot_seconds=1.0)

    monkeypatch.setattr(bootcheck, "_boot_once", fake_boot)
    image = hybrid_image(tmp_path)
    report = bootcheck.boot_test(image, checks=["mpi"])  # modes from the partition table: bios and uefi
    assert booted == [("bios", ["booted", "cloud-init", "growroot", "mpi"]), ("uefi", ["booted", "cloud-init",
                                                                                      "growroot"])]
    assert report.modes == {"bios": "passed", "uefi": "failed"} and not report.passed

    monkeypatch.setitem(bootcheck.MACHINES, ("x86_64", "uefi"),
                        bootcheck.Machine("qemu-system-x86_64", (), tmp_path / "no-such-OVMF.fd", "ovmf"))
    booted.clear()
    report = bootcheck.boot_test(image)
    assert [m for m, _ in booted] == ["bios"]
    assert report.modes == {"bios": "passed", "uefi": "not tried"} and report.passed
    assert "install ovmf" in report.not_tried["uefi"]


def test_the_kept_result_proves_only_the_modes_that_passed(tmp_path):
    from eulerpub.manifest import BaseImage, BuildRecord

    record = BuildRecord(build_id="b1", profile="p", release="24.03-LTS-SP1", arch="x86_64",
                         base=BaseImage(url="u", sha256="0"), elements_hash="e", elements=[], artifacts=[])
    record_path = tmp_path / "manifest.json"
    assert bootcheck.proven_modes(record_path, record) is None  # never boot-tested
    report = bootcheck.BootReport(image="x", accel="tcg", accel_reason="r",
                                  boots=[bootcheck.ModeBoot("bios", True), bootcheck.ModeBoot("uefi", False)])
    bootcheck.remember(record_path, record, report)
    evidence = bootcheck.proven_modes(record_path, record)
    assert evidence is not None and evidence.modes == {"bios"} and "uefi failed" in evidence.detail
    assert bootcheck.passed_before(record_path, "b1") is None  # a failed boot is kept, but is not a pass
