"""What to publish: a build record (named, or the newest of a profile) or a plain image file.

Resolving reads files only (every image is inspected by `eulerpub.imagefile`, which runs `qemu-img info -f`);
it talks to no cloud, so a bad image is refused before anything is uploaded, in `--dry-run` too.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import get_args

from eulerpub import bootcheck, bootmodes, imagefile
from eulerpub.clouds.base import BuildIdentity, DiskImage
from eulerpub.errors import ChecksumError, UsageError
from eulerpub.manifest import Artifact, BuildRecord, artifact_path, latest_record, read_record, sha256_file
from eulerpub.profiles import Arch, Format, Profile

# Which artifact each cloud takes when the profile does not say: the first one the build has.
# AWS: EBS direct wants raw (anything else is converted); Huawei, Tencent and Alibaba import qcow2 natively
# (Alibaba's VMDK import is "in invitational preview": ImportImageRequestDiskDeviceMapping.format).
PREFERRED_FORMATS: dict[str, tuple[Format, ...]] = {
    "aws": ("raw", "vmdk", "vhd", "qcow2"),
    "huawei": ("qcow2", "raw", "vmdk", "vhd"),
    "tencent": ("qcow2", "raw", "vmdk", "vhd"),
    "alibaba": ("qcow2", "raw", "vhd"),
}
ADHOC_PROFILE = "custom"  # the profile tag of an image published from a plain file without --profile
DEFAULT_NAME_TEMPLATE = "openEuler-{release}-{arch}-{profile}-{date}"
_RELEASE_IN_NAME = re.compile(r"openEuler-(\d{2}\.\d{2}(?:-LTS(?:-SP\d+)?)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """A resolved image: the file, what it is, its default name, and where its publish journals live."""

    image: DiskImage
    identity: BuildIdentity
    name: str
    journal_dir: Path
    record_path: Path | None = None
    boot: bootmodes.BootEvidence | None = None  # the boot modes it is proven to boot in (eulerpub.bootmodes)


def _pick_artifact(record: BuildRecord, cloud: str, fmt: Format | None) -> Artifact:
    if fmt is not None:
        return record.artifact(fmt)
    for preferred in PREFERRED_FORMATS.get(cloud, ()):
        for artifact in record.artifacts:
            if artifact.format == preferred:
                return artifact
    return record.artifact()


def from_record(record_path: Path, cloud: str, fmt: Format | None = None, *, verify: bool = True) -> Source:
    """The artifact of a build record (a manifest.json or its directory) to publish to `cloud`."""
    record = read_record(record_path)
    record_file = record_path / "manifest.json" if record_path.is_dir() else record_path
    artifact = _pick_artifact(record, cloud, fmt)
    path = artifact_path(record_file, artifact)
    if not path.is_file():
        raise UsageError(f"{record_file} names {artifact.path}, which does not exist")
    inspected = imagefile.inspect(path, artifact.format)  # the record's format, checked: never probed
    if verify and sha256_file(path) != artifact.sha256:
        raise ChecksumError(f"{path} does not match the sha256 in {record_file}; rebuild it")
    name = record.image_name or DEFAULT_NAME_TEMPLATE.format(
        release=record.release, arch=record.arch, profile=record.profile, date=record.created.strftime("%Y%m%d"))
    return Source(
        image=DiskImage(path=path, format=artifact.format, size=artifact.size, virtual_size=artifact.virtual_size,
                        sha256=artifact.sha256),
        identity=BuildIdentity(build_id=record.build_id, profile=record.profile, release=record.release,
                               arch=record.arch),
        name=name,
        journal_dir=record_file.parent / "publish",
        record_path=record_file,
        boot=bootcheck.proven_modes(record_file, record) or _table_evidence(inspected, "not boot-tested"),
    )


def _table_evidence(inspected: imagefile.ImageFile, note: str = "") -> bootmodes.BootEvidence:
    table = bootmodes.partition_table_of(inspected)
    return bootmodes.BootEvidence("partition table", table.modes, table.describe() + (f"; {note}" if note else ""))


def from_profile(build_dir: Path, profile: str, cloud: str, fmt: Format | None = None, *,
                 release: str | None = None, arch: str | None = None) -> Source:
    """The newest build of `profile` under `build_dir`."""
    record_path, _ = latest_record(build_dir, profile, release=release, arch=arch)
    return from_record(record_path, cloud, fmt)


def adhoc_build_id(sha256: str, arch: str, release: str) -> str:
    """A stable build id for a plain file: the same file, arch and release always map to the same images."""
    return hashlib.sha256(f"{sha256}\0{arch}\0{release}".encode()).hexdigest()[:16]


# A file name's extension that names a format: it must agree with what the file's own header says.
_FORMAT_EXTENSIONS = {".raw": "raw", ".qcow2": "qcow2", ".vmdk": "vmdk", ".vhd": "vhd"}


def _inspect(path: Path) -> imagefile.ImageFile:
    inspected = imagefile.inspect_file(path)
    named = _FORMAT_EXTENSIONS.get(path.suffix.lower())
    if named is not None and named != inspected.format:
        raise imagefile.BadImage(path, f"is named .{named} but holds a {inspected.format} image; rename it or "
                                 "convert it")
    if inspected.format not in get_args(Format):
        raise UsageError(f"{path} is a {inspected.format} image; eulerpub publishes {', '.join(get_args(Format))}")
    return inspected


def from_file(path: Path, arch: str, *, build_dir: Path, release: str | None = None,
              profile: Profile | None = None) -> Source:
    """A plain image file (built elsewhere). Its format is what its header says, checked by `imagefile.inspect`."""
    if not path.is_file():
        raise UsageError(f"--image {path}: no such file")
    if arch not in get_args(Arch):
        raise UsageError(f"--arch {arch!r}: choose one of {', '.join(get_args(Arch))}")
    if release is None:
        match = _RELEASE_IN_NAME.search(path.name)
        if match is None:
            raise UsageError(f"cannot tell the openEuler release of {path.name}; pass --release")
        release = match.group(1)
    inspected = _inspect(path)
    sha256 = sha256_file(path)
    build_id = adhoc_build_id(sha256, arch, release)
    made_on = datetime.fromtimestamp(path.stat().st_mtime, UTC).date()  # stable across re-runs
    name = (profile.image_name(release, arch, on=made_on, build_id=build_id) if profile
            else _default_name(release, arch, made_on))
    return Source(
        image=DiskImage(path=path.resolve(), format=inspected.format, size=inspected.size,  # type: ignore[arg-type]
                        virtual_size=inspected.virtual_size, sha256=sha256),
        identity=BuildIdentity(build_id=build_id, profile=profile.name if profile else ADHOC_PROFILE,
                               release=release, arch=arch),  # type: ignore[arg-type]  # checked above
        name=name,
        journal_dir=build_dir / "published" / build_id,
        boot=_table_evidence(inspected),
    )


def _default_name(release: str, arch: str, on: date) -> str:
    return DEFAULT_NAME_TEMPLATE.format(release=release, arch=arch, profile=ADHOC_PROFILE,
                                        date=on.strftime("%Y%m%d"))
