"""What this host can do for a diskimage-builder build or a QEMU boot, and the fallbacks for what it can't.

Measured gaps on container and CI hosts (see ../shared/reference/dib-host.md):

- no device-mapper: ``kpartx`` fails, while ``partx -a /dev/loopN`` makes ``/dev/loopNpM`` (devtmpfs);
  DIB hard-codes ``/dev/mapper/loopNpM`` and, when ``/.dockerenv`` exists, calls ``dmsetup``.
  Fallback: a shim directory holding ``kpartx`` (partx + symlinks), ``dmsetup`` (no-op for mknodes/remove)
  and ``sudo`` (a pass-through that resets the environment like sudo does but keeps the shim directory on
  PATH, which real sudo's ``secure_path`` would drop).
- no vfat mounts: FAT is read and written with mtools instead (the base elements never mount FAT).
  diskimage-builder mounts the ESP it made (``block-device-efi``) with a plain ``mount DEV DIR``; on such
  hosts a ``mount``/``umount`` shim pair stages the ESP instead: ``mount`` of a FAT device puts a tmpfs
  (sized like the partition, full POSIX semantics, its mount source the FAT device so ``grub-install``
  finds and probes the real FAT partition) on the mount point, and ``umount`` copies the tree into the
  FAT with ``mcopy`` before unmounting. Everything else passes through to the real tools.
- ``/dev/kvm`` that only runs PVM guests: boots use TCG.
- stale mounts and loop devices of a killed build: torn down by :func:`teardown_stale` before the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eulerpub import paths, proc
from eulerpub.errors import EulerpubError, ToolError

log = logging.getLogger(__name__)

SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's sudo secure_path
DIB_TMP_MARKER = "eulerpub-dibtmp"  # every build's TMP_DIR is named this, so stale mounts are recognisable
LOCK_WAIT_NOTE = "another eulerpub build holds the build lock"

SHIMS_DIR = Path(__file__).parent / "shims"  # the shims as shell scripts (package data, shellchecked by make lint)


def _shim(name: str, **placeholders: str) -> str:
    """The text of shims/<name>.sh with each @PLACEHOLDER@ replaced (paths of the real tools)."""
    text = (SHIMS_DIR / f"{name}.sh").read_text()
    for key, value in placeholders.items():
        text = text.replace(f"@{key}@", value)
    return text


@dataclass(frozen=True)
class HostFacts:
    """What was measured about the host."""

    is_root: bool
    in_container: bool
    device_mapper: bool
    vfat_mount: bool
    loop_control: bool
    mtools: bool
    kvm_device: bool
    kvm_usable: bool
    kvm_reason: str
    tools: dict[str, str | None] = field(default_factory=dict)

    @property
    def accel(self) -> str:
        return "kvm" if self.kvm_usable else "tcg"

    @property
    def needs_dm_shims(self) -> bool:
        return not self.device_mapper

    @property
    def esp_method(self) -> str:
        """How a build writes an ESP here: `mount` (the kernel's vfat, DIB's own path), `mtools` (a staged
        tmpfs copied into the FAT by the umount shim), or `none` (neither is possible)."""
        if self.vfat_mount:
            return "mount"
        return "mtools" if self.mtools else "none"

    @property
    def needs_shims(self) -> bool:
        return self.needs_dm_shims or self.esp_method == "mtools"


HOST_TOOLS = {
    # tool: (Debian package, why it is needed)
    "qemu-img": ("qemu-utils", "convert images"),
    "disk-image-create": ("pip: diskimage-builder", "build images"),
    "sfdisk": ("fdisk", "partition disks"),
    "partx": ("util-linux", "map partitions without device-mapper"),
    "losetup": ("mount", "attach disk images"),
    "mkfs.ext4": ("e2fsprogs", "make root filesystems"),
    "mcopy": ("mtools", "read and write FAT without mounting it"),
    "mkfs.vfat": ("dosfstools", "make FAT filesystems"),
    "debootstrap": ("debootstrap", "build the Debian stand-in base (tests)"),
    "qemu-system-x86_64": ("qemu-system-x86", "boot tests"),
    "cloud-localds": ("cloud-image-utils", "NoCloud seeds for boot tests"),
    "ssh": ("openssh-client", "boot tests"),
    "xz": ("xz-utils", "decompress base images"),
    "shellcheck": ("shellcheck", "lint elements"),
}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def device_mapper_available() -> bool:
    """The kernel has device-mapper and its control node exists (kpartx needs both)."""
    return "device-mapper" in _read("/proc/misc") and Path("/dev/mapper/control").exists()


def vfat_mountable() -> bool:
    """The kernel lists vfat among its filesystems (modules cannot be loaded from a container)."""
    return any(line.split()[-1] == "vfat" for line in _read("/proc/filesystems").splitlines() if line.strip())


def kvm_status() -> tuple[bool, bool, str]:
    """(device present, usable for ordinary guests, reason).

    A PVM-backed /dev/kvm (no VMX/SVM in the CPU flags) accepts QEMU but hangs stock kernels, so
    hardware virtualisation flags are required. EULERPUB_ACCEL=tcg|kvm overrides the decision.
    """
    present = Path("/dev/kvm").exists()
    forced = os.environ.get("EULERPUB_ACCEL", "").lower()
    if forced in ("tcg", "kvm"):
        return present, forced == "kvm", f"EULERPUB_ACCEL={forced}"
    if not present:
        return False, False, "/dev/kvm is missing"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return True, False, "/dev/kvm is not readable and writable by this user"
    flags: set[str] = set()
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    if not flags & {"vmx", "svm"}:
        return True, False, "/dev/kvm exists but the CPU shows no VMX/SVM (a PVM host): ordinary guests hang"
    return True, True, "KVM with hardware virtualisation"


def detect() -> HostFacts:
    """Measure the host (cheap: reads /proc and looks up tools, runs nothing)."""
    present, usable, reason = kvm_status()
    return HostFacts(
        is_root=os.geteuid() == 0,
        in_container=Path("/.dockerenv").exists() or Path("/run/.containerenv").exists(),
        device_mapper=device_mapper_available(),
        vfat_mount=vfat_mountable(),
        loop_control=Path("/dev/loop-control").exists(),
        mtools=shutil.which("mcopy") is not None,
        kvm_device=present,
        kvm_usable=usable,
        kvm_reason=reason,
        tools={tool: _which(tool) for tool in HOST_TOOLS},
    )


def _which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found is None and tool in ("disk-image-create",):
        sibling = Path(os.sys.executable).parent / tool  # the venv's bin when not activated
        if sibling.exists():
            return str(sibling)
    return found


def install_shims(directory: Path, *, device_mapper: bool = True, esp: bool = False) -> Path:
    """Write the shims this host needs into a directory named by their content; return it.

    device_mapper: the kpartx/dmsetup shims (no device-mapper); esp: the mount/umount pair that stages a
    FAT ESP on a tmpfs and writes it with mtools (no vfat mounts). The sudo shim is always there: it keeps
    the directory first on PATH for what DIB runs through sudo.
    """
    real_sudo = shutil.which("sudo", path=SECURE_PATH) or "/usr/bin/sudo"
    scripts = {"sudo": _shim("sudo", REAL_SUDO=real_sudo, SECURE_PATH=SECURE_PATH)}
    if device_mapper:
        scripts.update(kpartx=_shim("kpartx"), dmsetup=_shim("dmsetup"))
    if esp:
        scripts["mount"] = _shim("mount", REAL_MOUNT=shutil.which("mount", path=SECURE_PATH) or "/usr/bin/mount")
        scripts["umount"] = _shim("umount", REAL_UMOUNT=shutil.which("umount", path=SECURE_PATH)
                                  or "/usr/bin/umount")
    digest = hashlib.sha256(json.dumps(scripts, sort_keys=True).encode()).hexdigest()[:12]
    target = directory / f"shims-{digest}"
    if not (target / "sudo").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name, text in scripts.items():
            tmp = target / f".{name}.tmp"
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(target / name)
    return target


def dib_environment(facts: HostFacts, shim_root: Path, base_env: dict[str, str]) -> dict[str, str]:
    """The environment for disk-image-create on this host: shims first on PATH when device-mapper is missing."""
    env = dict(base_env)
    env.pop("TMPDIR", None)  # leaks into the chroot and breaks package scripts; DIB uses TMP_DIR
    venv_bin = str(Path(os.sys.executable).parent)
    path = env.get("PATH", SECURE_PATH)
    if venv_bin not in path.split(os.pathsep):
        path = f"{venv_bin}{os.pathsep}{path}"
    if facts.needs_shims:
        esp = facts.esp_method == "mtools"
        shims = install_shims(shim_root, device_mapper=facts.needs_dm_shims, esp=esp)
        what = [*(["kpartx/dmsetup (no device-mapper)"] if facts.needs_dm_shims else []),
                *(["mount/umount (no vfat: the ESP is staged and written with mtools)"] if esp else [])]
        log.info("host fallbacks: %s; shims in %s", ", ".join(what), shims)
        path = f"{shims}{os.pathsep}{path}"
    env["PATH"] = path
    return env


# --- stale build teardown -------------------------------------------------------------------------

def global_lock_path() -> Path:
    """One lock per machine, whatever each build's cache directory: builds share the loop devices, the
    kernel's mount table (which the stale-state teardown walks) and DIB's apt cache lock."""
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK):
        return run_lock / "eulerpub-dib-build.lock"
    return Path(tempfile.gettempdir()) / f"eulerpub-dib-build-{os.getuid()}.lock"


@contextlib.contextmanager
def build_lock(lock_path: Path | None = None) -> Iterator[None]:
    """Hold the one-DIB-build-at-a-time lock (two builds collide on DIB's shared apt cache lock, and the
    stale-state teardown must never see a live build's mounts)."""
    lock_path = lock_path or global_lock_path()
    fd = paths.open_lock_file(lock_path)  # no symlink followed, nothing truncated before the lock is ours
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s; waiting for it (%s)", LOCK_WAIT_NOTE, lock_path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        info = os.fstat(fd)
        if info.st_uid == os.geteuid() and info.st_nlink == 1:  # our own file, not a hard link to another
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_held(lock_path: Path | None = None) -> bool:
    """Whether another process holds the build lock right now."""
    lock_path = lock_path or global_lock_path()
    if not lock_path.exists():
        return False
    fd = paths.open_lock_file(lock_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return False


def _unescape_mount_path(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def stale_mounts(marker: str = DIB_TMP_MARKER) -> list[str]:
    """Mount points left by eulerpub's DIB builds, deepest first."""
    points = []
    for line in _read("/proc/self/mountinfo").splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = _unescape_mount_path(fields[4])
            if f"/{marker}" in point:
                points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def stale_loops(marker: str = DIB_TMP_MARKER) -> list[str]:
    """Loop devices whose backing file lies in an eulerpub DIB work directory."""
    try:
        out = proc.run(["losetup", "-J", "-l"], check=False).stdout.decode(errors="replace")
        devices = json.loads(out or "{}").get("loopdevices", [])
    except (ToolError, ValueError):  # no losetup: no loop devices to find
        return []
    return [d["name"] for d in devices if f"/{marker}" in (d.get("back-file") or "")]


def teardown_stale(marker: str = DIB_TMP_MARKER) -> list[str]:
    """Unmount and detach what a killed build left behind. Call only while holding the build lock.

    Order matters: partition mounts first (deepest first), then the loop devices (their backing files
    live on DIB's image tmpfs, which stays busy while they are attached), then what is left.
    Returns what was torn down (for the log); raises if a mount refuses to go even lazily.
    """
    done: list[str] = []
    loops = stale_loops(marker)  # read before unmounting: a lazily unmounted file loses its path
    busy: list[str] = []
    for point in stale_mounts(marker):
        if proc.run(["umount", point], check=False).returncode == 0:
            done.append(f"umount {point}")
        else:
            busy.append(point)
    for dev in loops:
        base = Path(dev).name
        for link in Path("/dev/mapper").glob(f"{base}p*"):
            with contextlib.suppress(OSError):
                link.unlink()
        proc.run(["partx", "-d", dev], check=False)
        proc.run(["losetup", "-d", dev], check=False)
        done.append(f"losetup -d {dev}")
    for point in busy:
        result = proc.run(["umount", point], check=False)
        if result.returncode != 0:
            result = proc.run(["umount", "-l", point], check=False)
        if result.returncode != 0:
            raise EulerpubError(f"cannot unmount {point} left by an earlier build: "
                                f"{result.stderr.decode(errors='replace').strip()}")
        done.append(f"umount {point}")
    for line in done:
        log.warning("cleaned up after an earlier build: %s", line)
    return done


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem holding path (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free
