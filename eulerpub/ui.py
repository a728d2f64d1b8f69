"""Terminal output: one rich console on stderr, byte progress bars, JSON on stdout.

Results go to stdout (plain text or `--json`); progress, logs and errors go to stderr, so
`eulerpub fetch ... | xargs` and `--json | jq` keep working.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

# rich.logging (with rich.traceback) and rich.progress are imported where they are used: `eulerpub --help`
# and quick commands start without them (tests/bench/bench_startup.py).

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)

# When False (set by --json or a non-terminal stderr), progress becomes a few quiet log lines.
_interactive = err_console.is_terminal


def set_interactive(enabled: bool) -> None:
    global _interactive
    _interactive = enabled and err_console.is_terminal


def setup_logging(debug: bool = False) -> None:
    level = logging.DEBUG if debug else logging.INFO
    from rich.logging import RichHandler

    handler = RichHandler(console=err_console, show_path=False, show_time=debug, markup=False,
                          rich_tracebacks=debug)
    logging.basicConfig(level=level, handlers=[handler], format="%(message)s", force=True)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "huaweicloudsdkcore", "tencentcloud"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_json_written = False  # stdout holds a JSON result: a later failure must not append a second document


def emit_json(data: Any) -> None:
    """Print a machine-readable result on stdout (one document per run)."""
    global _json_written
    _json_written = True
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def json_written() -> bool:
    """Whether this run already printed its JSON result (which then carries the failure itself)."""
    return _json_written


def reset_json_written() -> None:
    global _json_written
    _json_written = False


ProgressCallback = Callable[[int], None]


@contextmanager
def byte_progress(description: str, total: int | None) -> Iterator[ProgressCallback]:
    """A progress bar with bytes, rate and ETA on a terminal; a start and an end log line otherwise.

    Yields `advance(nbytes)`.
    """
    log = logging.getLogger("eulerpub")
    if not _interactive:
        log.info("%s (%s)", description, _human(total) if total else "size unknown")
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n

        yield advance
        log.info("%s: done, %s", description, _human(done))
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _human(n: int | None) -> str:
    size = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    raise AssertionError("unreachable")


human_size = _human


@contextmanager
def status(description: str) -> Iterator[Callable[[str], None]]:
    """A spinner with a changing one-line status on a terminal; log lines for each change otherwise.

    Yields `update(text)`.
    """
    log = logging.getLogger("eulerpub")
    if not _interactive:
        log.info("%s", description)
        yield lambda text: log.info("%s: %s", description, text)
        return
    with err_console.status(description) as spinner:
        yield lambda text: spinner.update(f"{description}: {text}")
