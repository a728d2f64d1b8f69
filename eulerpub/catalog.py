"""The release catalog: which openEuler releases and arches have official VM images, and where they live.

Everything here is a pure function of (release, arch, mirror root): no network. The layout follows
repo.openeuler.org, and mirrors keep the same tree below their root, so one base URL swaps the source:

    {mirror}openEuler-{VER}/virtual_machine_img/{ARCH}/openEuler-{VER}-{ARCH}.qcow2.xz   (+ .sha256sum)

Two exceptions: 20.03-LTS (GA only) named its files with a dot (`openEuler-20.03-LTS.aarch64.qcow2.xz`),
and riscv64 exists only for 24.03-LTS-SP4, one directory deeper under its profile (`riscv64/rva23/`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from eulerpub.errors import UsageError, quote

DEFAULT_MIRROR = "https://repo.openeuler.org/"
MIRROR_ENV = "EULERPUB_MIRROR"
CHECKSUM_SUFFIX = ".sha256sum"  # openEuler publishes `sha256sum` output beside every image

X86_64, AARCH64, RISCV64 = "x86_64", "aarch64", "riscv64"
ARCHES = (X86_64, AARCH64, RISCV64)
_COMMON_ARCHES = (X86_64, AARCH64)

# Names other tools use for the same machines; accepted so `--arch amd64` does what the user means.
ARCH_ALIASES = {"amd64": X86_64, "x64": X86_64, "arm64": AARCH64}

# The RISC-V image is built for one ISA profile and published below it; the profile is part of the path
# and of the file name, so it is data here rather than a special case in the URL code.
RISCV64_PROFILE = "rva23"


@dataclass(frozen=True)
class Release:
    """One openEuler release with a VM image: its name, kind and the arches it publishes images for."""

    name: str
    kind: str  # "lts", "lts-sp" or "innovation"
    arches: tuple[str, ...] = _COMMON_ARCHES
    dotted_file_name: bool = False  # 20.03-LTS GA: openEuler-20.03-LTS.{arch}.qcow2.xz


# Oldest first. Innovation releases live six months; LTS service packs are what clouds mostly ship.
RELEASES: tuple[Release, ...] = (
    Release("20.03-LTS", "lts", dotted_file_name=True),
    Release("20.03-LTS-SP4", "lts-sp"),
    Release("22.03-LTS-SP1", "lts-sp"),
    Release("22.03-LTS-SP2", "lts-sp"),
    Release("22.03-LTS-SP3", "lts-sp"),
    Release("22.03-LTS-SP4", "lts-sp"),
    Release("24.03-LTS", "lts"),
    Release("24.03-LTS-SP1", "lts-sp"),
    Release("24.03-LTS-SP2", "lts-sp"),
    Release("24.03-LTS-SP3", "lts-sp"),
    Release("24.03-LTS-SP4", "lts-sp", arches=(X86_64, AARCH64, RISCV64)),
    Release("25.03", "innovation"),
    Release("25.09", "innovation"),
)
_BY_NAME = {r.name.lower(): r for r in RELEASES}


@dataclass(frozen=True)
class ImageSource:
    """Where one release's official VM image for one arch is published, and its checksum beside it."""

    release: str
    arch: str
    url: str
    checksum_url: str
    file_name: str  # the .qcow2.xz file name, as written in the .sha256sum


def known_releases() -> tuple[str, ...]:
    return tuple(r.name for r in RELEASES)


def find_release(name: str) -> Release:
    """The catalog entry for a release name (case-insensitive); UsageError listing the known ones if none."""
    release = _BY_NAME.get(name.strip().lower())
    if release is None:
        raise UsageError(f"unknown openEuler release {quote(name)}; known releases: {', '.join(known_releases())}")
    return release


def normalize_arch(release: Release, arch: str) -> str:
    """The canonical arch name, checked against what this release publishes."""
    canonical = ARCH_ALIASES.get(arch.strip().lower(), arch.strip().lower())
    if canonical not in ARCHES:
        raise UsageError(f"unknown architecture {arch!r}; known architectures: {', '.join(ARCHES)}")
    if canonical not in release.arches:
        raise UsageError(f"openEuler {release.name} has no {canonical} image; "
                         f"its architectures: {', '.join(release.arches)}")
    return canonical


def mirror_root(mirror: str | None = None) -> str:
    """The download root: the given one, else $EULERPUB_MIRROR, else repo.openeuler.org; always ends in '/'.

    Library callers (the build) pass None and still honour the environment, so the tests' local mirror
    and a user's mirror reach every stage, not only the CLI.
    """
    root = (mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR).strip()
    bad = f"mirror {quote(root)} is not an http(s) URL; expected e.g. {DEFAULT_MIRROR}"
    if any(not ch.isprintable() or ch.isspace() for ch in root):
        raise UsageError(f"{bad} (it holds a space or control character)")
    try:
        parts = urlsplit(root)
        port = parts.port  # raises for a port that is not a number in 0-65535
    except ValueError as exc:
        raise UsageError(f"{bad} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise UsageError(bad)
    return root if root.endswith("/") else root + "/"


def image_file_name(release: str, arch: str) -> str:
    """The published .qcow2.xz file name for a release and arch."""
    entry = find_release(release)
    arch = normalize_arch(entry, arch)
    if entry.dotted_file_name:
        return f"openEuler-{entry.name}.{arch}.qcow2.xz"
    if arch == RISCV64:
        return f"openEuler-{entry.name}-{arch}-{RISCV64_PROFILE}.qcow2.xz"
    return f"openEuler-{entry.name}-{arch}.qcow2.xz"


def image_path(release: str, arch: str) -> str:
    """The image's path below the mirror root, e.g. `openEuler-24.03-LTS/virtual_machine_img/x86_64/...`."""
    entry = find_release(release)
    arch = normalize_arch(entry, arch)
    directory = f"{arch}/{RISCV64_PROFILE}" if arch == RISCV64 else arch
    return f"openEuler-{entry.name}/virtual_machine_img/{directory}/{image_file_name(entry.name, arch)}"


def image_source(release: str, arch: str, mirror: str | None = None) -> ImageSource:
    """The image and checksum URLs for a release and arch below a mirror root."""
    entry = find_release(release)
    arch = normalize_arch(entry, arch)
    url = mirror_root(mirror) + image_path(entry.name, arch)
    return ImageSource(release=entry.name, arch=arch, url=url, checksum_url=url + CHECKSUM_SUFFIX,
                       file_name=image_file_name(entry.name, arch))


def catalog(mirror: str | None = None) -> list[ImageSource]:
    """Every known release and arch with its URLs, oldest release first."""
    return [image_source(r.name, arch, mirror) for r in RELEASES for arch in r.arches]
