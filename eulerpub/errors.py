"""The error hierarchy. Every error carries one sentence for the user and the exit code it means.

Only the CLI turns these into output and exit codes; library code raises them.
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class EulerpubError(Exception):
    """Work failed. The message is one sentence a user can act on."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(EulerpubError):
    """The user asked for something that cannot be: unknown release, profile, region, bad flag combination."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(UsageError):
    """A profile or config file is malformed; the message names the file and the key."""


class CredentialsError(UsageError):
    """No usable credentials in the cloud's standard chain (the message never contains a secret)."""


class ChecksumError(EulerpubError):
    """Downloaded or uploaded bytes do not match their expected digest."""


class ToolError(EulerpubError):
    """An external command failed: not found (127), a non-zero exit, killed by a signal (a negative returncode,
    as subprocess reports it) or stopped after `timeout` seconds."""

    def __init__(self, cmd: list[str], returncode: int | None, stderr_tail: str = "", *, log: str | None = None,
                 timeout: float | None = None):
        shown = " ".join(cmd[:3]) + (" ..." if len(cmd) > 3 else "")
        if timeout is not None:
            message = f"`{shown}` did not finish within {timeout:g} s and was stopped"
        elif returncode == 127:
            message = f"{cmd[0]} not found; run `eulerpub doctor` to see what the host is missing"
        elif returncode is not None and returncode < 0:
            message = f"{cmd[0]} was killed by {signal_name(-returncode)}"
        else:
            message = f"`{shown}` failed with exit code {returncode}"
        lines = stderr_tail.strip().splitlines()
        if log:
            message += f" (log: {log})"
        elif lines:
            message += f": {lines[-1]}"
        super().__init__(message)
        self.cmd = cmd
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.log = log
        self.timeout = timeout

    @property
    def ended(self) -> str:
        """How the tool ended, for a sentence about it: "exit code 1", "killed by SIGKILL", "stopped after 60 s"."""
        if self.timeout is not None:
            return f"stopped after {self.timeout:g} s"
        if self.returncode is not None and self.returncode < 0:
            return f"killed by {signal_name(-self.returncode)}"
        return f"exit code {self.returncode}"


def signal_name(number: int) -> str:
    """SIGKILL for 9; "signal 99" for a number Python does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class CloudError(EulerpubError):
    """A cloud API call failed for good (after retries)."""

    def __init__(self, cloud: str, region: str | None, operation: str, detail: str,
                 resource_id: str | None = None) -> None:
        where = f"{cloud}/{region}" if region else cloud
        about = f" on {resource_id}" if resource_id else ""
        super().__init__(f"{where}: {operation}{about} failed: {detail}")
        self.cloud = cloud
        self.region = region
        self.operation = operation
        self.resource_id = resource_id


class WaitTimeout(EulerpubError):
    """A cloud-side job did not finish in time. It may still finish: a re-run picks it up."""


QUOTE_MAX = 60  # characters of a user-supplied value quoted in an error message


def quote(value: object, limit: int = QUOTE_MAX) -> str:
    """A user-supplied value for an error message: repr-quoted (so control characters show as escapes),
    and at most `limit` characters of it (a 60 MB alias bomb is not a sentence)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit])[:-1] + f"...' ({len(text)} characters)"
