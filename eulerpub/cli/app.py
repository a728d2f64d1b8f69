"""`eulerpub`: the entry point. Wires the verbs, turns errors into one line and an exit code."""

from __future__ import annotations

import difflib
import errno
import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass

import typer
import typer.main
from rich.markup import escape
from typer._click import core as click_core  # typer vendors click (pyproject.toml pins the typer release)
from typer._click import exceptions as click_errors
from typer.core import TyperCommand, TyperGroup

from eulerpub import __version__, ui
from eulerpub.errors import EXIT_BAD_INPUT, EXIT_FAILED, EulerpubError

log = logging.getLogger("eulerpub")


@dataclass(frozen=True)
class Verb:
    """A command, named here and loaded only when it runs (or its own --help is asked for): importing every
    verb, with the SDKs and pydantic models behind them, would cost most of a second on every call."""

    target: str  # "module:attribute": a function (one command) or a typer.Typer (a group: catalog, images...)
    summary: str  # the line `eulerpub --help` shows; tests/unit/test_cli_help.py keeps it equal to the docstring's
    hidden: bool = False


# In the order `eulerpub --help` lists them. Listing commands are groups with a `list` subcommand (`show NAME`
# where there is one item to look at): `catalog list`, `profiles list`, `images list`.
VERBS: dict[str, Verb] = {
    "catalog": Verb("eulerpub.cli.catalog:app",
                    "The openEuler releases and architectures with official VM images."),
    "profiles": Verb("eulerpub.cli.profiles:app",
                     "List build profiles and show one fully resolved (after `extends:`)."),
    "fetch": Verb("eulerpub.cli.fetch:command",
                  "Fetch the official openEuler VM image and print the path of the verified, decompressed qcow2."),
    "doctor": Verb("eulerpub.cli.doctor:command",
                   "Check what this host can build and boot, what eulerpub works around, and what is missing."),
    "build": Verb("eulerpub.cli.build:command",
                  "Build the image a profile describes: fetch the base, run diskimage-builder, convert, write the "
                  "record."),
    "test": Verb("eulerpub.cli.test:command", "Boot a built image under QEMU and check what its profile promises."),
    "publish": Verb("eulerpub.cli.publish:command",
                    "Upload a build, import it, copy it to more regions and share it; resumable and idempotent."),
    "release": Verb("eulerpub.cli.release:command",
                    "Build (or reuse), boot-test and publish every cell of the release matrix, then update the "
                    "release index."),
    "images": Verb("eulerpub.cli.images:app", "Images eulerpub has published."),
    "prune": Verb("eulerpub.cli.prune:command",
                  "Delete older published images (with their snapshots) and orphans; a dry run unless --yes."),
    "releases": Verb("eulerpub.cli.catalog:releases_command", "Deprecated: use `eulerpub catalog list` "
                     "(`releases` was one letter from `eulerpub release`).", hidden=True),
}
MARKUP = "markdown"


def load_verb(name: str) -> click_core.Command:
    """The click command of one verb, imported now."""
    module_name, _, attribute = VERBS[name].target.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    if isinstance(target, typer.Typer):  # a group, even with one subcommand (typer would run that one directly)
        target.rich_markup_mode = MARKUP
        command: click_core.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(rich_markup_mode=MARKUP, add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _Summary(TyperCommand):
    """Stands in for a verb not loaded yet: enough for `eulerpub --help` and shell completion of verb names."""


class LazyGroup(TyperGroup):
    def __init__(self, **attrs):
        super().__init__(**attrs)
        for name, verb in VERBS.items():
            self.commands.setdefault(name, _Summary(name=name, help=verb.summary, hidden=verb.hidden))

    def resolve_command(self, ctx, args):
        try:
            name, command, rest = super().resolve_command(ctx, args)
        except click_errors.UsageError as exc:  # typer suggests from every name; never a deprecated one
            head, suggested, _ = exc.message.partition(" Did you mean ")
            if suggested:
                visible = [n for n, c in self.commands.items() if not c.hidden]
                close = difflib.get_close_matches(args[0], visible)
                exc.message = head + (f" Did you mean {', '.join(map(repr, close))}?" if close else "")
            raise
        if isinstance(command, _Summary):
            command = self.commands[name] = load_verb(name)
        return name, command, rest


app = typer.Typer(
    cls=LazyGroup,
    name="eulerpub",
    help=(
        "Build, verify and publish openEuler cloud images.\n\n"
        "The main job: `eulerpub build --profile hpc` makes the image from the official openEuler qcow2, "
        "`eulerpub test build/<build id>` boots it, `eulerpub publish --cloud CLOUD --profile hpc --region R` "
        "makes it launchable (`eulerpub publish --help` lists the clouds). `eulerpub doctor` says what this "
        "host can do. Every command's --help has examples; results go to stdout (--json for machines), logs "
        "to stderr."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False  # set per invocation by --debug / EULERPUB_DEBUG
_json_wanted = False  # --json anywhere on the command line: errors also go to stdout as JSON


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


INTERRUPTED = "interrupted; re-run the same command to resume"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
MESSAGE_MAX = 600  # characters of one error sentence; longer ones are cut (values in them are already short)


def _one_line(message: str) -> str:
    """The message as one printable line: control characters escaped, never longer than MESSAGE_MAX."""
    text = "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in message)
    return text if len(text) <= MESSAGE_MAX else text[:MESSAGE_MAX - 1] + "…"


def _fail(message: str, code: int, hint: str | None = None) -> None:
    """The one way a run ends badly: one line on stderr, and with --json a JSON error object on stdout unless
    the command already printed its JSON result (publish's report says `"ok": false` itself): stdout stays one
    valid JSON document."""
    line = _one_line(message)
    if _json_wanted and not ui.json_written():
        _write_json_error(line, code)
    try:
        ui.err_console.print(f"[bold red]error:[/] {escape(line)}", markup=True, highlight=False)
        if hint:
            ui.err_console.print(f"hint: {_one_line(hint)}", markup=False, highlight=False)
    except (OSError, UnicodeError):  # stderr itself is gone or cannot encode: the exit code still tells
        pass
    sys.exit(code)


def _write_json_error(message: str, code: int) -> None:
    try:
        sys.stdout.write(json.dumps({"ok": False, "error": message, "exit": code}) + "\n")
        sys.stdout.flush()
    except (OSError, UnicodeError, ValueError):  # stdout closed or full: stderr still says it
        pass


def _run(argv: list[str] | None) -> int:
    """Parse and run the command. Called without typer's standalone wrapper, which would turn Ctrl-C into a
    silent exit code and a broken stdout into a bare exit 1 before the handler in `main` could say so."""
    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    command._main_shell_completion({}, "eulerpub", None)  # exits when the shell asks for completions
    try:
        with command.make_context("eulerpub", args) as ctx:
            result = command.invoke(ctx)
    except typer.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def _stdout_failure(exc: BaseException) -> str | None:
    """A sentence when the failure is about writing results to stdout (closed, full, wrong encoding)."""
    if isinstance(exc, UnicodeEncodeError):
        encoding = getattr(sys.stdout, "encoding", None) or "the output encoding"
        return (f"cannot write the result in {encoding}; set a UTF-8 locale (e.g. LC_ALL=C.UTF-8) or "
                "PYTHONIOENCODING=utf-8")
    if isinstance(exc, ValueError) and "closed file" in str(exc):
        return "cannot write the result: standard output is closed"
    if isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EBADF, errno.EIO):
        return f"cannot write the result to standard output ({os.strerror(exc.errno)})"
    return None


def main(argv: list[str] | None = None) -> None:
    global _debug, _json_wanted
    _debug = os.environ.get("EULERPUB_DEBUG", "") not in ("", "0")  # until the options are parsed
    _json_wanted = "--json" in (sys.argv[1:] if argv is None else argv)
    ui.reset_json_written()  # per invocation (tests run several in one process)
    if sys.stdout is None:  # started with stdout closed (`>&-`): results would vanish, or land in a reused fd
        _fail("standard output is closed; redirect it to a file or /dev/null instead", EXIT_FAILED)
    try:
        code = _run(argv)
        sys.stdout.flush()  # a full or closed stdout shows here, not at interpreter exit
    except EulerpubError as exc:
        if _debug:
            log.exception("traceback")
        _fail(exc.message, exc.exit_code, exc.hint)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except click_errors.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _fail(INTERRUPTED, EXIT_INTERRUPTED)
    except RecursionError:
        _fail("input nested too deeply to process", EXIT_BAD_INPUT)
    except Exception as exc:
        if (sentence := _stdout_failure(exc)) is not None:
            _silence_stdout()
            _fail(sentence, EXIT_FAILED)
        if _debug:  # a bug: say so in one line, show the traceback only when asked
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)",
              EXIT_FAILED)
    sys.exit(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit does not fail a second time."""
    global _json_wanted
    _json_wanted = False
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until exit
