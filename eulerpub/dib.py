"""diskimage-builder invocation: the exact command, its environment, a streamed log and phase reports."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eulerpub import proc
from eulerpub.errors import UsageError

DIB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64"}
STOP_GRACE_S = 120  # seconds DIB gets, once stopped, for its cleanup traps (unmount, detach loop devices)
_PHASE_RE = re.compile(r"Running hooks from \S*/(?P<phase>[a-z-]+)\.d\b"
                       r"|dib-run-parts Running \S*/(?P<phase2>[a-z-]+)\.d/(?P<script>\S+)")


# What disk-image-create inherits from eulerpub's own environment: the basics a shell and sudo need, the locale,
# proxies, and DIB_* settings the operator exported (e.g. DIB_DISTRIBUTION_MIRROR). Nothing else: cloud
# credentials, tokens, LD_PRELOAD, BASH_ENV, PYTHONPATH and the like never reach the element scripts, which run
# as root and write into the image.
INHERITED_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "LANG", "LANGUAGE",
    "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY",
    "SUDO_USER", "SUDO_UID", "SUDO_GID",
})
INHERITED_PREFIXES = ("LC_", "DIB_")


def inherited_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of `environ` a DIB run may see (the variables eulerpub sets are added on top)."""
    return {k: v for k, v in environ.items() if k in INHERITED_NAMES or k.startswith(INHERITED_PREFIXES)}


@dataclass(frozen=True)
class DibCommand:
    """One disk-image-create run: argv plus the variables eulerpub sets (on top of `inherited_environment`)."""

    argv: list[str]
    env: dict[str, str]
    output_stem: Path  # DIB writes <stem>.raw and <stem>.d/

    def shell(self) -> str:
        """The command as one shell line a user can copy."""
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return f"{assignments} {shlex.join(self.argv)}"


def dib_version() -> str:
    try:
        return importlib.metadata.version("diskimage-builder")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def tree_hash(roots: Sequence[Path]) -> str:
    """sha256 over every file below the roots: relative path, executable bit and content."""
    digest = hashlib.sha256()
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            rel = path.relative_to(root.parent).as_posix()
            digest.update(rel.encode() + b"\0")
            digest.update(b"x" if os.access(path, os.X_OK) else b"-")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def element_search_path(project_elements: Path, extra_dirs: Sequence[Path]) -> list[Path]:
    """ELEMENTS_PATH order: the user's extra directories first, then eulerpub's own elements."""
    return [*extra_dirs, project_elements]


def check_elements(search_path: Sequence[Path], names: Iterable[str]) -> None:
    """Fail early, in one sentence, when an element is neither ours nor DIB's."""
    dib_elements = _dib_elements_dir()
    for name in names:
        if any((d / name).is_dir() for d in search_path):
            continue
        if dib_elements and (dib_elements / name).is_dir():
            continue
        where = ", ".join(str(d) for d in search_path)
        raise UsageError(f"element {name!r} was not found in {where} or diskimage-builder's elements")


def _dib_elements_dir() -> Path | None:
    try:
        import diskimage_builder
    except ImportError:
        return None
    return Path(diskimage_builder.__file__).parent / "elements"


def build_command(*, elements: Sequence[str], arch: str, output_stem: Path, image_size_gb: int | None,
                  packages: Sequence[str], env: Mapping[str, str], trace: bool = False,
                  executable: str = "disk-image-create", root_label: str = "rootfs") -> DibCommand:
    argv = [executable, "-a", DIB_ARCH.get(arch, arch), "-t", "raw", "-o", str(output_stem),
            "--root-label", root_label]
    if image_size_gb:
        argv += ["--image-size", str(image_size_gb)]
    if packages:
        argv += ["-p", ",".join(packages)]
    if trace:
        argv.append("-x")
    argv += list(elements)
    return DibCommand(argv=argv, env=dict(env), output_stem=output_stem)


def run(command: DibCommand, full_env: Mapping[str, str], log_path: Path,
        on_phase: Callable[[str], None] | None = None) -> None:
    """Run DIB, appending its output to log_path and reporting phases; raise ToolError naming the log.

    Interrupted, DIB's whole process group gets SIGTERM and `STOP_GRACE_S` for its own traps to unmount and
    detach; if eulerpub is killed outright, DIB gets SIGTERM too (`proc.stream`'s die-with-parent), instead of an
    orphaned build holding mounts that the next build would have to tear down."""
    last_phase = ""

    def phase_of(line: str) -> None:
        nonlocal last_phase
        match = _PHASE_RE.search(line)
        if match and on_phase:
            phase = match.group("phase") or match.group("phase2")
            script = match.group("script")
            text = f"{phase}: {script}" if script else phase
            if text != last_phase:
                last_phase = text
                on_phase(text)

    proc.stream(command.argv, log_file=log_path, env=full_env, on_line=phase_of, shown=command.shell(),
                grace=STOP_GRACE_S)
