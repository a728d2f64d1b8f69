"""`release.yaml`: the release matrix (profiles x releases x arches x clouds with their regions) and its limits.

Every problem is a `ConfigError` naming the file and the key, e.g.
`release.yaml: clouds.aws.copy_to[1]: expected a string, got 3`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eulerpub.configfile import describe, read_mapping
from eulerpub.errors import ConfigError, UsageError
from eulerpub.profiles import Arch, CloudName, Profile, check_cloud_targets, check_releases, load_profile

DEFAULT_CONFIG = Path("release.yaml")
# One DIB build at a time runs anyway; the limit bounds boot tests and publishes running beside it.
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 32  # more parallel publishes than this only meets the clouds' API throttling sooner

Dimension = Literal["profile", "release", "arch", "cloud", "region"]
DIMENSIONS: tuple[Dimension, ...] = ("profile", "release", "arch", "cloud", "region")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CloudTarget(_Strict):
    """Where a release goes on one cloud. A field left out takes the profile's value (`clouds.<cloud>` there)."""

    regions: list[str] | None = Field(None, min_length=1, description="regions to import into, one cell each")
    copy_to: list[str] | None = Field(None, description="regions each imported image is copied to")
    share: list[str] | None = Field(None, description="accounts/projects allowed to launch the images")
    public: bool | None = Field(None, description="make the images launchable by everyone")
    bucket: str | None = Field(None, description="object storage bucket in the import region for the upload")
    agency: str | None = Field(None, description="Huawei only: the IAM agency IMS copies images with")

    @field_validator("regions", "copy_to", "share")
    @classmethod
    def _no_duplicates(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and len(set(values)) != len(values):
            duplicate = next(v for v in values if values.count(v) > 1)
            raise ValueError(f"{duplicate!r} is listed twice")
        return values


class ReleaseConfig(_Strict):
    """The whole matrix. Cells are profiles x releases x arches x (cloud, region), less `exclude`."""

    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    profiles: list[str] = Field(min_length=1)
    releases: list[str] = Field(min_length=1)
    arches: list[Arch] = Field(min_length=1)
    clouds: dict[CloudName, CloudTarget] = Field(min_length=1)
    exclude: list[dict[Dimension, str]] = Field(default_factory=list,
                                                description="partial cells to leave out, e.g. {arch: aarch64}")

    @field_validator("profiles", "releases", "arches")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            duplicate = next(v for v in values if values.count(v) > 1)
            raise ValueError(f"{duplicate!r} is listed twice")
        return values

    @model_validator(mode="after")
    def _exclude_names_known_values(self) -> ReleaseConfig:
        known: dict[str, set[str]] = {"profile": set(self.profiles), "release": set(self.releases),
                                      "arch": set(self.arches), "cloud": set(self.clouds)}
        for number, rule in enumerate(self.exclude):
            if not rule:
                raise ValueError(f"exclude[{number}] is empty (it would exclude every cell)")
            for dimension, value in rule.items():
                if dimension in known and value not in known[dimension]:
                    raise ValueError(f"exclude[{number}].{dimension}: {value!r} is not in the matrix's "
                                     f"{dimension} list")
        return self


def load_config(path: Path) -> ReleaseConfig:
    """Read and validate a release config; a ConfigError names the file and the key of the first problem."""
    data = read_mapping(path, missing="no such release config; pass --config or create it")
    try:
        config = ReleaseConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(path, exc)) from None
    check_releases(path, config.releases)
    check_cloud_targets(path, {cloud: (t.regions, t.copy_to, t.share) for cloud, t in config.clouds.items()})
    return config


def load_profiles(config: ReleaseConfig, source: Path, extra_dirs: Sequence[Path] = ()) -> dict[str, Profile]:
    """Each profile the config lists, loaded and merged; an unknown one is a ConfigError naming `source`."""
    profiles: dict[str, Profile] = {}
    for number, name in enumerate(config.profiles):
        try:
            profiles[name] = load_profile(name, extra_dirs)
        except ConfigError:
            raise
        except UsageError as exc:
            raise ConfigError(f"{source}: profiles[{number}]: {exc.message}") from None
    return profiles
