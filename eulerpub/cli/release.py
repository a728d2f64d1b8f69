"""`eulerpub release`: build, boot-test and publish the whole matrix in release.yaml; update the release index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from eulerpub import paths, ui
from eulerpub.cli.options import BuildDir, DryRun, Json, Mirror, ProfilesDir, start
from eulerpub.errors import EXIT_FAILED
from eulerpub.release import config as release_config
from eulerpub.release import index as release_index
from eulerpub.release import matrix, plan, readme, report, runner, wiring

Filters = Annotated[list[str] | None, typer.Option(show_default=False, metavar="KEY=VALUE[,VALUE]")]


def command(
    config: Annotated[Path, typer.Option("--config", "-c", help="The release matrix.")]
    = release_config.DEFAULT_CONFIG,
    only: Filters = None,
    skip: Filters = None,
    output: BuildDir = paths.DEFAULT_BUILD_DIR,
    releases_dir: Annotated[Path, typer.Option("--releases-dir", help="Where index.json and README.md are kept.")]
    = release_index.DEFAULT_RELEASES_DIR,
    mirror: Mirror = None,
    profiles_dir: ProfilesDir = None,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Build (or reuse), boot-test and publish every cell of the release matrix, then update the release index.

    A cell is one profile/release/arch published to one import region of one cloud. A build whose boot test
    fails is not published anywhere. Cells are independent: one failing does not stop the others; the
    summary says which failed and the exit code is 1 if any did. Re-runs are cheap: existing builds and
    images are found and reused.

    `--only KEY=VALUE` keeps matching cells and `--skip KEY=VALUE` drops them (repeatable; keys: profile,
    release, arch, cloud, region; comma-separate values). Example:
    `eulerpub release --only cloud=aws --skip arch=aarch64 --dry-run`
    """
    start(json_output)
    loaded = release_config.load_config(config)
    profiles = release_config.load_profiles(loaded, config, profiles_dir or [])
    cells = matrix.select(matrix.expand(loaded, profiles, source=config),
                          [matrix.parse_filter(f) for f in only or []], [matrix.parse_filter(f) for f in skip or []])
    the_plan = plan.make_plan(cells, loaded.concurrency)
    if dry_run:
        if json_output:
            ui.emit_json({"status": "planned", **plan.plan_to_json(the_plan)})
        else:
            print(plan.render_plan(the_plan))
        return

    steps = wiring.default_steps(profiles, build_dir=output, mirror=mirror,
                                 elements_dirs=paths.path_list_from_env("EULERPUB_ELEMENTS_PATH"))
    results = runner.run_cells(the_plan, steps)
    index_path = releases_dir / release_index.INDEX_NAME
    current = release_index.read_index(index_path)
    updated = release_index.merge(current, release_index.entries_from_results(results), now=datetime.now(UTC))
    if updated is not current or not index_path.exists():
        readme.write_release_pages(releases_dir, updated)
    if json_output:
        ui.emit_json({"ok": runner.exit_ok(results), "index": str(index_path),
                      "cells": report.results_to_json(results)})
    else:
        print(report.render_summary(results))
        print(f"release index: {index_path}")
    if not runner.exit_ok(results):
        raise typer.Exit(EXIT_FAILED)
