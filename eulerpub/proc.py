"""The one way eulerpub runs external commands: argv lists only, logged, failures raised as ToolError."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

from eulerpub.errors import ToolError

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 2000  # enough for the last lines of a tool's complaint, small enough for one error line


def run(
    argv: list[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    capture: bool = True,
    input: bytes | None = None,
    timeout: float | None = None,
    log_file: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command and return its result; raise ToolError if it fails and `check` is set.

    With `log_file`, stdout and stderr go (appended) to that file instead of being captured,
    and the error names the log.
    """
    cmd = [os.fspath(a) for a in argv]
    log.debug("+ %s", shlex.join(cmd))
    try:
        if log_file is not None:
            with open(log_file, "ab") as sink:
                result = subprocess.run(cmd, env=env, cwd=cwd, input=input, timeout=timeout,
                                        stdout=sink, stderr=subprocess.STDOUT, check=False)
        else:
            result = subprocess.run(cmd, env=env, cwd=cwd, input=input, timeout=timeout,
                                    capture_output=capture, check=False)
    except FileNotFoundError as exc:
        raise ToolError(cmd, 127) from exc
    if check and result.returncode != 0:
        tail = (result.stderr or b"")[-STDERR_TAIL_CHARS:].decode(errors="replace")
        raise ToolError(cmd, result.returncode, tail, log=str(log_file) if log_file else None)
    return result


def output(argv: list[str | os.PathLike[str]], **kwargs) -> str:
    """Run a command and return its stdout as text."""
    return run(argv, **kwargs).stdout.decode()
