"""diskimage-builder invocation: the exact command, its environment, a streamed log and phase reports."""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eulerpub.errors import ToolError, UsageError

log = logging.getLogger(__name__)

DIB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64"}
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
LOG_TAIL_LINES = 30  # lines of DIB's log quoted in debug output when it fails
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


def find_element_dirs(search_path: Sequence[Path], names: Iterable[str]) -> dict[str, Path]:
    """Map each element name to the directory providing it (first on the path wins, like DIB)."""
    found: dict[str, Path] = {}
    for name in names:
        for directory in search_path:
            if (directory / name).is_dir():
                found[name] = directory / name
                break
    return found


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
    """Run DIB, appending its output to log_path and reporting phases; raise ToolError naming the log."""
    log.debug("+ %s", command.shell())
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8", errors="replace") as sink:
        sink.write(f"+ {command.shell()}\n")
        sink.flush()
        try:
            proc = subprocess.Popen(command.argv, env=dict(full_env), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    text=True, errors="replace", bufsize=1, start_new_session=True,
                                    preexec_fn=_die_with_parent)
        except FileNotFoundError as exc:
            raise ToolError(command.argv, 127) from exc
        assert proc.stdout is not None
        last_phase = ""
        try:
            for line in proc.stdout:
                sink.write(line)
                match = _PHASE_RE.search(line)
                if match and on_phase:
                    phase = match.group("phase") or match.group("phase2")
                    script = match.group("script")
                    text = f"{phase}: {script}" if script else phase
                    if text != last_phase:
                        last_phase = text
                        on_phase(text)
            rc = proc.wait()
        except BaseException:
            _stop(proc)
            raise
    if rc != 0:
        raise ToolError(command.argv, rc, log=str(log_path))


def _die_with_parent() -> None:
    """In the child: get SIGTERM when eulerpub dies (even by SIGKILL), so DIB's own traps unmount and
    detach instead of an orphaned build holding mounts that the next build would have to tear down."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _stop(proc: subprocess.Popen[str]) -> None:
    """Interrupted: stop DIB's whole process group so its own cleanup traps run."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""
