"""How long `eulerpub` takes to start, against `python -c pass`: the price of every call before any work.

Run with `make bench` (or `pytest tests/bench/bench_startup.py -s`). Prints, per command, the median and best
wall time of ROUNDS runs of a new process, the ratio to a bare interpreter, and the heaviest imports of the
CLI (`python -X importtime`). No thresholds: it measures; it asserts only that each command succeeded.

Contestants (rounds interleaved, so a busy host slows them alike):
- python -c pass:            the interpreter alone, the floor.
- python -S -c pass:         without `site` (the venv's paths and .pth files): what `site` costs of that floor.
- import typer + its help:   `typer.main` and `typer.rich_utils` (rich, markdown-it, pygments, rich.traceback),
                             which every help page needs: the floor under `eulerpub --help` that is not ours.
- eulerpub --help:           the console script: the verb table, typer and rich, help rendering.
- eulerpub --help via -c:    the same through `python -c`, so the console script's own cost shows (pip's wrapper
                             imports only `main`; no importlib.metadata).
- eulerpub catalog list:     a real command with output (no network); `--json` too.
- eulerpub publish --help:   a verb that loads its module (pydantic models, the publish core; no SDK).

The children run with bytecode writing allowed (PYTHONDONTWRITEBYTECODE dropped): an installed eulerpub has its
.pyc files, and an editable checkout gets them (git-ignored) in the warm-up round instead of compiling each run.

EULERPUB_BENCH_SRC=/path/to/an/eulerpub/checkout measures that tree instead (e.g. `git worktree add /tmp/old
HEAD~5`), through `python -c 'from eulerpub.cli.app import main; main()'` with it first on PYTHONPATH: how
the numbers before and after a change are taken on the same host. Such a tree without `catalog list` runs
`releases`, its old name. Another typer for it: `pip install --no-deps --target /tmp/typer029 typer==0.29.2` and
PYTHONPATH=/tmp/typer029 (the tree still comes first).
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = int(os.environ.get("EULERPUB_BENCH_ROUNDS", "10"))
SOURCE = os.environ.get("EULERPUB_BENCH_SRC")
EULERPUB = Path(sys.executable).with_name("eulerpub")
MAIN = "import sys; sys.argv[0] = 'eulerpub'; from eulerpub.cli.app import main; main()"


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EULERPUB_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "100"
    if SOURCE:
        env["PYTHONPATH"] = os.pathsep.join([SOURCE, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _eulerpub(*args: str) -> list[str]:
    return [sys.executable, "-c", MAIN, *args] if SOURCE else [str(EULERPUB), *args]


def _catalog() -> list[str]:
    tree = Path(SOURCE) if SOURCE else Path(__file__).resolve().parents[2]
    module = tree / "eulerpub" / "cli" / "catalog.py"
    has_list = module.is_file() and "def list_command" in module.read_text()
    return ["catalog", "list"] if has_list else ["releases"]


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run; CPU time is what a busy host inflates least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=os.sep, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _heaviest_imports(env: dict[str, str], count: int = 8, runs: int = 5) -> list[tuple[float, str]]:
    """What `eulerpub --help` imports, with what those import directly, by cumulative microseconds (the median of
    `runs` runs): eulerpub.cli.app at start, typer.rich_utils when the help is rendered."""
    seen: dict[str, list[int]] = {}
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", MAIN, "--help"], env=env, cwd=os.sep,
                              capture_output=True, text=True, check=True)  # cwd: not this checkout
        for line in done.stderr.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
            if match and len(match.group(2)) <= 3:  # a module imported at top level and what it imports directly
                seen.setdefault(match.group(3), []).append(int(match.group(1)))
    return sorted(((statistics.median(v), k) for k, v in seen.items()), reverse=True)[:count]


def test_startup_against_a_bare_interpreter():
    env = _environment()
    contestants = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -S -c pass": [sys.executable, "-S", "-c", "pass"],
        "import typer + its help": [sys.executable, "-c", "import typer.main, typer.rich_utils"],
        "eulerpub --help": _eulerpub("--help"),
        "eulerpub --help via -c": [sys.executable, "-c", MAIN, "--help"],
        f"eulerpub {' '.join(_catalog())}": _eulerpub(*_catalog()),
        f"eulerpub {' '.join(_catalog())} --json": _eulerpub(*_catalog(), "--json"),
        "eulerpub publish --help": _eulerpub("publish", "--help"),
    }
    for argv in contestants.values():  # warm the page cache and .pyc files; not counted
        _timed(argv, env)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in contestants}
    for _ in range(ROUNDS):
        for name, argv in contestants.items():
            times[name].append(_timed(argv, env))

    floor = statistics.median(wall for wall, _ in times["python -c pass"])
    print(f"\nstart-up, {ROUNDS} rounds{' of ' + SOURCE if SOURCE else ''}, load {os.getloadavg()[0]:.1f}: "
          "wall median / best (ratio of the median to python -c pass), CPU median")
    for name, samples in times.items():
        walls = [wall for wall, _ in samples]
        median, cpu = statistics.median(walls), statistics.median(c for _, c in samples)
        print(f"  {name:<34} {median * 1000:6.0f} ms / {min(walls) * 1000:4.0f} ms  (x{median / floor:4.1f})  "
              f"cpu {cpu * 1000:4.0f} ms")
    print("heaviest imports of eulerpub --help (cumulative, median of 5 runs):")
    for micros, module in _heaviest_imports(env, count=12):
        print(f"  {micros / 1000:7.1f} ms  {module}")
    assert all(len(samples) == ROUNDS for samples in times.values())
