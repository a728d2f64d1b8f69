"""Boot test: start the image under QEMU with a NoCloud seed, log in over SSH, check what it promises.

Checks (each reported pass/fail):
- ``booted``: SSH answers with the seeded key for the image's default user;
- ``cloud-init``: ``cloud-init status --wait`` reports done without errors;
- ``growroot``: the root filesystem grew to fill a disk made larger than the image;
- ``mpi``: an MPI hello world compiled in the guest runs on 2 ranks, with Open MPI and with MPICH;
- ``desktop``: the graphical target reached, gdm running, xrdp and VNC listening, and real RDP (FreeRDP) and VNC
  (vncdotool) logins whose captured frames show GNOME (eulerpub/desktopcheck.py);
- ``hpcnow``: HPC-NOW's own cluster bootstrap, replayed from the seed, works (eulerpub/hpcnowcheck.py).

The seed's user-data is multipart MIME: one cloud-config (the key, and what the checks add: users, runcmd) and
optional shell-script parts. An ``hpcnow`` boot logs in as a dedicated check user (``eulercheck``, the same key):
HPC-NOW's user_data deletes the image's default user.

Firmware modes: the image is booted once per mode its layout is built for (the record's `boot` section, or
for an image file its partition table): x86_64 under SeaBIOS (`bios`) and under OVMF (`uefi`, Debian's
`ovmf`), aarch64 under UEFI on QEMU's `virt` board. The first mode runs every check; the others run the
basic ones (booted, cloud-init, growroot), since what firmware changes is whether and how the disk boots.
A mode whose firmware is not installed is reported "not tried", never as passed. The result, pass or fail,
is kept beside a build record (`boottest.json`): publish registers only the modes that passed.

KVM is used only when it can run ordinary guests (see hostenv.kvm_status); otherwise TCG, which takes
1.5-2.5 minutes to boot on 2 cores, hence the 300 s budget.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import yaml

from eulerpub import bootmodes, hostenv, imagefile, proc
from eulerpub.errors import EulerpubError, ToolError, UsageError
from eulerpub.jsonfile import write_json_atomic
from eulerpub.manifest import Artifact, BuildRecord

log = logging.getLogger(__name__)

BOOT_BUDGET_S = 300  # TCG boots took 72-133 s here to cloud-init final; 300 s leaves room for a busy host
VM_STOP_GRACE_S = 20  # seconds QEMU gets after SIGTERM before SIGKILL
CHECK_TIMEOUT_S = 240  # one check's commands (an MPI compile under TCG is the slowest)
GROW_BYTES = 2 * 1024**3  # the test disk is this much larger than the image, so growpart has work to do
GUEST_MEMORY_MB = 2048
GUEST_CPUS = 2  # the MPI check runs 2 ranks
SSH_POLL_S = 5
# sshd restarts once during first boot (cloud-init regenerates host keys), which resets connections made in that
# window; ssh reports any transport failure as exit 255, so such calls are retried a few times before counting.
SSH_TRANSPORT_FAILURE = 255
SSH_RETRIES = 6
SSH_RETRY_PAUSE_S = 5
BOOT_FORMATS = ("qcow2", "raw")  # what a build record's image is booted from, in order of preference
RESULT_NAME = "boottest.json"  # beside a build record: its boot test per mode (the release gate and publish read it)
FRAMES_DIR = "boottest"  # beside a build record: the desktop check's frames (desktop-rdp.png, desktop-vnc.png)
BASE_CHECKS = ("booted", "cloud-init", "growroot")
KNOWN_CHECKS = (*BASE_CHECKS, "mpi", "desktop", "hpcnow")
CHECK_USER = "eulercheck"  # the login of an hpcnow boot: HPC-NOW's user_data deletes the default user
DESKTOP_MEMORY_MB = 4096  # gdm's greeter and two GNOME sessions (RDP, VNC) rendered by llvmpipe

MPI_HELLO = r"""
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
    int rank, size;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    printf("hello from rank %d of %d\n", rank, size);
    MPI_Finalize();
    return 0;
}
"""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    firmware: str = ""  # the mode of the boot this check ran in


@dataclass
class ModeBoot:
    """One boot of the image in one firmware mode."""

    firmware: str
    passed: bool
    boot_seconds: float | None = None
    total_seconds: float = 0.0
    console_log: str | None = None


@dataclass
class BootReport:
    image: str
    accel: str
    accel_reason: str
    checks: list[CheckResult] = field(default_factory=list)  # every boot's, each tagged with its firmware
    boot_seconds: float | None = None  # the first boot's
    total_seconds: float = 0.0
    console_log: str | None = None  # the first failed boot's (or, with a work directory, the first boot's)
    boots: list[ModeBoot] = field(default_factory=list)
    not_tried: dict[str, str] = field(default_factory=dict)  # mode -> why it was not booted

    @property
    def passed(self) -> bool:
        return bool(self.boots) and all(b.passed for b in self.boots)

    @property
    def modes(self) -> dict[str, str]:
        """Each firmware mode: passed, failed or not tried."""
        result = {b.firmware: "passed" if b.passed else "failed" for b in self.boots}
        result.update({m: "not tried" for m in self.not_tried})
        return result

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["passed"] = self.passed
        data["modes"] = self.modes
        return data


def select_checks(requested: Sequence[str]) -> list[str]:
    """The basic checks plus the profile's, in a stable order; unknown names are a usage error."""
    unknown = [c for c in requested if c not in KNOWN_CHECKS]
    if unknown:
        raise UsageError(f"unknown boot check {unknown[0]!r}; known checks: {', '.join(KNOWN_CHECKS)}")
    wanted = set(BASE_CHECKS) | set(requested)
    return [c for c in KNOWN_CHECKS if c in wanted]


# A hook run after the first boot's checks: (the guest, a function that runs one check again by name).
AfterChecks = Callable[["Guest", Callable[[str], CheckResult]], None]


@dataclass(frozen=True)
class Machine:
    """How QEMU emulates one architecture: the binary, the board and the firmware it needs."""

    qemu: str
    board: tuple[str, ...] = ()
    firmware: Path | None = None  # UEFI code for boards without a BIOS; its package is named in `firmware_pkg`
    firmware_pkg: str = ""


# (arch, firmware mode) -> machine. x86_64 without firmware is QEMU's SeaBIOS; Debian's `ovmf` is EDK2 for x86_64.
# openEuler's aarch64 images boot UEFI only; Debian and Ubuntu ship the EDK2 build in qemu-efi-aarch64.
MACHINES: dict[tuple[str, str], Machine] = {
    ("x86_64", "bios"): Machine("qemu-system-x86_64"),
    ("x86_64", "uefi"): Machine("qemu-system-x86_64", (), Path("/usr/share/ovmf/OVMF.fd"), "ovmf"),
    ("aarch64", "uefi"): Machine("qemu-system-aarch64", ("-machine", "virt"),
                                 Path("/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"), "qemu-efi-aarch64"),
}
DEFAULT_FIRMWARE = {"x86_64": "bios", "aarch64": "uefi"}


def machine_for(arch: str, firmware: str | None = None) -> Machine:
    if arch not in DEFAULT_FIRMWARE:
        raise UsageError(f"boot tests run x86_64 and aarch64 images, not {arch}")
    try:
        return MACHINES[(arch, firmware or DEFAULT_FIRMWARE[arch])]
    except KeyError:
        raise UsageError(f"{arch} images cannot be boot-tested under {firmware}") from None


def qemu_argv(*, overlay: Path, seed: Path, port: int, console: Path, accel: str, arch: str = "x86_64",
              firmware: str | None = None, memory_mb: int = GUEST_MEMORY_MB, cpus: int = GUEST_CPUS,
              forwards: dict[int, int] | None = None) -> list[str]:
    """The QEMU command; `forwards` maps more guest TCP ports to host ports on 127.0.0.1 (SSH is `port`)."""
    machine = machine_for(arch, firmware)
    # Under TCG, aarch64's architected pointer authentication is costly to emulate; QEMU's own is much faster.
    tcg_cpu = "max,pauth-impdef=on" if arch == "aarch64" else "max"
    cpu = ["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else ["-accel", "tcg", "-cpu", tcg_cpu]
    firmware = ["-bios", str(machine.firmware)] if machine.firmware else []
    return [
        machine.qemu, *machine.board, *firmware, *cpu, "-m", str(memory_mb), "-smp", str(cpus),
        "-drive", f"file={overlay},if=virtio,format=qcow2",
        "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
        "-nic", "user,model=virtio-net-pci," + ",".join(
            f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in {22: port, **(forwards or {})}.items()),
        "-display", "none", "-serial", f"file:{console}", "-monitor", "none", "-no-reboot",
    ]


def user_data(public_key: str, *, users: Sequence[dict[str, object]] = (), runcmd: Sequence[object] = (),
              scripts: Sequence[str] = (), check_user: bool = False,
              write_files: Sequence[dict[str, object]] = ()) -> str:
    """The seed's user-data: multipart MIME with one cloud-config and a text/x-shellscript part per script.

    The default user gets `public_key`; `users` and `runcmd` are what checks add; with `check_user`, CHECK_USER
    is created too (the same key, passwordless sudo) for boots whose scripts delete the default user.
    """
    key = public_key.strip()
    extra = list(users)
    if check_user:
        extra.insert(0, {"name": CHECK_USER, "shell": "/bin/bash", "sudo": "ALL=(ALL) NOPASSWD:ALL",
                         "ssh_authorized_keys": [key]})
    config: dict[str, object] = {"ssh_authorized_keys": [key]}
    if extra:
        config["users"] = ["default", *extra]
    if check_user:
        # The scripts delete the default user; cloud-init's final stage would then fail printing its key
        # fingerprints (ssh-authkey-fingerprints: getpwnam() finds no such user) and report status error.
        config["no_ssh_fingerprints"] = True
    if write_files:
        config["write_files"] = list(write_files)
    config["runcmd"] = [["sh", "-c", "echo EULERPUB-BOOTCHECK-RUNCMD > /dev/console"], *runcmd]
    message = MIMEMultipart()
    message.attach(MIMEText("#cloud-config\n" + yaml.safe_dump(config, sort_keys=False), "cloud-config"))
    for index, script in enumerate(scripts):
        part = MIMEText(script, "x-shellscript")
        part.add_header("Content-Disposition", "attachment", filename=f"eulerpub-check-{index}.sh")
        message.attach(part)
    return message.as_string()


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Guest:
    """A running test VM reachable over SSH."""

    def __init__(self, port: int, key: Path, user: str) -> None:
        self.port = port
        self.key = key
        self.user = user

    def ssh_argv(self, command: str) -> list[str]:
        return ["ssh", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10", f"{self.user}@127.0.0.1", command]

    def run(self, command: str, *, timeout: float = CHECK_TIMEOUT_S, stdin: bytes | None = None,
            retries: int = SSH_RETRIES) -> subprocess.CompletedProcess[str]:
        """Run `command` in the guest; SSH transport failures (not the command's own) are retried."""
        log.debug("guest$ %s", command)
        for attempt in range(retries + 1):
            try:
                done = proc.run(self.ssh_argv(command), input=stdin, timeout=timeout, check=False)
            except ToolError as exc:
                if exc.timeout is None:
                    raise
                return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout:.0f} s")
            result = subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                                 done.stderr.decode(errors="replace"))
            if result.returncode != SSH_TRANSPORT_FAILURE or attempt == retries:
                return result
            log.debug("ssh transport failure (%s), retrying", result.stderr.strip()[-120:])
            time.sleep(SSH_RETRY_PAUSE_S)
        raise AssertionError("unreachable")


def boot_test(image: Path, *, checks: Sequence[str] = (), arch: str = "x86_64", user: str = "openeuler",
              budget_s: float = BOOT_BUDGET_S, workdir: Path | None = None, modes: Sequence[str] | None = None,
              on_step: Callable[[str], None] | None = None, frames_dir: Path | None = None,
              after: AfterChecks | None = None) -> BootReport:
    """Boot `image` (any qemu-img format, of `arch`) once per firmware mode and run the checks.

    `modes`: the modes the image is built for (a record's `boot.modes`); None reads its partition table.
    `frames_dir`: where the desktop check keeps its frames (default: the work directory, removed).
    `after`: called in the first boot once its checks ran, with the guest and a function that runs a check
    again (what the e2e uses to break the guest and see a check fail); its results are not reported.
    """
    if not image.is_file():
        raise UsageError(f"no image at {image}")
    inspected = imagefile.inspect_file(image)  # no backing file, no data file: the guest sees only `image`
    machine_for(arch)
    for tool in ("qemu-img", "cloud-localds", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise EulerpubError(f"{tool} is not installed; run `eulerpub doctor` to see what the host is missing")
    wanted = select_checks(checks)
    if modes is None:
        modes = sorted(bootmodes.partition_table_of(inspected).modes)
    _present, kvm_ok, reason = hostenv.kvm_status()
    accel = "kvm" if kvm_ok else "tcg"
    report = BootReport(image=str(image), accel=accel, accel_reason=reason)
    to_boot: list[tuple[str, Machine]] = []
    for mode in [m for m in bootmodes.MODES if m in modes]:
        machine = MACHINES.get((arch, mode))
        if machine is None:
            report.not_tried[mode] = f"QEMU cannot boot {arch} under {mode} here"
        elif shutil.which(machine.qemu) is None:
            report.not_tried[mode] = f"{machine.qemu} is not installed"
        elif machine.firmware and not machine.firmware.is_file():
            report.not_tried[mode] = f"no firmware at {machine.firmware} (install {machine.firmware_pkg})"
        else:
            to_boot.append((mode, machine))
    if not to_boot:
        why = "; ".join(f"{m}: {r}" for m, r in report.not_tried.items()) or "its partition table allows none"
        raise EulerpubError(f"{image.name} cannot be booted in any firmware mode ({why})")
    step = on_step or (lambda text: log.info("%s", text))
    started = time.monotonic()
    for index, (mode, _machine) in enumerate(to_boot):
        mode_checks = wanted if index == 0 else [c for c in wanted if c in BASE_CHECKS]
        with _workdir(workdir / mode if workdir else None) as work:
            boot = _boot_once(image, inspected, work, arch=arch, firmware=mode, checks=mode_checks, user=user,
                              budget_s=budget_s, step=step, keep_console=workdir is not None, report=report,
                              frames_dir=frames_dir if index == 0 else None, after=after if index == 0 else None)
        report.boots.append(boot)
        if report.boot_seconds is None:
            report.boot_seconds = boot.boot_seconds
        if report.console_log is None and boot.console_log and (workdir is not None or not boot.passed):
            report.console_log = boot.console_log
    report.total_seconds = round(time.monotonic() - started, 1)
    for mode, why in report.not_tried.items():
        log.warning("boot test: %s not tried (%s)", mode, why)
    return report


def _boot_once(image: Path, inspected: imagefile.ImageFile, work: Path, *, arch: str, firmware: str,
               checks: Sequence[str], user: str, budget_s: float, step: Callable[[str], None],
               keep_console: bool, report: BootReport, frames_dir: Path | None = None,
               after: AfterChecks | None = None) -> ModeBoot:
    """One boot in one firmware mode; its checks are appended to the report, tagged with the mode."""
    started = time.monotonic()
    size = inspected.virtual_size
    overlay = work / "overlay.qcow2"
    proc.run(["qemu-img", "create", "-f", "qcow2", "-b", imagefile.qemu_path(image.resolve()),
              "-F", inspected.qemu_format, str(overlay), str(size + GROW_BYTES)])
    key = work / "id_ed25519"
    proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    extras = _CheckSeeds.prepare(checks)
    (work / "user-data").write_text(user_data((work / "id_ed25519.pub").read_text(), users=extras.users,
                                              runcmd=extras.runcmd, scripts=extras.scripts,
                                              write_files=extras.write_files,
                                              check_user=extras.root_password is not None))
    (work / "user-data").chmod(0o600)
    (work / "meta-data").write_text("instance-id: eulerpub-bootcheck\nlocal-hostname: eulerpub-test\n")
    seed = work / "seed.iso"
    proc.run(["cloud-localds", str(seed), str(work / "user-data"), str(work / "meta-data")])
    console = work / "console.log"
    port = free_port()
    argv = qemu_argv(overlay=overlay, seed=seed, port=port, console=console, accel=report.accel, arch=arch,
                     firmware=firmware, forwards=extras.forwards,
                     memory_mb=DESKTOP_MEMORY_MB if extras.desktop else GUEST_MEMORY_MB)
    step(f"booting under QEMU, {firmware} ({report.accel}: {report.accel_reason})")
    results: list[CheckResult] = []
    vm = proc.start(argv, stderr=subprocess.STDOUT)  # its own process group, stopped below whatever happens
    boot = ModeBoot(firmware=firmware, passed=False)
    try:
        guest = Guest(port, key, CHECK_USER if extras.root_password is not None else user)
        booted, detail = _wait_for_ssh(vm, guest, started + budget_s, budget_s)
        boot.boot_seconds = round(time.monotonic() - started, 1) if booted else None
        results.append(CheckResult("booted", booted, f"{detail} (as {guest.user})", firmware))

        def run_check(name: str) -> CheckResult:
            result = extras.run(name, guest, size, frames_dir or work / "frames")
            return CheckResult(result.name, result.passed, result.detail, firmware)

        if booted:
            for name in checks:
                if name == "booted":
                    continue
                step(f"checking {name} ({firmware})")
                results.append(run_check(name))
            if after is not None:
                after(guest, run_check)
        else:
            results.extend(CheckResult(n, False, "not run: the guest did not boot", firmware)
                           for n in checks if n != "booted")
    finally:
        proc.stop(vm, VM_STOP_GRACE_S)
        boot.total_seconds = round(time.monotonic() - started, 1)
        boot.passed = bool(results) and all(r.passed for r in results)
        report.checks.extend(results)
        if keep_console or not boot.passed:
            boot.console_log = str(_keep_console(console, image, firmware))
    return boot


@dataclass
class _CheckSeeds:
    """What the wanted checks add to a boot: seed users, runcmd and scripts, port forwards, per-boot secrets."""

    users: list[dict[str, object]] = field(default_factory=list)
    runcmd: list[object] = field(default_factory=list)
    write_files: list[dict[str, object]] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    forwards: dict[int, int] = field(default_factory=dict)  # guest port -> host port
    desktop: object | None = None  # a desktopcheck.DesktopSeed
    root_password: str | None = None  # hpcnow: the root password HPC-NOW's user_data sets (never reported)

    @classmethod
    def prepare(cls, checks: Sequence[str]) -> _CheckSeeds:
        seeds = cls()
        if "desktop" in checks:
            from eulerpub import desktopcheck

            desktop = desktopcheck.DesktopSeed.generate()
            config = desktop.cloud_config(desktopcheck.password_hash(desktop.rdp_password))
            seeds.users += config["users"]  # type: ignore[arg-type]
            seeds.runcmd += config["runcmd"]  # type: ignore[arg-type]
            seeds.write_files += config["write_files"]  # type: ignore[arg-type]
            seeds.forwards = {guest: free_port() for guest in desktopcheck.GUEST_PORTS}
            seeds.desktop = desktop
        if "hpcnow" in checks:
            from eulerpub import hpcnowcheck

            seeds.root_password = secrets.token_urlsafe(18)
            seeds.scripts.append(hpcnowcheck.user_data_script(seeds.root_password))
        return seeds

    def run(self, name: str, guest: Guest, size: int, frames_dir: Path) -> CheckResult:
        if name == "desktop":
            from eulerpub import desktopcheck

            return desktopcheck.check(guest, self.desktop, self.forwards, frames_dir)  # type: ignore[arg-type]
        if name == "hpcnow":
            from eulerpub import hpcnowcheck

            return hpcnowcheck.check(guest, self.root_password or "")
        return _CHECKS[name](guest, size)


def bootable_artifact(record: BuildRecord) -> Artifact:
    """The artifact of a build that the boot test boots."""
    by_format = {a.format: a for a in record.artifacts}
    for fmt in BOOT_FORMATS:
        if fmt in by_format:
            return by_format[fmt]
    raise UsageError(f"build {record.build_id} has no {' or '.join(BOOT_FORMATS)} artifact to boot")


def remember(record_path: Path, record: BuildRecord, report: BootReport) -> Path:
    """Keep the result beside the record, pass or fail: the release gate skips a passed build, and publish
    registers only the modes that passed."""
    path = record_path.parent / RESULT_NAME
    write_json_atomic(path, {**report.as_dict(), "build_id": record.build_id, "passed": report.passed})
    return path


def keep_frames(source: Path, target: Path) -> list[Path]:
    """Copy the desktop check's frames from `source` into `target` (a record's boottest/)."""
    kept = []
    for frame in sorted(source.glob("desktop-*.png")):
        target.mkdir(parents=True, exist_ok=True)
        kept.append(Path(shutil.copy2(frame, target / frame.name)))
    return kept


remember_pass = remember  # the release gate's name for it (it calls it after a pass)


def proven_modes(record_path: Path, record: BuildRecord) -> bootmodes.BootEvidence | None:
    """What the boot test kept beside this build's record proves, or None if it was never boot-tested."""
    path = record_path.parent / RESULT_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("build_id") != record.build_id:
        return None
    modes = data.get("modes")
    if not isinstance(modes, dict):  # a note from before per-mode results: its one boot was the default mode
        modes = {DEFAULT_FIRMWARE.get(record.arch, "bios"): "passed" if data.get("passed") else "failed"}
    passed = frozenset(m for m, state in modes.items() if state == "passed" and m in bootmodes.MODES)
    failed = sorted(m for m, state in modes.items() if state == "failed")
    not_tried = frozenset(m for m, state in modes.items() if state == "not tried" and m in bootmodes.MODES)
    detail = ", ".join([*(f"{m} failed" for m in failed), *(f"{m} not tried" for m in sorted(not_tried))])
    return bootmodes.BootEvidence("boot test", passed, detail or f"passed in {', '.join(sorted(passed))}",  # type: ignore[arg-type]
                                  not_tried)  # type: ignore[arg-type]


def passed_before(record_path: Path, build_id: str) -> Path | None:
    """The note of an earlier pass of exactly this build, if there is one."""
    path = record_path.parent / RESULT_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("build_id") == build_id and data.get("passed") is True
    return path if ok else None


@contextlib.contextmanager
def _workdir(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="eulerpub-bootcheck.", dir=os.environ.get("TMP_DIR")) as tmp:
        yield Path(tmp)


def _keep_console(console: Path, image: Path, firmware: str) -> Path:
    """Keep the serial console log beside the image (the work directory is removed)."""
    target = image.with_name(f"{image.name}.{firmware}.console.log")
    try:
        shutil.copyfile(console, target)
    except OSError:
        return console
    return target


def _wait_for_ssh(vm: subprocess.Popen[bytes], guest: Guest, deadline: float, budget_s: float) -> tuple[bool, str]:
    """Poll SSH until `deadline`; `budget_s` is what the message names (the boot's budget, `--timeout`)."""
    last = ""
    while time.monotonic() < deadline:
        if vm.poll() is not None:
            output = (vm.stdout.read() if vm.stdout else b"").decode(errors="replace").strip()
            ended = ToolError(list(vm.args), vm.returncode).ended
            return False, f"{vm.args[0]} ended before SSH answered ({ended}): {output[-300:]}"
        result = guest.run("true", timeout=30, retries=0)  # this loop is the retry
        if result.returncode == 0:
            return True, "SSH login with the seeded key worked"
        last = (result.stderr or "").strip()
        time.sleep(SSH_POLL_S)
    return False, f"no SSH login within {budget_s:g} s (last: {last or 'no answer'})"


def check_cloud_init(guest: Guest, _size: int) -> CheckResult:
    result = guest.run("cloud-init status --wait --long", timeout=CHECK_TIMEOUT_S)
    text = (result.stdout + result.stderr).strip()
    status = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("status:")), "")
    errors = guest.run("sudo grep -E 'WARNING|ERROR|Traceback' /var/log/cloud-init.log | tail -n 5", timeout=60)
    if result.returncode == 0 and status == "done":
        return CheckResult("cloud-init", True, "cloud-init status: done")
    detail = f"cloud-init status {status or 'unknown'} (exit {result.returncode}): {text[-300:]}"
    if errors.stdout.strip():
        detail += f"; log: {errors.stdout.strip()[-400:]}"
    return CheckResult("cloud-init", False, detail)


def check_growroot(guest: Guest, image_size: int) -> CheckResult:
    result = guest.run("df -B1 --output=size / | tail -n1; lsblk -bdno SIZE /dev/vda", timeout=60)
    try:
        fs_size, disk_size = (int(x) for x in result.stdout.split())
    except ValueError:
        return CheckResult("growroot", False, f"could not read sizes: {result.stdout} {result.stderr}".strip())
    grew = fs_size > image_size
    return CheckResult("growroot", grew, f"root filesystem {fs_size / 1024**3:.2f} GiB on a "
                       f"{disk_size / 1024**3:.2f} GiB disk (image {image_size / 1024**3:.2f} GiB)")


def check_mpi(guest: Guest, _size: int) -> CheckResult:
    upload = guest.run("cat > /tmp/hello_mpi.c", stdin=MPI_HELLO.encode(), timeout=60)
    if upload.returncode != 0:
        return CheckResult("mpi", False, f"could not copy the test program: {upload.stderr.strip()}")
    details = []
    passed = True
    for mpi in ("openmpi", "mpich"):
        script = (f"module load mpi/{mpi} && mpicc -o /tmp/hello_{mpi} /tmp/hello_mpi.c && "
                  f"mpirun -np 2 /tmp/hello_{mpi}")
        result = guest.run(f"bash -lc '{script}'", timeout=CHECK_TIMEOUT_S)
        ranks = sorted(line for line in result.stdout.splitlines() if line.startswith("hello from rank"))
        ok = result.returncode == 0 and ranks == ["hello from rank 0 of 2", "hello from rank 1 of 2"]
        passed = passed and ok
        details.append(f"{mpi}: {'2 ranks answered' if ok else _excerpt(result.stdout + result.stderr)}")
    return CheckResult("mpi", passed, "; ".join(details))


def _excerpt(text: str, head: int = 400, tail: int = 200) -> str:
    """The start of a failure (usually the cause) and its end, for one report line."""
    text = text.strip()
    return text if len(text) <= head + tail else f"{text[:head]} [...] {text[-tail:]}"


_CHECKS: dict[str, Callable[[Guest, int], CheckResult]] = {
    "cloud-init": check_cloud_init,
    "growroot": check_growroot,
    "mpi": check_mpi,
}
