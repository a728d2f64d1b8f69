"""doctor: findings for a host with the measured gaps, and the CLI's JSON."""

from __future__ import annotations

import json

from eulerpub import hostenv
from eulerpub.cli import doctor


def gap_host() -> hostenv.HostFacts:
    return hostenv.HostFacts(is_root=True, in_container=True, device_mapper=False, vfat_mount=False,
                             loop_control=True, mtools=True, kvm_device=True, kvm_usable=False,
                             kvm_reason="/dev/kvm exists but the CPU shows no VMX/SVM",
                             tools={t: f"/usr/bin/{t}" for t in hostenv.HOST_TOOLS} | {"shellcheck": None})


def test_gaps_are_fallbacks_and_missing_tools_say_how_to_fix():
    findings = {f.name: f for f in doctor.diagnose(gap_host())}
    assert findings["device-mapper"].state == doctor.FALLBACK
    assert findings["vfat mounts"].state == doctor.FALLBACK
    assert "ESP" in findings["vfat mounts"].detail and "mtools" in findings["vfat mounts"].detail
    assert findings["KVM"].state == doctor.FALLBACK and "TCG" in findings["KVM"].detail
    assert findings["shellcheck"].state == doctor.MISSING and "apt-get install shellcheck" in findings["shellcheck"].fix
    assert findings["qemu-img"].state == doctor.OK


def test_cli_json(cli, monkeypatch):
    monkeypatch.setattr(hostenv, "detect", gap_host)
    result = cli("doctor", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["accel"] == "tcg" and data["ok"] is False
    assert cli("doctor", "--strict").exit_code == 1


def test_the_esp_method_follows_vfat_and_mtools():
    host = gap_host()
    assert host.esp_method == "mtools" and host.needs_shims
    with_vfat = hostenv.HostFacts(**{**host.__dict__, "vfat_mount": True, "device_mapper": True})
    assert with_vfat.esp_method == "mount" and not with_vfat.needs_shims  # DIB's own path
    bare = hostenv.HostFacts(**{**host.__dict__, "mtools": False})
    assert bare.esp_method == "none"
    assert doctor.diagnose(bare)[[f.name for f in doctor.diagnose(bare)].index("vfat mounts")].state == doctor.MISSING
