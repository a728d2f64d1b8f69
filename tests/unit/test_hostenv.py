"""hostenv: detection, the device-mapper shims, stale-state discovery."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from eulerpub import hostenv
from eulerpub.errors import EulerpubError


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


@pytest.mark.needs_root("the sudo shim runs commands directly only as root")
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
    without = hostenv.dib_environment(facts(device_mapper=True, vfat_mount=True), tmp_path, base)
    assert not without["PATH"].startswith(str(tmp_path))
    no_vfat = hostenv.dib_environment(facts(device_mapper=True, vfat_mount=False), tmp_path, base)
    shims = Path(no_vfat["PATH"].split(":")[0])
    assert {p.name for p in shims.iterdir()} == {"sudo", "mount", "umount"}


def test_lock_held(tmp_path):
    lock = tmp_path / "build.lock"
    assert not hostenv.lock_held(lock)
    with hostenv.build_lock(lock):
        held = subprocess.run(["python3", "-c", "import fcntl,sys; f=open(sys.argv[1]);"
                               "fcntl.flock(f, fcntl.LOCK_SH|fcntl.LOCK_NB)", str(lock)]).returncode
        assert held != 0
    assert not hostenv.lock_held(lock)


def test_a_symlink_planted_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path):
    """Issue 9: the lock sits in a world-writable directory; root must not follow a planted link and truncate
    (or write a pid into) what it points at."""
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
    lock = tmp_path / "eulerpub-dib-build.lock"
    lock.symlink_to(victim)
    with pytest.raises(EulerpubError, match="is a symbolic link; not following it"), hostenv.build_lock(lock):
        pytest.fail("the build ran under a lock taken through a symlink")
    assert victim.read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    with pytest.raises(EulerpubError, match="symbolic link"):
        hostenv.lock_held(lock)


def test_a_hard_link_or_a_fifo_at_the_lock_path_is_never_written_or_blocked_on(tmp_path):
    victim = tmp_path / "shadow"
    victim.write_text("secret\n")
    linked = tmp_path / "linked.lock"
    os.link(victim, linked)
    with hostenv.build_lock(linked):
        pass
    assert victim.read_text() == "secret\n", "a lock file with a second name is locked, never rewritten"
    fifo = tmp_path / "fifo.lock"
    os.mkfifo(fifo)
    with pytest.raises(EulerpubError, match="not a regular file"):
        hostenv.lock_held(fifo)  # an open() without O_NONBLOCK would hang here


def test_an_existing_lock_file_is_locked_without_being_truncated_first(tmp_path):
    lock = tmp_path / "build.lock"
    lock.write_text("4242")
    with hostenv.build_lock(lock):
        assert lock.read_text() == str(os.getpid())


def test_free_bytes_walks_up_to_the_nearest_existing_directory(tmp_path, monkeypatch):
    asked = []
    real = shutil.disk_usage
    monkeypatch.setattr(hostenv.shutil, "disk_usage", lambda path: asked.append(Path(path)) or real(path))
    free = hostenv.free_bytes(tmp_path / "not" / "yet")
    assert asked == [tmp_path]  # not "/" (another filesystem, maybe), not the missing path (an error)
    assert abs(free - real(tmp_path).free) < 256 * 1024**2  # the same filesystem, give or take other writers


@pytest.mark.needs_root("mounting needs root")
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


@pytest.mark.needs_root("loop devices and mounts need root")
def test_esp_shims_stage_the_esp_on_a_tmpfs_and_write_it_into_the_fat_with_mtools(tmp_path):
    """What DIB does with an ESP, on a host without vfat: mkfs.vfat, `mount DEV DIR`, write, `umount DIR`."""
    shims = hostenv.install_shims(tmp_path / "shims", device_mapper=False, esp=True)
    disk = tmp_path / "disk.raw"
    with open(disk, "wb") as handle:
        handle.truncate(48 << 20)
    subprocess.run(["sgdisk", "-n1:0:+32M", "-t1:EF00", "-n2:0:0", "-t2:8300", str(disk)], check=True,
                   capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(disk)], capture_output=True, text=True,
                          check=True).stdout.strip()
    esp, mnt, other = f"{loop}p1", tmp_path / "esp", tmp_path / "other"
    mnt.mkdir()
    other.mkdir()
    try:
        subprocess.run(["partx", "-a", loop], check=True, capture_output=True)
        for _ in range(50):
            if os.path.exists(esp):
                break
            time.sleep(0.1)
        subprocess.run(["mkfs.vfat", "-n", "ESP", esp], check=True, capture_output=True)
        subprocess.run([shims / "mount", esp, mnt], check=True)
        source, fstype = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--mountpoint", str(mnt)],
                                        capture_output=True, text=True, check=True).stdout.split()
        assert (source, fstype) == (esp, "tmpfs")  # grub-install finds the FAT partition from mountinfo
        (mnt / "EFI" / "BOOT").mkdir(parents=True)
        payload = os.urandom(70_000)
        (mnt / "EFI" / "BOOT" / "BOOTX64.EFI").write_bytes(payload)
        os.chown(mnt / "EFI", 0, 0)  # full POSIX semantics while staged (cp -a, package managers)
        subprocess.run([shims / "umount", mnt], check=True)
        assert not os.path.ismount(mnt)
        back = subprocess.run(["mtype", "-i", esp, "::/EFI/BOOT/BOOTX64.EFI"], capture_output=True, check=True,
                              env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
        assert back == payload
        assert subprocess.run(["fsck.vfat", "-n", esp], capture_output=True).returncode == 0
        # Anything that is not a FAT device goes to the real mount.
        subprocess.run([shims / "mount", "-t", "tmpfs", "none", other], check=True)
        assert subprocess.run(["findmnt", "-n", "-o", "SOURCE", "--mountpoint", str(other)], capture_output=True,
                              text=True).stdout.strip() == "none"
        subprocess.run([shims / "umount", other], check=True)
    finally:
        for point in (mnt, other):
            if os.path.ismount(point):
                subprocess.run(["umount", "-l", point], capture_output=True)
        subprocess.run(["partx", "-d", loop], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)
