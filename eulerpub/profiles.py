"""Profiles: what to build (elements, packages, formats) and where to publish it, composed with `extends:`.

A profile is a YAML file `NAME.yaml` in a profiles directory. Directories are searched in order:
`--profiles-dir` options, then `EULERPUB_PROFILES_PATH` (colon separated), then eulerpub's own.
`extends:` names one profile or a list; parents are merged left to right, then the child on top.
Mappings merge key by key; the additive lists (elements, packages, checks) append without duplicates;
every other value replaces its parent's.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eulerpub.configfile import describe, read_mapping
from eulerpub.errors import ConfigError, UsageError
from eulerpub.paths import builtin_profiles_dir, path_list_from_env

ADDITIVE_KEYS = ("elements", "packages", "checks")
NAME_FIELDS = frozenset({"release", "arch", "profile", "date", "build_id"})

Format = Literal["qcow2", "raw", "vmdk", "vhd"]
Arch = Literal["x86_64", "aarch64", "riscv64"]
CloudName = Literal["aws", "huawei", "tencent"]
CLOUDS: tuple[CloudName, ...] = ("aws", "huawei", "tencent")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CloudDefaults(_Strict):
    """Where and how a profile's images are published on one cloud; CLI options override each field."""

    regions: list[str] = Field(default_factory=list, description="regions to import into (first is the source)")
    copy_to: list[str] = Field(default_factory=list, description="more regions to copy the image to")
    share: list[str] = Field(default_factory=list, description="accounts/projects to share with")
    public: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    bucket: str | None = Field(None, description="object storage bucket for the upload (S3/OBS/COS)")
    upload: Literal["ebs", "s3"] | None = Field(None, description="AWS only: EBS direct or S3 + VM Import")
    boot_mode: Literal["uefi", "legacy-bios", "uefi-preferred"] | None = None
    format: Format | None = Field(None, description="which built artifact to upload")


class Profile(_Strict):
    name: str
    description: str = ""
    base_element: str = Field("openeuler", description="the DIB element that provides the operating system")
    releases: list[str] = Field(min_length=1)
    arches: list[Arch] = Field(min_length=1)
    elements: list[str] = Field(default_factory=list)
    packages: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="environment for the elements")
    image_size_gb: int | None = Field(None, ge=2, le=1024)
    formats: list[Format] = Field(default_factory=lambda: ["qcow2"], min_length=1)
    name_template: str = "openEuler-{release}-{arch}-{profile}-{date}"
    checks: list[str] = Field(default_factory=list, description="boot-test checks beyond the basic ones")
    clouds: dict[CloudName, CloudDefaults] = Field(default_factory=dict)

    @field_validator("name_template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        unknown = fields - NAME_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; use {sorted(NAME_FIELDS)}")
        if not template.startswith("openEuler-{release}-"):
            raise ValueError("must start with 'openEuler-{release}-' (consumers search images by that prefix)")
        return template

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if not key.replace("_", "").isalnum() or key[0].isdigit():
                raise ValueError(f"{key!r} is not a valid environment variable name")
        return env

    def cloud(self, name: CloudName) -> CloudDefaults:
        return self.clouds.get(name, CloudDefaults())

    def image_name(self, release: str, arch: str, *, on: date | None = None, build_id: str = "") -> str:
        return self.name_template.format(release=release, arch=arch, profile=self.name,
                                         date=(on or date.today()).strftime("%Y%m%d"), build_id=build_id[:12])

    def check_target(self, release: str | None, arch: str | None) -> tuple[str, str]:
        """Pick the release and arch to build: the given ones (which the profile must list) or its first."""
        chosen_release = release or self.releases[0]
        chosen_arch = arch or self.arches[0]
        if chosen_release not in self.releases:
            raise UsageError(f"profile {self.name!r} does not build release {chosen_release!r}; "
                             f"it lists {', '.join(self.releases)}")
        if chosen_arch not in self.arches:
            raise UsageError(f"profile {self.name!r} does not build arch {chosen_arch!r}; "
                             f"it lists {', '.join(self.arches)}")
        return chosen_release, chosen_arch


@dataclass(frozen=True)
class ProfileSource:
    name: str
    path: Path


def search_path(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    return [*extra_dirs, *path_list_from_env("EULERPUB_PROFILES_PATH"), builtin_profiles_dir()]


def list_profiles(extra_dirs: Sequence[Path] = ()) -> list[ProfileSource]:
    """Every profile on the search path; a name found twice is the first one's."""
    found: dict[str, ProfileSource] = {}
    for directory in search_path(extra_dirs):
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, ProfileSource(path.stem, path))
    return sorted(found.values(), key=lambda s: s.name)


def find_profile(name: str, extra_dirs: Sequence[Path] = ()) -> ProfileSource:
    for source in list_profiles(extra_dirs):
        if source.name == name:
            return source
    known = ", ".join(s.name for s in list_profiles(extra_dirs)) or "none"
    raise UsageError(f"unknown profile {name!r}; known profiles: {known}")


def load_profile(name: str, extra_dirs: Sequence[Path] = ()) -> Profile:
    """Load, merge (`extends:`) and validate a profile; every problem is a ConfigError naming file and key."""
    source = find_profile(name, extra_dirs)
    merged = _resolve(source, extra_dirs, chain=())
    merged["name"] = source.name
    try:
        return Profile.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe(source.path, exc)) from None


def _read(path: Path) -> dict[str, Any]:
    data = read_mapping(path)
    if "name" in data:
        raise ConfigError(f"{path}: name: not allowed, a profile is named by its file name")
    return data


def _resolve(source: ProfileSource, extra_dirs: Sequence[Path], chain: tuple[str, ...]) -> dict[str, Any]:
    if source.name in chain:
        cycle = " -> ".join((*chain, source.name))
        raise ConfigError(f"{source.path}: extends: cycle {cycle}")
    data = _read(source.path)
    parents = data.pop("extends", [])
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ConfigError(f"{source.path}: extends: expected a profile name or a list of names")
    merged: dict[str, Any] = {}
    for parent in parents:
        try:
            parent_source = find_profile(parent, extra_dirs)
        except UsageError:
            raise ConfigError(f"{source.path}: extends: unknown profile {parent!r}") from None
        merged = merge(merged, _resolve(parent_source, extra_dirs, (*chain, source.name)))
    return merge(merged, data)


def merge(base: dict[str, Any], top: dict[str, Any], *, _path: tuple[str, ...] = ()) -> dict[str, Any]:
    """Merge `top` onto `base` (pure): mappings recurse, additive lists append, the rest replaces."""
    result = dict(base)
    for key, value in top.items():
        old = result.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            result[key] = merge(old, value, _path=(*_path, key))
        elif not _path and key in ADDITIVE_KEYS and isinstance(old, list) and isinstance(value, list):
            result[key] = list(dict.fromkeys([*old, *value]))
        else:
            result[key] = value
    return result
