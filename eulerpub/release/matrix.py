"""The release matrix as cells, and the `--only` / `--skip` filters over them. Pure: no I/O.

A cell is one (profile, release, arch) build published to one import region of one cloud, with that region's
copies, shares and public flag. Cells of the same build share one build and one boot test.
Filters name a dimension and values: `--only cloud=aws,huawei` keeps cells whose cloud is either;
`--only` filters on different dimensions must all match; a cell matching any `--skip` is dropped.
The `region` dimension names import regions: a copy_to region is part of its source cell, not a cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import get_args

from eulerpub.errors import ConfigError, UsageError
from eulerpub.profiles import Profile
from eulerpub.release.config import DIMENSIONS, Dimension, ReleaseConfig


@dataclass(frozen=True, order=True)
class BuildKey:
    """One profile/release/arch: built and boot-tested once for all its cells; its published images replace
    each other (what prune keeps the newest of)."""

    profile: str
    release: str
    arch: str

    def __str__(self) -> str:
        return f"{self.profile}/{self.release}/{self.arch}"


@dataclass(frozen=True)
class Cell:
    profile: str
    release: str
    arch: str
    cloud: str
    region: str
    copy_to: tuple[str, ...] = ()
    share: tuple[str, ...] = ()
    public: bool = False
    bucket: str | None = None  # the upload's bucket (None: the profile's, or none needed: AWS EBS direct)
    agency: str | None = None  # Huawei: the IAM agency for cross-region copies (None: the profile's)

    @property
    def build(self) -> BuildKey:
        return BuildKey(self.profile, self.release, self.arch)

    @property
    def regions(self) -> tuple[str, ...]:
        """Every region this cell leaves an image in: the import region first, then the copies."""
        return (self.region, *self.copy_to)

    @property
    def key(self) -> str:
        return f"{self.profile}/{self.release}/{self.arch}/{self.cloud}/{self.region}"

    def value(self, dimension: Dimension) -> str:
        return str(getattr(self, dimension))


def expand(config: ReleaseConfig, profiles: Mapping[str, Profile], *, source: Path) -> list[Cell]:
    """Every cell of the matrix, in config order. `profiles` holds each listed profile, loaded; a cell its
    profile cannot build, or a cloud with no regions here or in the profile, is a ConfigError naming `source`."""
    cells: list[Cell] = []
    for profile_name, release, arch in product(config.profiles, config.releases, config.arches):
        profile = profiles[profile_name]
        partial = {"profile": profile_name, "release": release, "arch": arch}
        if _excluded(config, partial):
            continue
        _check_profile_builds(profile, release, arch, config, source)
        for cloud, target in config.clouds.items():
            if _excluded(config, {**partial, "cloud": cloud}):
                continue
            defaults = profile.cloud(cloud)
            regions = target.regions if target.regions is not None else defaults.regions
            copy_to = target.copy_to if target.copy_to is not None else defaults.copy_to
            share = target.share if target.share is not None else defaults.share
            public = target.public if target.public is not None else defaults.public
            bucket = target.bucket if target.bucket is not None else defaults.bucket
            agency = target.agency if target.agency is not None else defaults.agency
            _check_regions(cloud, profile_name, regions, copy_to, source)
            for region in regions:
                if _excluded(config, {**partial, "cloud": cloud, "region": region}):
                    continue
                cells.append(Cell(profile_name, release, arch, cloud, region, tuple(copy_to), tuple(share), public,
                                  bucket, agency))
    return cells


def _excluded(config: ReleaseConfig, values: Mapping[str, str]) -> bool:
    """True when some exclude rule names only dimensions in `values`, all matching."""
    return any(rule.keys() <= values.keys() and all(values[d] == v for d, v in rule.items())
               for rule in config.exclude)


def _check_profile_builds(profile: Profile, release: str, arch: str, config: ReleaseConfig, source: Path) -> None:
    if release not in profile.releases:
        raise ConfigError(f"{source}: releases[{config.releases.index(release)}]: profile {profile.name!r} does "
                          f"not build {release!r} (it lists {', '.join(profile.releases)}); add an exclude rule")
    if arch not in profile.arches:
        raise ConfigError(f"{source}: arches[{config.arches.index(arch)}]: profile {profile.name!r} does not "
                          f"build {arch!r} (it lists {', '.join(profile.arches)}); add an exclude rule")


def _check_regions(cloud: str, profile: str, regions: Sequence[str], copy_to: Sequence[str], source: Path) -> None:
    if not regions:
        raise ConfigError(f"{source}: clouds.{cloud}.regions: not set here nor in profile {profile!r}")
    both = sorted(set(regions) & set(copy_to))
    if both:
        raise ConfigError(f"{source}: clouds.{cloud}.copy_to: {both[0]!r} is also an import region")
    if copy_to and len(regions) > 1:
        raise ConfigError(f"{source}: clouds.{cloud}: with copy_to, list one import region (every import region "
                          f"would copy into the same regions)")


@dataclass(frozen=True)
class Filter:
    """`dimension=value[,value...]` from `--only` or `--skip`."""

    dimension: Dimension
    values: frozenset[str]

    def matches(self, cell: Cell) -> bool:
        return cell.value(self.dimension) in self.values

    def __str__(self) -> str:
        return f"{self.dimension}={','.join(sorted(self.values))}"


def parse_filter(text: str) -> Filter:
    """Parse `k=v[,v...]`; a UsageError says what the dimensions are."""
    dimension, sep, raw = text.partition("=")
    dimension = dimension.strip()
    values = frozenset(v.strip() for v in raw.split(",") if v.strip())
    if not sep or not values:
        raise UsageError(f"filter {text!r} is not KEY=VALUE[,VALUE...]; keys are {', '.join(DIMENSIONS)}")
    if dimension not in get_args(Dimension):
        raise UsageError(f"filter {text!r}: unknown key {dimension!r}; keys are {', '.join(DIMENSIONS)}")
    return Filter(dimension, values)  # type: ignore[arg-type]


def select(cells: Sequence[Cell], only: Iterable[Filter] = (), skip: Iterable[Filter] = ()) -> list[Cell]:
    """The cells the filters keep, in matrix order. A filter value that names no cell of the matrix is a
    UsageError (a typo would otherwise silently select nothing, or everything)."""
    only, skip = list(only), list(skip)
    for flag, filters in (("--only", only), ("--skip", skip)):
        for selector in filters:
            _check_known(flag, selector, cells)
    wanted: dict[str, set[str]] = {}
    for selector in only:
        wanted.setdefault(selector.dimension, set()).update(selector.values)
    return [cell for cell in cells
            if all(cell.value(d) in values for d, values in wanted.items())  # type: ignore[arg-type]
            and not any(selector.matches(cell) for selector in skip)]


def _check_known(flag: str, selector: Filter, cells: Sequence[Cell]) -> None:
    present = {cell.value(selector.dimension) for cell in cells}
    for value in sorted(selector.values - present):
        hint = ""
        if selector.dimension == "region" and any(value in cell.copy_to for cell in cells):
            hint = " (it is a copy_to region; region filters name import regions)"
        raise UsageError(f"{flag} {selector.dimension}={value} matches no cell{hint}; "
                         f"{selector.dimension} values are {', '.join(sorted(present)) or 'none'}")
