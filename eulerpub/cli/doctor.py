"""`eulerpub doctor`: what this host can build and boot, what eulerpub works around, what is missing."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Annotated

import typer

from eulerpub import bootcheck, dib, hostenv, paths, ui
from eulerpub.build import MIN_FREE_BYTES
from eulerpub.cli.options import Json, start

OK, FALLBACK, MISSING = "ok", "fallback", "missing"


@dataclass(frozen=True)
class Finding:
    name: str
    state: str  # ok | fallback | missing
    detail: str
    fix: str = ""


def diagnose(facts: hostenv.HostFacts) -> list[Finding]:
    found: list[Finding] = []
    for tool, (package, why) in hostenv.HOST_TOOLS.items():
        path = facts.tools.get(tool)
        if path:
            found.append(Finding(tool, OK, path))
        else:
            fix = ("pip install diskimage-builder" if package.startswith("pip:")
                   else f"apt-get install {package}  (or scripts/install-host-deps.sh)")
            found.append(Finding(tool, MISSING, f"needed to {why}", fix))
    have_dib = dib.dib_version() != "unknown"
    found.append(Finding("diskimage-builder", OK if have_dib else MISSING, f"version {dib.dib_version()}",
                         "" if have_dib else "pip install diskimage-builder"))
    found.append(Finding("root", OK if facts.is_root else FALLBACK,
                         "running as root" if facts.is_root else "DIB will call sudo for mounts and loops",
                         "" if facts.is_root else "make sure sudo works without a password"))
    found.append(Finding("loop devices", OK if facts.loop_control else MISSING,
                         "/dev/loop-control present" if facts.loop_control else "/dev/loop-control is missing",
                         "" if facts.loop_control else "run in a privileged container (--privileged) or a VM"))
    if facts.device_mapper:
        found.append(Finding("device-mapper", OK, "kpartx can map partitions"))
    else:
        found.append(Finding("device-mapper", FALLBACK,
                             "not in the kernel: builds use eulerpub's kpartx/dmsetup/sudo shims "
                             "(partx -a + /dev/mapper symlinks)"))
    if facts.vfat_mount:
        found.append(Finding("vfat mounts", OK, "FAT filesystems can be mounted"))
    elif facts.esp_method == "mtools":
        found.append(Finding("vfat mounts", FALLBACK,
                             "vfat is not in the kernel: base images' FAT /boot is read with mtools, and the ESP "
                             "of UEFI/hybrid images is staged on a tmpfs and written into the FAT with mtools "
                             "(eulerpub's mount/umount shims)"))
    else:
        found.append(Finding("vfat mounts", MISSING, "vfat is not in the kernel and mtools is not installed: "
                             "neither the base image's /boot nor an ESP can be written", "apt-get install mtools"))
    uefi = [f"{arch} ({path})" for (arch, mode), machine in bootcheck.MACHINES.items()
            if mode == "uefi" and (path := machine.firmware) and path.is_file()]
    missing_fw = sorted({m.firmware_pkg for (arch, mode), m in bootcheck.MACHINES.items()
                         if m.firmware and not m.firmware.is_file() and shutil.which(m.qemu)})
    found.append(Finding("UEFI firmware", OK if not missing_fw else FALLBACK,
                         (("UEFI boot tests for " + ", ".join(uefi)) if uefi else "no UEFI firmware installed")
                         + ("; UEFI boots are reported 'not tried' and publish registers BIOS only"
                            if missing_fw else ""),
                         f"apt-get install {' '.join(missing_fw)}" if missing_fw else ""))
    if facts.kvm_usable:
        found.append(Finding("KVM", OK, facts.kvm_reason))
    else:
        found.append(Finding("KVM", FALLBACK, f"{facts.kvm_reason}; boot tests use TCG (about 1.5-2.5 min "
                             "per boot)"))
    found.append(Finding("container", OK, "inside a container (/.dockerenv): DIB makes device nodes itself"
                         if facts.in_container else "not in a container"))
    free = hostenv.free_bytes(paths.DEFAULT_BUILD_DIR.resolve())
    found.append(Finding("free disk", OK if free >= MIN_FREE_BYTES else MISSING,
                         f"{free / 1024**3:.0f} GiB free for builds under {paths.DEFAULT_BUILD_DIR.resolve()}",
                         "" if free >= MIN_FREE_BYTES else f"a build needs {MIN_FREE_BYTES // 1024**3} GiB"))
    stale = hostenv.stale_mounts() + hostenv.stale_loops()
    if stale and hostenv.lock_held():
        found.append(Finding("build running", OK, f"a build holds the build lock ({len(stale)} mounts/loops)"))
    elif stale:
        found.append(Finding("stale build state", FALLBACK, f"{len(stale)} mounts/loops left by a killed "
                             "build; the next build tears them down", ""))
    if shutil.which("sudo") is None and not facts.is_root:
        found.append(Finding("sudo", MISSING, "DIB needs sudo when not run as root", "apt-get install sudo"))
    return found


def command(
    json_output: Json = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when anything is missing.")] = False,
) -> None:
    """Check what this host can build and boot, what eulerpub works around, and what is missing.

    Looks at the tools, diskimage-builder, root or sudo, loop devices, device-mapper, vfat, UEFI firmware,
    KVM (else TCG), free disk and mounts a killed build left behind. Each line is ok, fallback (eulerpub works
    around it, and says how) or missing (with the command that fixes it). Nothing is changed.

    Examples:

    - `eulerpub doctor`
    - `eulerpub doctor --strict` (exit 1 when anything is missing: a CI gate before a build)
    - `eulerpub doctor --json | jq -r '.findings[] | select(.state != "ok") | .name'`
    """
    start(json_output)
    facts = hostenv.detect()
    findings = diagnose(facts)
    missing = [f for f in findings if f.state == MISSING]
    if json_output:
        ui.emit_json({"accel": facts.accel, "ok": not missing,
                      "findings": [f.__dict__ for f in findings]})
    else:
        colours = {OK: "green", FALLBACK: "yellow", MISSING: "red"}
        for f in findings:
            ui.out_console.print(f"[{colours[f.state]}]{f.state:8}[/] {f.name:20} {f.detail}", markup=True)
            if f.fix:
                ui.out_console.print(f"{'':29} fix: {f.fix}")
        ui.out_console.print(f"boot tests will use {facts.accel.upper()}; "
                             + ("nothing is missing" if not missing else f"{len(missing)} missing"))
    if strict and missing:
        raise typer.Exit(1)
