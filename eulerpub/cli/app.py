"""`eulerpub`: the entry point. Wires the verbs, turns errors into one line and an exit code."""

from __future__ import annotations

import logging
import os
import sys

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_errors

from eulerpub import __version__, ui
from eulerpub.cli import (
    build,
    doctor,
    fetch,
    images,
    profiles,
    prune,
    publish,
    release,
    releases,
    test,
)
from eulerpub.errors import EXIT_BAD_INPUT, EXIT_FAILED, EulerpubError

log = logging.getLogger("eulerpub")

app = typer.Typer(
    name="eulerpub",
    help=(
        "Build, verify and publish openEuler cloud images.\n\n"
        "The main job: `eulerpub build --profile hpc` makes the image from the official openEuler qcow2, "
        "`eulerpub test` boots it, `eulerpub publish --cloud aws|huawei|tencent --region R` makes it "
        "launchable. Every command takes --help; results go to stdout (--json for machines), logs to stderr."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False  # set per invocation by --debug / EULERPUB_DEBUG


def _version(value: bool) -> None:
    if value:
        print(f"eulerpub {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: bool = typer.Option(False, "--debug", envvar="EULERPUB_DEBUG",
                               help="Log every command run and show tracebacks."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    global _debug
    _debug = debug
    ui.setup_logging(_debug)


app.command("releases")(releases.command)
app.add_typer(profiles.app, name="profiles")
app.command("fetch")(fetch.command)
app.command("doctor")(doctor.command)
app.command("build")(build.command)
app.command("test")(test.command)
app.command("publish")(publish.command)
app.command("release")(release.command)
app.add_typer(images.app, name="images")
app.command("prune")(prune.command)


def _fail(message: str, code: int, hint: str | None = None) -> None:
    ui.err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    if hint:
        ui.err_console.print(f"hint: {hint}", highlight=False)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    global _debug
    _debug = os.environ.get("EULERPUB_DEBUG", "") not in ("", "0")  # until the options are parsed
    try:
        code = app(args=argv, standalone_mode=False)
    except EulerpubError as exc:
        if _debug:
            log.exception("traceback")
        _fail(exc.message, exc.exit_code, exc.hint)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except click_errors.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail("interrupted; re-run the same command to resume", 130)
    except Exception as exc:  # a bug: say so in one line, show the traceback only when asked
        if _debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)",
              EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)
