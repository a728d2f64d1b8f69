"""Benchmarks are collected only when this directory (or a file in it) is named on the command line, as
`make bench` does (`pytest tests/bench -s`). The normal run over `tests/` never picks them up: they take
minutes and measure rather than check. Benchmark files are named `bench_*.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if parent.session.isinitpath(file_path):
        return None  # named on the command line: pytest collects it itself
    if file_path.name.startswith("bench_") and file_path.suffix == ".py" and _bench_requested(parent.config):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def _bench_requested(config: pytest.Config) -> bool:
    base = config.invocation_params.dir
    named = [(base / arg.split("::", 1)[0]).resolve() for arg in config.args]
    return any(path == HERE or HERE in path.parents for path in named)
