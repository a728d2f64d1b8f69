"""`eulerpub test`: boot a built image under QEMU and check what its profile promises."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eulerpub import bootcheck, ui
from eulerpub.cli.options import Json, ProfilesDir, arch_option, start
from eulerpub.errors import UsageError
from eulerpub.manifest import RECORD_NAME, BuildRecord, artifact_path, read_record
from eulerpub.profiles import load_profile

# The arches the boot test has a machine for (riscv64 images build, but are not booted here).
BOOTABLE_ARCHES = tuple(dict.fromkeys(arch for arch, _ in bootcheck.MACHINES))
Arch = arch_option(BOOTABLE_ARCHES, "Architecture of an image file (default: the record's, else x86_64).")


def command(
    target: Annotated[Path, typer.Argument(help="A build record (manifest.json or its directory) or an image "
                                                "file.", show_default=False, metavar="RECORD|IMAGE")],
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Run this profile's checks "
                                                "(default: the record's).")] = None,
    profiles_dir: ProfilesDir = None,
    arch: Arch = None,
    user: Annotated[str, typer.Option("--user", help="The image's default cloud user.")] = "openeuler",
    timeout: Annotated[int, typer.Option("--timeout", help="Seconds allowed for boot and cloud-init.")]
    = bootcheck.BOOT_BUDGET_S,
    check: Annotated[list[str] | None, typer.Option("--check", help="Run this check instead of the profile's "
                                                    "(repeatable; e.g. hpcnow).", metavar="NAME")] = None,
    screenshot: Annotated[Path | None, typer.Option("--screenshot", help="Keep the desktop check's frames "
                                                    "(desktop-rdp.png, desktop-vnc.png) in this directory "
                                                    "(a record's are kept in its boottest/ as well).",
                                                    metavar="DIR")] = None,
    json_output: Json = False,
) -> None:
    """Boot a built image under QEMU and check what its profile promises.

    The image boots with a NoCloud seed once per firmware mode it is built for (x86_64: SeaBIOS and OVMF;
    aarch64: UEFI), with KVM if usable, else TCG. Each mode is reported on one line with its checks: booted,
    cloud-init, growroot, and the profile's own (mpi: an MPI hello world on 2 ranks; desktop: RDP and VNC
    logins whose frames show GNOME, which needs the `desktop` extra, pip install 'eulerpub[desktop]'; hpcnow:
    HPC-NOW's bootstrap replayed), run in the first mode. `--screenshot DIR` keeps the desktop frames;
    `--check NAME` runs only that check. A build record's result is kept beside it (boottest.json); publish
    registers only the modes that passed. Exit 1 if any boot fails.

    Examples:

    - `eulerpub test build/<build id>` (a record: its image, checks and boot modes)
    - `eulerpub test build/<build id>/manifest.json --timeout 1200 --json`
    - `eulerpub test disk.qcow2 --profile hpc --arch aarch64` (an image file: the profile's checks)
    - `eulerpub test build/<build id> --check desktop --screenshot shots/` (one check, its frames kept)
    """
    start(json_output)
    image, checks, record = _resolve(target, profile, profiles_dir or [])
    if check:
        bootcheck.select_checks(check)  # an unknown name is a usage error before anything boots
        checks = list(check)
    built = record[1].boot if record else None
    frames = screenshot or (record[0].parent / bootcheck.FRAMES_DIR if record else None)
    with ui.status(f"boot test of {image.name}") as update:
        report = bootcheck.boot_test(image, checks=checks, arch=arch or (record[1].arch if record else "x86_64"),
                                     user=user, budget_s=timeout, modes=built.modes if built else None,
                                     on_step=update, frames_dir=frames)
    if screenshot and record:
        bootcheck.keep_frames(screenshot, record[0].parent / bootcheck.FRAMES_DIR)
    if record and not profile and not check:
        bootcheck.remember(*record, report)  # pass or fail: publish registers only the modes that passed
    if json_output:
        ui.emit_json(report.as_dict())
    else:
        out = ui.out_console
        out.print(f"{image}  ({report.accel}: {report.accel_reason})")
        for boot in report.boots:
            mark = "[green]pass[/]" if boot.passed else "[red]FAIL[/]"
            took = f"booted in {boot.boot_seconds:.0f} s" if boot.boot_seconds else "did not boot"
            out.print(f"{mark}  {boot.firmware.upper():5} {took}, {boot.total_seconds:.0f} s with its checks"
                      + (f"; console log: {boot.console_log}" if boot.console_log else ""), markup=True)
            for check in (c for c in report.checks if c.firmware == boot.firmware):
                mark = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
                out.print(f"    {mark}  {check.name:10} {check.detail}", markup=True)
        for mode, why in report.not_tried.items():
            out.print(f"[yellow]skip[/]  {mode.upper():5} not tried: {why}", markup=True)
        out.print(f"{report.total_seconds:.0f} s in all")
    if not report.passed:
        raise typer.Exit(1)


def _resolve(target: Path, profile: str | None, profiles_dir: list[Path]
             ) -> tuple[Path, list[str], tuple[Path, BuildRecord] | None]:
    """The image to boot, the checks to run and (for a record) the record."""
    checks: list[str] = []
    found: tuple[Path, BuildRecord] | None = None
    if target.is_dir() or target.name == RECORD_NAME:
        record_path = target / RECORD_NAME if target.is_dir() else target
        record = read_record(record_path)
        image = artifact_path(record_path, bootcheck.bootable_artifact(record))
        checks = list(record.checks)
        found = (record_path, record)
    elif target.is_file():
        image = target
    else:
        raise UsageError(f"{target} is neither a build record nor an image file")
    if profile:
        checks = list(load_profile(profile, profiles_dir).checks)
    return image, checks, found
