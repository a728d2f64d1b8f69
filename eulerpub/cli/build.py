"""`eulerpub build`: make a cloud image from the official openEuler qcow2 with diskimage-builder."""

from __future__ import annotations

import functools
import shlex
from typing import Annotated

import typer

from eulerpub import build as build_stage
from eulerpub import catalog, paths, ui
from eulerpub.cli.fetch import Connections
from eulerpub.cli.options import (
    BuildDir,
    DryRun,
    ElementsDir,
    Json,
    Mirror,
    OldBuildDir,
    ProfilesDir,
    Release,
    arch_option,
    build_dir,
    start,
)
from eulerpub.fetch import DEFAULT_CONNECTIONS, fetch_base
from eulerpub.profiles import load_profile

Arch = arch_option(catalog.ARCHES, "Architecture to build (default: the profile's first arches entry).")


def command(
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile to build (see `eulerpub profiles list`).",
                                         show_default=False)],
    release: Release = None,
    arch: Arch = None,
    builds: BuildDir = paths.DEFAULT_BUILD_DIR,
    old_output: OldBuildDir = None,
    mirror: Mirror = None,
    profiles_dir: ProfilesDir = None,
    elements_dir: ElementsDir = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if a build of the same inputs exists.")]
    = False,
    trace: Annotated[bool, typer.Option("--trace", help="Run disk-image-create with -x (shell trace).")] = False,
    dry_run: DryRun = False,
    connections: Connections = DEFAULT_CONNECTIONS,
    json_output: Json = False,
) -> None:
    """Build the image a profile describes: fetch the base, run diskimage-builder, convert, write the record.

    An unchanged profile with unchanged inputs (base image, elements, diskimage-builder) is not rebuilt:
    the existing build is reported as reused. `--dry-run` prints the plan and the exact DIB command. The
    build lands in `--build-dir` (default `build/`) as `<build id>/manifest.json` plus the image files; the
    release and arch default to the profile's first.

    Examples:

    - `eulerpub build --profile hpc`
    - `eulerpub build -p minimal -r 22.03-LTS-SP4 -a aarch64 --build-dir /srv/builds`
    - `eulerpub build -p hpc --dry-run` (the plan and the disk-image-create command, nothing run)
    - `eulerpub build -p my-hpc --profiles-dir ./profiles --elements-dir ./elements --json | jq -r .record`
    """
    start(json_output)
    output = build_dir(builds, old_output)
    extra_elements = [*(elements_dir or []), *paths.path_list_from_env("EULERPUB_ELEMENTS_PATH")]
    prof = load_profile(profile, profiles_dir or [])
    if dry_run:
        plan = build_stage.plan_build(prof, release=release, arch=arch, output=output, mirror=mirror,
                                      elements_dirs=extra_elements, fetch=False, trace=trace)
        described = plan.describe()
        if json_output:
            ui.emit_json({"status": "planned", **described})
            return
        _print_plan(plan)
        return

    plan = build_stage.plan_build(prof, release=release, arch=arch, output=output, mirror=mirror,
                                  elements_dirs=extra_elements, trace=trace,
                                  fetcher=functools.partial(fetch_base, connections=connections))
    with ui.status(f"building {plan.image_name}") as update:
        result = build_stage.run_build(plan, force=force, on_phase=lambda text: update(f"DIB {text}"))
    record = result.record
    status = "reused" if result.reused else "built"
    if json_output:
        ui.emit_json({"status": status, "build_id": record.build_id, "record": str(result.record_path),
                      "seconds": round(result.seconds, 1),
                      "artifacts": [a.model_dump() for a in record.artifacts]})
        return
    ui.out_console.print(f"{status} {record.build_id}: {result.record_path}")
    for artifact in record.artifacts:
        ui.out_console.print(f"  {artifact.format:5} {result.record_path.parent / artifact.path}  "
                             f"sha256 {artifact.sha256}")


def _print_plan(plan: build_stage.BuildPlan) -> None:
    out = ui.out_console
    out.print(f"profile   {plan.profile.name}  release {plan.release}  arch {plan.arch}")
    out.print(f"base      {plan.base.url}")
    out.print(f"          {plan.base.path or '(not fetched yet: a real run downloads and verifies it)'}")
    out.print(f"elements  {' '.join(plan.elements)}")
    out.print(f"formats   {' '.join(plan.formats)}")
    out.print(f"build id  {plan.build_id}  ->  {plan.final_dir}")
    out.print("DIB command:")
    for key, value in sorted(plan.command.env.items()):
        out.print(f"  {key}={shlex.quote(value)} \\")
    out.print(f"  {shlex.join(plan.command.argv)}")
