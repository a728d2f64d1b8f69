"""The one way eulerpub runs external commands.

- argv lists only, never a shell; `+ cmd` is logged at debug level before the command starts;
- every command runs in a session (process group) of its own, so that whatever ends the caller's wait (Ctrl-C, an
  exception, a timeout) stops the tool and everything it started: SIGTERM to the group, SIGKILL after a grace
  period. A terminal's Ctrl-C reaches only eulerpub, which then stops the group it made;
- failures are `ToolError`: a missing tool, a non-zero exit (with the stderr tail or the log's path), a timeout
  (naming the tool and the limit), a tool killed by a signal (named: "qemu-system-x86_64 was killed by SIGKILL").

`run` captures a short command's output, `stream` appends a long one's to a log file line by line, `start`/`stop`
run one beside eulerpub (a test VM), and `spawn` stops it when its `with` block ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from eulerpub.errors import ToolError

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 2000  # enough for the last lines of a tool's complaint, small enough for one error line
GRACE_S = 10.0            # seconds a stopped tool gets between SIGTERM and SIGKILL
PR_SET_PDEATHSIG = 1      # prctl option (linux/prctl.h)

Argv = Sequence[str | os.PathLike[str]]


def _argv(argv: Argv) -> list[str]:
    return [os.fspath(a) for a in argv]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when eulerpub's thread that started it dies (even by SIGKILL), so the tool's own
    cleanup runs instead of an orphan holding mounts, loop devices or a VM."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def stop(process: subprocess.Popen[Any], grace: float = GRACE_S) -> None:
    """Stop a spawned command and its process group: SIGTERM, up to `grace` seconds for its own cleanup, then
    SIGKILL for whatever of the group is left. Nothing happens to a command that has already ended."""
    if process.poll() is not None:
        return
    log.debug("stopping %s (pid %d)", process.args[0] if isinstance(process.args, list) else process.args,
              process.pid)
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    finally:  # also when a second Ctrl-C interrupts the grace period
        _signal_group(process, signal.SIGKILL)
        process.wait()


def start(argv: Argv, *, env: Mapping[str, str] | None = None, stdin: int | IO[Any] | None = subprocess.DEVNULL,
          stdout: int | IO[Any] | None = subprocess.PIPE, stderr: int | IO[Any] | None = subprocess.PIPE,
          text: bool = False, die_with_parent: bool = False) -> subprocess.Popen[Any]:
    """Start `argv` in a process group of its own; the caller `stop`s it (or uses `spawn`, which does).

    `die_with_parent` (long-running tools started from the main thread only: the signal follows the thread
    that started the tool) also sends it SIGTERM if eulerpub is killed outright."""
    cmd = _argv(argv)
    log.debug("+ %s", shlex.join(cmd))
    try:
        return subprocess.Popen(cmd, env=None if env is None else dict(env), stdin=stdin, stdout=stdout,
                                stderr=stderr, start_new_session=True, text=text, errors="replace" if text else None,
                                bufsize=1 if text else -1, preexec_fn=_die_with_parent if die_with_parent else None)
    except FileNotFoundError as exc:
        raise ToolError(cmd, 127) from exc


@contextlib.contextmanager
def spawn(argv: Argv, *, grace: float = GRACE_S, **options: Any) -> Iterator[subprocess.Popen[Any]]:
    """`start(argv, **options)` for the length of a `with` block: when the block ends, however it ends, a command
    still running is stopped (`stop`, with `grace` seconds between SIGTERM and SIGKILL)."""
    process = start(argv, **options)
    with process:
        try:
            yield process
        finally:
            stop(process, grace)


def run(argv: Argv, *, input: bytes | None = None, timeout: float | None = None, check: bool = True,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command to its end (in `env`, if given: the whole environment) and return its result, stdout and
    stderr captured.

    ToolError if it fails and `check` is set, and always if it outlives `timeout` (seconds: the group is stopped
    and the error names the tool and the limit; `ToolError.ended` says "stopped after N s").
    """
    cmd = _argv(argv)
    with spawn(cmd, env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL) as process:
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            _, err = process.communicate()
            raise ToolError(cmd, process.returncode, _tail(err), timeout=timeout) from None
    result = subprocess.CompletedProcess(cmd, process.returncode, out, err)
    if check and result.returncode != 0:
        raise ToolError(cmd, result.returncode, _tail(err))
    return result


def output(argv: Argv, **kwargs: Any) -> str:
    """Run a command and return its stdout as text."""
    return run(argv, **kwargs).stdout.decode()


def stream(argv: Argv, *, log_file: Path, env: Mapping[str, str] | None = None,
           on_line: Callable[[str], None] | None = None, shown: str | None = None, grace: float = GRACE_S) -> None:
    """Run a long command with stdout and stderr appended to `log_file` as they come, each line also given to
    `on_line`; ToolError naming the log if it fails. `shown`: the command as the log's first line shows it
    (default: the argv); a tool stopped by an interrupt gets `grace` seconds for its own cleanup."""
    cmd = _argv(argv)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a", encoding="utf-8", errors="replace") as sink:
        sink.write(f"+ {shown or shlex.join(cmd)}\n")
        sink.flush()
        with spawn(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, grace=grace,
                   die_with_parent=True) as process:
            assert process.stdout is not None
            for line in process.stdout:
                sink.write(line)
                if on_line is not None:
                    on_line(line)
            returncode = process.wait()
    if returncode != 0:
        raise ToolError(cmd, returncode, log=str(log_file))


def _tail(stderr: bytes | None) -> str:
    return (stderr or b"")[-STDERR_TAIL_CHARS:].decode(errors="replace")
