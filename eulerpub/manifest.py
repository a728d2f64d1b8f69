"""Build records (`manifest.json` beside the artifacts): the contract between build and publish.

Records are versioned JSON written atomically (temp file + rename), so a record that exists is complete.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eulerpub.errors import UsageError
from eulerpub.jsonfile import write_json_atomic
from eulerpub.profiles import Arch, Format

SCHEMA_VERSION = 1
RECORD_NAME = "manifest.json"
HASH_CHUNK = 4 * 1024 * 1024


class Artifact(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: Format
    path: str = Field(description="relative to the record's directory")
    size: int
    virtual_size: int
    sha256: str


class BaseImage(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    sha256: str = Field(description="sha256 of the compressed download, as published in .sha256sum")


class BootLayout(BaseModel):
    """How the image was laid out to boot (what was built; `eulerpub test` records what was proven)."""

    model_config = ConfigDict(frozen=True)

    layout: str = Field(description="hybrid, bios or uefi (eulerpub.bootmodes)")
    modes: list[str] = Field(description="the firmware modes the layout is built for")
    partition_table: dict[str, Any] = Field(default_factory=dict, description="what the built disk's table says")


class BuildRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: int = SCHEMA_VERSION
    build_id: str
    profile: str
    release: str
    arch: Arch
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    base: BaseImage
    elements_hash: str
    elements: list[str]
    artifacts: list[Artifact]
    packages: list[str] = Field(default_factory=list)
    skipped_packages: list[str] = Field(default_factory=list, description="optional packages no enabled "
                                        "repository had, left out with a warning")
    image_name: str = ""
    tool_versions: dict[str, str] = Field(default_factory=dict)
    log: str | None = None
    checks: list[str] = Field(default_factory=list, description="boot-test checks the profile promises")
    inputs: dict[str, Any] = Field(default_factory=dict, description="what the build_id was derived from")
    boot: BootLayout | None = Field(None, description="the boot layout built (records before it have none)")

    def artifact(self, fmt: Format | None = None) -> Artifact:
        """The artifact in `fmt`, or the first one."""
        for artifact in self.artifacts:
            if fmt is None or artifact.format == fmt:
                return artifact
        have = ", ".join(a.format for a in self.artifacts)
        raise UsageError(f"build {self.build_id} has no {fmt} artifact (it has {have})")


def write_record(directory: Path, record: BuildRecord) -> Path:
    path = directory / RECORD_NAME
    write_json_atomic(path, record.model_dump(mode="json"))
    return path


def read_record(path: Path) -> BuildRecord:
    """Read a build record (a manifest.json or the directory holding one)."""
    if path.is_dir():
        path = path / RECORD_NAME
    try:
        return BuildRecord.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"no build record at {path}") from None
    except ValidationError as exc:
        raise UsageError(f"{path} is not a valid eulerpub build record ({exc.errors()[0]['msg']})") from None


def iter_records(build_dir: Path) -> Iterator[tuple[Path, BuildRecord]]:
    """Every readable record below `build_dir` (one level of build directories)."""
    if not build_dir.is_dir():
        return
    for path in sorted(build_dir.glob(f"*/{RECORD_NAME}")):
        try:
            yield path, read_record(path)
        except UsageError:
            continue


def latest_record(build_dir: Path, profile: str, *, release: str | None = None,
                  arch: str | None = None) -> tuple[Path, BuildRecord]:
    """The newest build of a profile (optionally of one release/arch) under `build_dir`."""
    matches = [(p, r) for p, r in iter_records(build_dir)
               if r.profile == profile and release in (None, r.release) and arch in (None, r.arch)]
    if not matches:
        raise UsageError(f"no build of profile {profile!r} under {build_dir}; run `eulerpub build --profile "
                         f"{profile}` first or pass --record")
    return max(matches, key=lambda pr: pr[1].created)


def artifact_path(record_path: Path, artifact: Artifact) -> Path:
    base = record_path if record_path.is_dir() else record_path.parent
    return base / artifact.path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
