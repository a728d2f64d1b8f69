"""hostenv: detection, the device-mapper shims, stale-state discovery."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from eulerpub import hostenv


def facts(**overrides) -> hostenv.HostFacts:
    base = dict(is_root=True, in_container=True, device_mapper=False, vfat_mount=False, loop_control=True,
                mtools=True, kvm_device=True, kvm_usable=False, kvm_reason="PVM", tools={})
    base.update(overrides)
    return hostenv.HostFacts(**base)


def test_accel_override(monkeypatch):
    monkeypatch.setenv("EULERPUB_ACCEL", "tcg")
    assert hostenv.kvm_status()[1] is False
    monkeypatch.setenv("EULERPUB_ACCEL", "kvm")
    assert hostenv.kvm_status()[1] is True


def test_kvm_needs_virtualisation_flags(monkeypatch, tmp_path):
    monkeypatch.delenv("EULERPUB_ACCEL", raising=False)
    monkeypatch.setattr(hostenv, "_read", lambda p: "flags\t: fpu sse2\n" if p == "/proc/cpuinfo" else "")
    present, usable, reason = hostenv.kvm_status()
    if present and os.access("/dev/kvm", os.R_OK | os.W_OK):
        assert not usable and "PVM" in reason


def test_device_mapper_and_vfat_detection(monkeypatch):
    monkeypatch.setattr(hostenv, "_read", lambda p: {"/proc/misc": " 60 loop-control\n",
                                                     "/proc/filesystems": "nodev\tproc\n\text4\n"}.get(p, ""))
    assert not hostenv.device_mapper_available()
    assert not hostenv.vfat_mountable()
    monkeypatch.setattr(hostenv, "_read", lambda p: "\tvfat\n" if p == "/proc/filesystems" else "")
    assert hostenv.vfat_mountable()


def test_stale_mounts_deepest_first(monkeypatch):
    mountinfo = (
        "36 35 0:30 / /work/b/x.partial/eulerpub-dibtmp/dib_build.1 rw - tmpfs tmpfs rw\n"
        "37 36 0:31 / /work/b/x.partial/eulerpub-dibtmp/dib_build.1/mnt/proc rw - proc proc rw\n"
        "38 35 0:32 / /home/user/other rw - tmpfs tmpfs rw\n"
    )
    monkeypatch.setattr(hostenv, "_read", lambda p: mountinfo if p == "/proc/self/mountinfo" else "")
    assert hostenv.stale_mounts() == [
        "/work/b/x.partial/eulerpub-dibtmp/dib_build.1/mnt/proc",
        "/work/b/x.partial/eulerpub-dibtmp/dib_build.1",
    ]


def test_shims_are_installed_once_by_content(tmp_path):
    first = hostenv.install_shims(tmp_path)
    assert first == hostenv.install_shims(tmp_path)
    for name in ("sudo", "kpartx", "dmsetup"):
        assert os.access(first / name, os.X_OK)


def test_dmsetup_shim(tmp_path):
    shims = hostenv.install_shims(tmp_path)
    assert subprocess.run([shims / "dmsetup", "--noudevsync", "mknodes"]).returncode == 0
    assert subprocess.run([shims / "dmsetup", "remove", "loop99p1"]).returncode == 0
    assert subprocess.run([shims / "dmsetup", "version"], capture_output=True).returncode == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="the sudo shim runs commands directly only as root")
def test_sudo_shim_resets_environment_but_keeps_shims_on_path(tmp_path):
    shims = hostenv.install_shims(tmp_path)
    env = {"PATH": f"{shims}:/usr/bin:/bin", "TMPDIR": "/leak", "HOME": "/nowhere"}
    plain = subprocess.run([shims / "sudo", "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert f"PATH={shims}:" in plain and "TMPDIR" not in plain
    kept = subprocess.run([shims / "sudo", "-E", "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert "TMPDIR=/leak" in kept and f"PATH={shims}:" in kept
    which = subprocess.run([shims / "sudo", "sh", "-c", "command -v kpartx"], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert which == str(shims / "kpartx")


def test_dib_environment_puts_shims_first_only_without_device_mapper(tmp_path):
    base = {"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp/x"}
    with_gap = hostenv.dib_environment(facts(device_mapper=False), tmp_path, base)
    assert with_gap["PATH"].split(":")[0].startswith(str(tmp_path))
    assert "TMPDIR" not in with_gap
    without = hostenv.dib_environment(facts(device_mapper=True), tmp_path, base)
    assert not without["PATH"].startswith(str(tmp_path))


def test_lock_held(tmp_path):
    lock = tmp_path / "build.lock"
    assert not hostenv.lock_held(lock)
    with hostenv.build_lock(lock):
        held = subprocess.run(["python3", "-c", "import fcntl,sys; f=open(sys.argv[1]);"
                               "fcntl.flock(f, fcntl.LOCK_SH|fcntl.LOCK_NB)", str(lock)]).returncode
        assert held != 0
    assert not hostenv.lock_held(lock)


def test_free_bytes_walks_up_to_an_existing_directory(tmp_path):
    assert hostenv.free_bytes(tmp_path / "not" / "yet") > 0
    assert isinstance(Path, type)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_teardown_unmounts_deepest_first_and_detaches_loops(tmp_path):
    marker = f"eulerpub-unittest-{os.getpid()}"  # never the real marker: a live build may be running
    outer = tmp_path / marker / "dib_build.x"
    inner = outer / "mnt" / "proc"
    outer.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(outer)]).returncode != 0:
        pytest.skip("tmpfs cannot be mounted here")
    inner.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(inner)], check=True)
    disk = outer / "image0.raw"
    disk.write_bytes(b"\0" * 1024 * 1024)
    loop = subprocess.run(["losetup", "-f", "--show", str(disk)], capture_output=True, text=True)
    try:
        done = hostenv.teardown_stale(marker)
        if loop.returncode == 0:  # the loop keeps its file's tmpfs busy: detached before that unmount
            assert done == [f"umount {inner}", f"losetup -d {loop.stdout.strip()}", f"umount {outer}"]
            assert not hostenv.stale_loops(marker)
        else:
            assert done == [f"umount {inner}", f"umount {outer}"]
        assert not hostenv.stale_mounts(marker)
    finally:
        for point in (inner, outer):
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
        if loop.returncode == 0:
            subprocess.run(["losetup", "-d", loop.stdout.strip()], capture_output=True)
