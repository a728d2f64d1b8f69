"""The plan: which images a release run builds, boot-tests and publishes where. Pure; `--dry-run` prints it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eulerpub.release.matrix import BuildKey, Cell


@dataclass(frozen=True)
class PlannedBuild:
    """One build and boot test, and the cells that publish it (none is published if its boot test fails)."""

    key: BuildKey
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Plan:
    builds: tuple[PlannedBuild, ...]
    concurrency: int

    @property
    def cells(self) -> list[Cell]:
        return [cell for build in self.builds for cell in build.cells]


def make_plan(cells: Sequence[Cell], concurrency: int) -> Plan:
    """Group cells by build, keeping the matrix order of both builds and cells."""
    grouped: dict[BuildKey, list[Cell]] = {}
    for cell in cells:
        grouped.setdefault(cell.build, []).append(cell)
    return Plan(tuple(PlannedBuild(key, tuple(group)) for key, group in grouped.items()), concurrency)


def describe_target(cell: Cell) -> str:
    """`copy to a, b; share 1234; public`, or `private`."""
    parts = [f"upload via {cell.bucket}"] if cell.bucket else []
    if cell.copy_to:
        parts.append(f"copy to {', '.join(cell.copy_to)}")
    if cell.share:
        parts.append(f"share with {', '.join(cell.share)}")
    parts.append("public" if cell.public else "private")
    return "; ".join(parts)


def render_plan(plan: Plan) -> str:
    """The plan as text, one block per build, one line per cell."""
    if not plan.builds:
        return "release plan: nothing to do (the filters leave no cell)"
    lines = [f"release plan: {len(plan.cells)} cell(s) from {len(plan.builds)} build(s); up to {plan.concurrency} "
             f"boot test(s) and upload(s) at once, one build at a time"]
    width_cloud = max(len(c.cloud) for c in plan.cells)
    width_region = max(len(c.region) for c in plan.cells)
    for build in plan.builds:
        lines.append(f"build {build.key.profile} {build.key.release} {build.key.arch} (or reuse its record) "
                     f"-> boot test -> publish:")
        lines.extend(f"    {cell.cloud:<{width_cloud}}  {cell.region:<{width_region}}  {describe_target(cell)}"
                     for cell in build.cells)
    return "\n".join(lines)


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "concurrency": plan.concurrency,
        "builds": [
            {"profile": b.key.profile, "release": b.key.release, "arch": b.key.arch,
             "cells": [{"cloud": c.cloud, "region": c.region, "copy_to": list(c.copy_to), "share": list(c.share),
                        "public": c.public, "bucket": c.bucket} for c in b.cells]}
            for b in plan.builds
        ],
    }
