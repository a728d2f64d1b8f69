"""`eulerpub fetch`: download, verify and decompress an official openEuler base image into the cache."""

from __future__ import annotations

import dataclasses
import platform
from typing import Annotated

import typer

from eulerpub import catalog, ui
from eulerpub.cli.options import Json, Mirror, Release, arch_option, start
from eulerpub.errors import UsageError
from eulerpub.fetch import DEFAULT_CONNECTIONS, MAX_CONNECTIONS, fetch_base

Refresh = Annotated[bool, typer.Option(
    "--refresh", help="Re-read the mirror's .sha256sum even if this URL is cached (one small request), "
    "in case the mirror republished the image.")]
Arch = arch_option(catalog.ARCHES, "Architecture (default: this machine's).")
Connections = Annotated[int, typer.Option(
    "--connections", min=1, max=MAX_CONNECTIONS,
    help="HTTP Range connections for the download at once (1: a single stream); far from the mirror, more "
    "connections beat its per-connection limit.")]


def command(
    release: Release = None,
    arch: Arch = None,
    mirror: Mirror = None,
    refresh: Refresh = False,
    connections: Connections = DEFAULT_CONNECTIONS,
    json_output: Json = False,
) -> None:
    """Fetch the official openEuler VM image and print the path of the verified, decompressed qcow2.

    The `.qcow2.xz` is checked against the `.sha256sum` published beside it, decompressed while it
    downloads, and kept in the cache (EULERPUB_CACHE_DIR, default ~/.cache/eulerpub) under its digest.
    An interrupted download resumes where it stopped; a second fetch of the same image uses no network.
    The arch defaults to this machine's.

    Examples:

    - `eulerpub fetch --release 24.03-LTS-SP1 --arch x86_64`
    - `EULERPUB_MIRROR=https://mirrors.example.edu/openeuler/ eulerpub fetch -r 22.03-LTS-SP4 -a aarch64`
    - `qemu-img info -f qcow2 "$(eulerpub fetch -r 24.03-LTS-SP2)"` (name the format: never let qemu-img probe)
    """
    start(json_output)
    if not release:
        raise UsageError(f"--release is required; known releases: {', '.join(catalog.known_releases())}")
    image = fetch_base(release, arch or platform.machine(), mirror, refresh=refresh, connections=connections)
    if json_output:
        source = catalog.image_source(release, arch or platform.machine(), mirror)
        ui.emit_json({**dataclasses.asdict(image), "path": str(image.path), "release": source.release,
                      "arch": source.arch})
    else:
        print(image.path)
