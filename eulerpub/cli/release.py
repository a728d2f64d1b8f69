"""`eulerpub release`: build, boot-test and publish the whole matrix in release.yaml; update the release index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from eulerpub import paths, ui
from eulerpub.cli.options import (
    BuildDir,
    DryRun,
    ElementsDir,
    Json,
    Mirror,
    OldBuildDir,
    ProfilesDir,
    build_dir,
    deprecated,
    start,
)
from eulerpub.clouds.base import WaitParams
from eulerpub.errors import EXIT_FAILED, UsageError
from eulerpub.release import config as release_config
from eulerpub.release import index as release_index
from eulerpub.release import matrix, plan, readme, report, runner, wiring

Only = Annotated[list[str] | None, typer.Option(
    "--only", show_default=False, metavar="KEY=VALUE[,VALUE]",
    help="Keep only matching cells (repeatable; keys: profile, release, arch, cloud, region).")]
Skip = Annotated[list[str] | None, typer.Option(
    "--skip", show_default=False, metavar="KEY=VALUE[,VALUE]", help="Drop matching cells (repeatable).")]


def command(
    config: Annotated[Path, typer.Option("--config", help="The release matrix.")]
    = release_config.DEFAULT_CONFIG,
    old_config: Annotated[Path | None, typer.Option("-c", hidden=True)] = None,  # -c is --cloud elsewhere
    only: Only = None,
    skip: Skip = None,
    builds: BuildDir = paths.DEFAULT_BUILD_DIR,
    old_output: OldBuildDir = None,
    releases_dir: Annotated[Path, typer.Option("--releases-dir", help="Where index.json and README.md are kept.")]
    = release_index.DEFAULT_RELEASES_DIR,
    mirror: Mirror = None,
    profiles_dir: ProfilesDir = None,
    elements_dir: ElementsDir = None,
    no_build: Annotated[bool, typer.Option("--no-build", help="Publish existing builds under --build-dir only "
                                           "(e.g. a CI build job's artifacts); build nothing.")] = False,
    no_publish: Annotated[bool, typer.Option("--no-publish", help="Build and boot-test only; publish nothing "
                                             "and leave the index alone.")] = False,
    merge_index: Annotated[list[Path] | None, typer.Option(
        "--merge-index", show_default=False, metavar="INDEX", help="Instead of running cells: fold these index.json "
        "files (from parallel release jobs) into the one in --releases-dir; per cloud region the newer image "
        "wins.")] = None,
    wait_minutes: Annotated[float, typer.Option("--wait-timeout", help="Minutes to wait for an import or a copy "
                                                "before giving up on that cell (a re-run keeps waiting).")]
    = WaitParams.timeout / 60,
    poll_seconds: Annotated[float, typer.Option("--poll-interval", envvar="EULERPUB_POLL_INTERVAL", hidden=True,
                                                help="Seconds between status polls.")] = WaitParams.interval,
    dry_run: DryRun = False,
    json_output: Json = False,
) -> None:
    """Build (or reuse), boot-test and publish every cell of the release matrix, then update the release index.

    A cell is one profile/release/arch published to one import region of one cloud. A build whose boot test
    fails is not published anywhere. Cells are independent: one failing does not stop the others; the
    summary says which failed and the exit code is 1 if any did. Re-runs are cheap: existing builds and
    images are found and reused.

    `--only KEY=VALUE` keeps matching cells and `--skip KEY=VALUE` drops them (repeatable; keys: profile,
    release, arch, cloud, region; comma-separate values).

    Examples:

    - `eulerpub release --dry-run` (the matrix of ./release.yaml, what would be built and published)
    - `eulerpub release --only cloud=aws --skip arch=aarch64 --dry-run`
    - `eulerpub release --no-publish --build-dir /srv/builds` (a build job), then
      `eulerpub release --no-build --build-dir /srv/builds --json` (the publish job)
    - `eulerpub release --merge-index a/index.json --merge-index b/index.json`
    """
    start(json_output)
    output = build_dir(builds, old_output)
    if old_config is not None:
        deprecated("`eulerpub release -c`", "--config (-c means --cloud in every command)")
        config = old_config
    if merge_index:
        _merge_indexes(releases_dir, merge_index, json_output)
        return
    if no_build and no_publish:
        raise UsageError("--no-build with --no-publish leaves nothing to do but the boot test; drop one")
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

    steps = wiring.default_steps(profiles, build_dir=output, mirror=mirror, build=not no_build,
                                 wait=WaitParams(timeout=wait_minutes * 60, interval=poll_seconds),
                                 elements_dirs=[*(elements_dir or []),
                                                *paths.path_list_from_env("EULERPUB_ELEMENTS_PATH")])
    results = runner.run_cells(the_plan, steps, publish=not no_publish)
    index_path = releases_dir / release_index.INDEX_NAME
    if not no_publish:
        current = release_index.read_index(index_path)
        updated = release_index.merge(current, release_index.entries_from_results(results), now=datetime.now(UTC))
        if updated is not current or not index_path.exists():
            readme.write_release_pages(releases_dir, updated)
    if json_output:
        ui.emit_json({"ok": runner.exit_ok(results), "index": str(index_path),
                      "cells": report.results_to_json(results)})
    else:
        print(report.render_summary(results))
        if not no_publish:
            print(f"release index: {index_path}")
    if not runner.exit_ok(results):
        raise typer.Exit(EXIT_FAILED)


def _merge_indexes(releases_dir: Path, others: list[Path], json_output: bool) -> None:
    index_path = releases_dir / release_index.INDEX_NAME
    for other in others:
        if not other.is_file():
            raise UsageError(f"--merge-index {other}: no such file")
    current = release_index.read_index(index_path)
    combined = release_index.combine(current, [release_index.read_index(p) for p in others], now=datetime.now(UTC))
    changed = combined is not current
    if changed or not index_path.exists():
        readme.write_release_pages(releases_dir, combined)
    if json_output:
        ui.emit_json({"index": str(index_path), "changed": changed})
    else:
        print(f"release index: {index_path} ({'updated' if changed else 'unchanged'})")
