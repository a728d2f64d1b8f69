"""Options shared by several verbs, declared once so they read and behave the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eulerpub import ui

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (logs stay on stderr).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan and change nothing.")]
ProfilesDir = Annotated[
    list[Path] | None,
    typer.Option("--profiles-dir", help="Extra directory of profile YAML files, searched first (repeatable; "
                 "also EULERPUB_PROFILES_PATH).", show_default=False),
]
Mirror = Annotated[
    str | None,
    typer.Option("--mirror", envvar="EULERPUB_MIRROR", show_envvar=True,
                 help="openEuler download root replacing https://repo.openeuler.org/ (same tree below it)."),
]
Release = Annotated[str | None, typer.Option("--release", "-r", help="openEuler release, e.g. 24.03-LTS-SP1.")]
Arch = Annotated[str | None, typer.Option("--arch", "-a", help="Architecture: x86_64, aarch64 or riscv64.")]


def directory_or_missing(path: Path) -> Path:
    """A directory option: an existing directory, or a path that can become one (not a file)."""
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file, not a directory")
    return path


BuildDir = Annotated[Path, typer.Option("--output", "-o", help="Directory holding build directories.",
                                        callback=directory_or_missing)]


def start(json_output: bool) -> None:
    """Common start of a verb: machine output switches progress bars to quiet log lines."""
    if json_output:
        ui.set_interactive(False)
