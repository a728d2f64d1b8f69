"""The command line as a newcomer meets it: one vocabulary across commands, choices in --help, examples in
every command's help, no `<bool>`, deprecated spellings that still work (with one warning line), and verbs
loaded only when they run."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from eulerpub.cli.app import VERBS, load_verb
from eulerpub.clouds import ADAPTERS

REPO = Path(__file__).resolve().parents[2]

# The one meaning of each short option, in every command that has it.
SHORT_OPTIONS = {"-p": "--profile", "-r": "--release", "-a": "--arch", "-c": "--cloud", "-y": "--yes",
                 "-h": "--help"}
# Names that mean the same thing everywhere they appear; a second spelling of one of them is a defect.
RETIRED = {"--output", "-o", "--build", "--builds", "--out", "--dir", "--config-file", "--clouds"}


def leaf_commands() -> dict[str, object]:
    """'build', 'images list', ... -> the click command, every visible verb loaded."""
    found = {}
    for name, verb in VERBS.items():
        if verb.hidden:
            continue
        command = load_verb(name)
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found.update({f"{name} {sub}": cmd for sub, cmd in subcommands.items()})
        else:
            found[name] = command
    return found


def visible_options(command) -> list:
    return [p for p in command.params if getattr(p, "opts", None) and not getattr(p, "hidden", False)
            and p.param_type_name == "option"]


def test_each_summary_in_the_verb_table_is_the_commands_own_first_paragraph():
    for name, verb in VERBS.items():
        command = load_verb(name)
        first = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")
        assert verb.summary == first, name


def test_one_vocabulary_across_commands():
    longs_of_short: dict[str, set[str]] = defaultdict(set)
    shorts_of_long: dict[str, set[str]] = defaultdict(set)
    names = set()
    for where, command in leaf_commands().items():
        for option in visible_options(command):
            longs = [o for o in option.opts + option.secondary_opts if o.startswith("--")]
            shorts = [o for o in option.opts if not o.startswith("--")]
            names.update(longs + shorts)
            for short in shorts:
                longs_of_short[short].update(longs[:1])
            shorts_of_long[longs[0]].add(shorts[0] if shorts else "")
            assert not set(longs + shorts) & RETIRED, (where, option.opts)
    assert {s: longs for s, longs in longs_of_short.items()} == {s: {long} for s, long in SHORT_OPTIONS.items()
                                                               if s in longs_of_short}
    inconsistent = {long: shorts for long, shorts in shorts_of_long.items() if len(shorts) > 1}
    assert inconsistent == {}, "an option has a short form in one command and none in another"
    commands = leaf_commands()
    for verb in ("build", "publish", "release"):
        assert "--build-dir" in {o for p in visible_options(commands[verb]) for o in p.opts}, verb
    for verb in ("build", "release"):
        assert "--elements-dir" in {o for p in visible_options(commands[verb]) for o in p.opts}, verb


def test_every_command_teaches_by_example():
    for where, command in leaf_commands().items():
        assert "eulerpub " + where in (command.help or ""), f"`eulerpub {where} --help` shows no example"


@pytest.mark.parametrize("where", ["", *sorted(leaf_commands())])
def test_help_shows_no_bool_and_keeps_angle_brackets(cli, monkeypatch, where):
    monkeypatch.setenv("COLUMNS", "250")
    result = cli(*where.split(), "--help")
    assert result.exit_code == 0, result.stderr
    assert "Usage: eulerpub" in result.stdout
    assert "<bool>" not in result.stdout
    assert "<list[" not in result.stdout  # a repeatable option names what it takes (DIR, REGION, ...)
    if where == "publish":
        assert "HUAWEICLOUD_SDK_PROJECT_ID_<REGION>" in result.stdout


CLOUD_CHOICES = "<" + "|".join(ADAPTERS) + ">"


@pytest.mark.parametrize(("where", "shown"), [
    ("publish", [CLOUD_CHOICES, "[x86_64|aarch64]", "<ebs|s3>", "<uefi|legacy-bios|uefi-preferred>",
                 "<qcow2|raw|vmdk|vhd>"]),
    ("images list", [CLOUD_CHOICES]),
    ("prune", [CLOUD_CHOICES]),
    ("build", ["[x86_64|aarch64|riscv64]"]),
    ("fetch", ["[x86_64|aarch64|riscv64]"]),
    ("test", ["[x86_64|aarch64]"]),  # riscv64 images build, but the boot test has no machine for them
])
def test_help_lists_the_choices(cli, monkeypatch, where, shown):
    monkeypatch.setenv("COLUMNS", "250")
    text = cli(*where.split(), "--help").stdout
    for choices in shown:
        assert choices in text, (where, choices)


def test_cloud_choices_come_from_the_adapter_registry():
    from eulerpub.cli.cloud_options import CLOUDS
    from eulerpub.clouds import ADAPTERS
    assert tuple(ADAPTERS) == CLOUDS


@pytest.mark.parametrize(("args", "expected"), [
    (["publish", "--cloud", "aws", "--arch", "riscv64", "--image", "x.raw"],
     "Invalid value for '--arch' / '-a': 'riscv64' is not one of 'x86_64', 'aarch64'"),
    (["publish", "--cloud", "awz", "--image", "x.raw"], "'awz' is not one of 'aws', 'huawei', 'tencent'"),
    (["publish", "--cloud", "aws", "--upload", "S4", "--image", "x.raw"], "'S4' is not one of 'ebs', 's3'"),
    (["publish", "--cloud", "aws", "--boot-mode", "bios", "--image", "x.raw"], "'bios' is not one of 'uefi'"),
    (["publish", "--cloud", "aws", "--format", "qcow", "--image", "x.raw"], "'qcow' is not one of 'qcow2'"),
    (["images", "list", "--cloud", "gcp", "--region", "x"], "'gcp' is not one of 'aws'"),
    (["build", "--profile", "hpc", "--arch", "i386"], "'i386' is not one of 'x86_64', 'aarch64', 'riscv64'"),
    (["test", "disk.qcow2", "--arch", "riscv64"], "'riscv64' is not one of 'x86_64', 'aarch64'"),
])
def test_a_typo_in_a_choice_is_the_invalid_choice_line_and_exit_2(cli, args, expected):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert expected in result.stderr


def test_publish_format_is_checked_for_the_cloud(cli, monkeypatch):
    from eulerpub.publish import source
    monkeypatch.setitem(source.PREFERRED_FORMATS, "tencent", ("qcow2", "raw"))  # as if CVM took only these
    result = cli("publish", "--cloud", "tencent", "--format", "vmdk", "--image", "x.raw", "--arch", "x86_64")
    assert result.exit_code == 2
    assert result.stderr == "error: --format vmdk: tencent imports qcow2, raw\n"


def test_arch_aliases_still_mean_the_canonical_arch(cli, monkeypatch):
    monkeypatch.chdir(REPO)
    result = cli("build", "--profile", "minimal", "--arch", "ARM64", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["arch"] == "aarch64"


def test_releases_is_the_catalog_with_a_deprecation_line(cli):
    old, new = cli("releases", "--json"), cli("catalog", "list", "--json")
    assert old.exit_code == new.exit_code == 0
    assert old.stdout == new.stdout and json.loads(old.stdout)["images"]
    assert old.stderr == ("warning: `eulerpub releases` is deprecated and will be removed in the next release; "
                          "use `eulerpub catalog list`\n")
    assert new.stderr == ""
    assert "│ releases " not in cli("--help").stdout  # hidden


def test_old_build_dir_and_config_spellings_still_work_with_a_warning(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    builds = tmp_path / "builds"
    old = cli("release", "-c", "release.yaml", "-o", builds, "--only", "profile=minimal", "--dry-run", "--json")
    new = cli("release", "--config", "release.yaml", "--build-dir", builds, "--only", "profile=minimal",
              "--dry-run", "--json")
    assert old.exit_code == new.exit_code == 0, old.stderr
    assert old.stdout == new.stdout
    assert old.stderr.splitlines() == [
        "warning: --output/-o is deprecated and will be removed in the next release; use --build-dir",
        "warning: `eulerpub release -c` is deprecated and will be removed in the next release; use --config (-c "
        "means --cloud in every command)"]
    built = cli("build", "--profile", "minimal", "--output", builds, "--dry-run", "--json")
    assert built.exit_code == 0, built.stderr
    assert json.loads(built.stdout)["directory"].startswith(str(builds))


HEAVY = ("boto3", "botocore", "tencentcloud", "huaweicloudsdk", "alibabacloud", "pydantic", "requests", "jinja2",
         "yaml", "eulerpub.build", "eulerpub.publish", "eulerpub.clouds", "eulerpub.profiles", "eulerpub.manifest")


@pytest.mark.parametrize("argv", [["--help"], ["catalog", "list"], ["catalog", "list", "--json"]])
def test_help_and_the_catalog_import_no_verb_or_sdk(argv):
    """Verbs load when they run: `eulerpub --help` and `eulerpub catalog list` import no SDK, no pydantic (typer
    0.29 would, for every option value: pyproject.toml pins 0.28), no profile or record model, no build or publish
    code (checked in a fresh interpreter, as the console script starts)."""
    probe = ("import sys\nfrom eulerpub.cli.app import main\n"
             f"sys.argv = ['eulerpub', *{argv!r}]\n"
             "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
             f"loaded = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))\n"
             "sys.stderr.write(repr((code, loaded)))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EULERPUB_")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    code, loaded = eval(done.stderr.strip().splitlines()[-1])  # our own repr
    assert code in (0, None)
    assert loaded == []
    assert done.stdout


@pytest.mark.parametrize(("words", "cword", "expected"), [
    ("eulerpub pu", 1, ["publish"]),  # a verb not loaded yet completes from the verb table
    ("eulerpub publish --cloud ", 3, list(ADAPTERS)),  # its choices once it is loaded
    ("eulerpub catalog ", 2, ["list"]),
])
def test_shell_completion_sees_the_lazy_verbs(words, cword, expected):
    env = {**os.environ, "_EULERPUB_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    done = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'eulerpub'; "
                           "from eulerpub.cli.app import main; main()"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == expected, done.stderr


@pytest.mark.parametrize(("typo", "said"), [
    ("releasee", "error: No such command 'releasee'. Did you mean 'release'?\n"),  # not the hidden 'releases'
    ("buidl", "error: No such command 'buidl'. Did you mean 'build'?\n"),
    ("deploy", "error: No such command 'deploy'.\n"),
])
def test_an_unknown_verb_suggests_only_visible_ones(cli, typo, said):
    result = cli(typo)
    assert result.exit_code == 2
    assert result.stderr == said
