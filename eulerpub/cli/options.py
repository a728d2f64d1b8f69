"""Options shared by several verbs, declared once so they read and behave the same everywhere.

The vocabulary (tests/unit/test_cli_help.py holds every command to it): `--build-dir` is the directory of
builds, `-c` is `--cloud`, `-p` `--profile`, `-r` `--release`, `-a` `--arch`; `--json` and `--dry-run` mean the
same in every verb. Choices are typed (`typing.Literal`), so `--help` lists them and a typo gets typer's own
"is not one of" line (exit 2). This module stays cheap to import: `eulerpub catalog list` loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from eulerpub import catalog, ui

Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (logs stay on stderr).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan and change nothing.")]
ProfilesDir = Annotated[
    list[Path] | None,
    typer.Option("--profiles-dir", help="Extra directory of profile YAML files, searched first (repeatable; "
                 "also EULERPUB_PROFILES_PATH).", show_default=False, metavar="DIR"),
]
ElementsDir = Annotated[
    list[Path] | None,
    typer.Option("--elements-dir", help="Extra directory of DIB elements, searched before eulerpub's own "
                 "(repeatable; also EULERPUB_ELEMENTS_PATH).", show_default=False, metavar="DIR"),
]
Mirror = Annotated[
    str | None,
    typer.Option("--mirror", envvar="EULERPUB_MIRROR", show_envvar=True,
                 help="openEuler download root replacing https://repo.openeuler.org/ (same tree below it)."),
]
Release = Annotated[str | None, typer.Option("--release", "-r", help="openEuler release, e.g. 24.03-LTS-SP1 "
                                             "(see `eulerpub catalog list`).", show_default=False)]


def choice(values: Sequence[str]) -> Any:
    """A typed choice of these strings: typer lists them in --help and refuses anything else."""
    return Literal[tuple(values)]  # type: ignore[valid-type]


def _canonical_arch(value: str | None) -> str | None:
    return catalog.ARCH_ALIASES.get(value, value) if value else value


def arch_option(arches: Sequence[str], help: str) -> Any:
    """`--arch/-a` limited to `arches` (plus the aliases amd64, x64, arm64 that other tools use, mapped to the
    canonical name); help shows only the canonical names."""
    accepted = [*arches, *(alias for alias, arch in catalog.ARCH_ALIASES.items() if arch in arches)]
    return Annotated[choice(accepted) | None, typer.Option(  # type: ignore[valid-type]
        "--arch", "-a", metavar="[" + "|".join(arches) + "]", case_sensitive=False, callback=_canonical_arch,
        help=help, show_default=False)]


def directory_or_missing(path: Path | None) -> Path | None:
    """A directory option: an existing directory, or a path that can become one (not a file)."""
    if path is not None and path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file, not a directory")
    return path


BuildDir = Annotated[Path, typer.Option("--build-dir", help="Directory holding build directories.",
                                        callback=directory_or_missing)]
# Build and release called it --output/-o until 0.1; kept, hidden, for one release.
OldBuildDir = Annotated[Path | None, typer.Option("--output", "-o", hidden=True, callback=directory_or_missing)]


def deprecated(old: str, new: str) -> None:
    """One line on stderr for a spelling that still works but is going away."""
    ui.err_console.print(f"warning: {old} is deprecated and will be removed in the next release; use {new}",
                         markup=False, highlight=False)


def build_dir(chosen: Path, old: Path | None) -> Path:
    """The build directory from --build-dir, or from the deprecated --output/-o (with its warning)."""
    if old is None:
        return chosen
    deprecated("--output/-o", "--build-dir")
    return old


def start(json_output: bool) -> None:
    """Common start of a verb: machine output switches progress bars to quiet log lines."""
    if json_output:
        ui.set_interactive(False)
