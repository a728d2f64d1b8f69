"""Profiles: what to build (elements, packages, formats) and where to publish it, composed with `extends:`.

A profile is a YAML file `NAME.yaml` in a profiles directory. Directories are searched in order:
`--profiles-dir` options, then `EULERPUB_PROFILES_PATH` (colon separated), then eulerpub's own.
`extends:` names one profile or a list; parents are merged left to right, then the child on top.
Mappings merge key by key; the additive lists (elements, packages, optional_packages, checks) append without
duplicates;
every other value replaces its parent's.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eulerpub import catalog
from eulerpub.configfile import describe, read_mapping
from eulerpub.errors import ConfigError, UsageError, quote
from eulerpub.paths import builtin_profiles_dir, path_list_from_env

log = logging.getLogger(__name__)

ADDITIVE_KEYS = ("elements", "packages", "optional_packages", "checks")
NAME_FIELDS = frozenset({"release", "arch", "profile", "date", "build_id"})
# What a profile may name. An element is a directory name on ELEMENTS_PATH, never a path; a package is an RPM
# name (disk-image-create joins them with commas into one -p argument: no commas, spaces or leading dashes).
PROFILE_NAME = re.compile(r"^\w[\w.-]{0,63}$")  # the file name's stem
ELEMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PACKAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$")
# `env:` reaches the element scripts only: variables meant for elements (diskimage-builder's DIB_* and
# eulerpub's own DIB_EULER_*). Never PATH, LD_PRELOAD, ELEMENTS_PATH and the like, which steer the host side.
ENV_NAME = re.compile(r"^DIB_[A-Z0-9_]{1,64}$")
# DIB_* variables eulerpub sets itself (the base image, its digest, the cache, the mirror) or that choose a
# host executable: a profile setting them would swap the verified base or run a host program of its choice.
RESERVED_ENV = frozenset({"DIB_LOCAL_IMAGE", "DIB_EULER_BASE_SHA256", "DIB_RELEASE", "DIB_IMAGE_CACHE",
                          "DIB_EULER_MIRROR", "DIB_PYTHON_EXEC", "DIB_ARGS", "DIB_ENV",
                          # set from the profile's packages, optional_packages and image_mirror
                          "DIB_EULER_PROFILE_PACKAGES", "DIB_EULER_OPTIONAL_PACKAGES", "DIB_EULER_IMAGE_MIRROR"})

Format = Literal["qcow2", "raw", "vmdk", "vhd"]
Arch = Literal["x86_64", "aarch64", "riscv64"]
CloudName = Literal["aws", "huawei", "tencent", "alibaba"]


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
    agency: str | None = Field(None, description="Huawei only: the IAM agency that lets IMS copy images "
                               "across regions (needed with copy_to)")


class Profile(_Strict):
    name: str
    description: str = ""
    base_element: str = Field("openeuler", description="the DIB element that provides the operating system")
    releases: list[str] = Field(min_length=1)
    arches: list[Arch] = Field(min_length=1)
    elements: list[str] = Field(default_factory=list)
    packages: list[str] = Field(default_factory=list)
    optional_packages: list[str] = Field(
        default_factory=list, description="package names the elements ask for that the build may skip, with a "
        "warning and a line in the record, when no enabled repository has them (a profile's own packages are "
        "always required)")
    image_mirror: str | None = Field(
        None, description="the openEuler mirror root the published image's dnf repositories use (instead of "
        "openEuler's official definitions with their metalink); never the build's --mirror by accident")
    env: dict[str, str] = Field(default_factory=dict, description="environment for the elements")
    image_size_gb: int | None = Field(None, ge=2, le=1024)
    formats: list[Format] = Field(default_factory=lambda: ["qcow2"], min_length=1)
    name_template: str = "openEuler-{release}-{arch}-{profile}-{date}"
    checks: list[str] = Field(default_factory=list, description="boot-test checks beyond the basic ones")
    boot: Literal["hybrid", "bios", "uefi"] | None = Field(
        None, description="disk layout and firmware: hybrid (GPT, BIOS boot partition + ESP; the x86_64 default), "
        "bios (MBR), uefi (GPT + ESP; aarch64, its only choice)")
    clouds: dict[CloudName, CloudDefaults] = Field(default_factory=dict)

    @field_validator("name_template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        parsed = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
        unknown = {name for name, _, _ in parsed} - NAME_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder {{{quote(sorted(unknown)[0])[1:-1]}}}; use "
                             f"{sorted(NAME_FIELDS)}")
        if any(spec or conversion for _, spec, conversion in parsed):
            raise ValueError("placeholders take no format spec or conversion (write {release}, not {release:...})")
        if not template.startswith("openEuler-{release}-"):
            raise ValueError("must start with 'openEuler-{release}-' (consumers search images by that prefix)")
        return template

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for key, value in env.items():
            if not ENV_NAME.match(key):
                raise ValueError(f"{quote(key)}: a profile sets only variables for elements, named DIB_* "
                                 "(eulerpub's own are DIB_EULER_*)")
            if key in RESERVED_ENV:
                raise ValueError(f"{key} is set by eulerpub itself (or picks a host program); a profile may not "
                                 "set it")
            if "\0" in value:
                raise ValueError(f"{key}: the value holds a NUL character")
        return env

    @field_validator("image_mirror")
    @classmethod
    def _mirror_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$", url):
            raise ValueError(f"{quote(url)} is not an http(s) URL of a mirror root")
        return url.rstrip("/") if url else url

    @field_validator("packages", "optional_packages")
    @classmethod
    def _package_names(cls, packages: list[str]) -> list[str]:
        for name in packages:
            if not PACKAGE_NAME.match(name):
                raise ValueError(f"{quote(name)} is not a package name (letters, digits and . _ + -)")
        return packages

    @field_validator("elements")
    @classmethod
    def _element_names(cls, elements: list[str]) -> list[str]:
        for name in elements:
            _check_element(name)
        return elements

    @field_validator("base_element")
    @classmethod
    def _base_element_name(cls, name: str) -> str:
        return _check_element(name)


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


def _check_element(name: str) -> str:
    if not ELEMENT_NAME.match(name) or ".." in name:
        raise ValueError(f"{quote(name)} is not an element name (a directory name on the elements path, "
                         "not a path)")
    return name


@dataclass(frozen=True)
class ProfileSource:
    name: str
    path: Path


def search_path(extra_dirs: Sequence[Path] = ()) -> list[Path]:
    for directory in extra_dirs:  # named on the command line: a typo must not silently fall back to built-ins
        if not directory.is_dir():
            raise UsageError(f"--profiles-dir {quote(str(directory))}: no such directory")
    return [*extra_dirs, *path_list_from_env("EULERPUB_PROFILES_PATH"), builtin_profiles_dir()]


def list_profiles(extra_dirs: Sequence[Path] = ()) -> list[ProfileSource]:
    """Every profile on the search path; a name found twice is the first one's."""
    found: dict[str, ProfileSource] = {}
    for directory in search_path(extra_dirs):
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.yaml")):
            if not PROFILE_NAME.match(path.stem):  # it names images and tags, and is printed to terminals
                log.warning("ignoring %s: a profile's file name is letters, digits, '.', '_' and '-'",
                            quote(str(path)))
                continue
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
        profile = Profile.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe(source.path, exc)) from None
    check_releases(source.path, profile.releases)
    check_cloud_targets(source.path, {cloud: (t.regions, t.copy_to, t.share) for cloud, t in profile.clouds.items()})
    return profile


# The models check shape; the loaders check a file's values against the world outside it (the catalog, each
# cloud's rules), so tests can still build models with made-up releases and accounts.

def check_releases(path: Path, releases: Sequence[str]) -> None:
    """A settings file's releases are the catalog's."""
    for number, name in enumerate(releases):
        try:
            catalog.find_release(name)
        except UsageError as exc:
            raise ConfigError(f"{path}: releases[{number}]: {exc.message}") from None


def check_cloud_targets(path: Path, targets: dict[str, tuple[Sequence[str] | None, ...]]) -> None:
    """Each cloud's regions, copy_to and share lists in a settings file fit that cloud's rules."""
    from eulerpub.clouds import rules

    for cloud, (regions, copy_to, share) in targets.items():
        problem = rules.settings_problem(cloud, f"clouds.{cloud}", regions=regions or (), copy_to=copy_to or (),
                                         share=share or ())
        if problem:
            raise ConfigError(f"{path}: {problem}")


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
