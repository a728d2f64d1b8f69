"""`eulerpub images latest` against a real SDK cloud (moto, the IMS and CVM emulators): the scenario each cloud's
test_images_latest_*.py runs with its own fixtures.

Three images are published for real with `eulerpub publish --image --profile` (each its own disk, so its own
build): two of the hpcnow series, one second apart, and a newer one of the hpc profile in the same region. Then
`images latest` must name the second hpcnow image (the cloud's tag query and the newest-first choice), the hpc
series its own image, and a series with no image (another release, another profile) must be one sentence with
exit 1. Where the cloud can fail an import, a failed image newer than all of them must never be the answer.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.disks import hybrid_head
from tests.integration.sdkclouds import rows

MiB = 1024 * 1024
SIZE = 8 * MiB
RELEASE = "24.03-LTS-SP1"
CREATED_RESOLUTION_S = 1.1  # the clouds report creation times to the second


def disk(directory: Path, tag: str, fmt: str) -> Path:
    """A small hybrid-partitioned disk whose content (and so build id) differs per `tag`."""
    directory.mkdir(parents=True, exist_ok=True)
    raw = directory / f"openEuler-{RELEASE}-x86_64-{tag}.raw"
    with open(raw, "wb") as handle:
        handle.truncate(SIZE)
        handle.seek(2 * MiB)
        handle.write(f"eulerpub images latest {tag} ".encode() * 4000)
        handle.seek(0)
        handle.write(hybrid_head(SIZE))
    if fmt == "raw":
        return raw
    converted = raw.with_suffix(f".{fmt}")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(converted)], check=True)
    return converted


def publish(cli: Callable[..., Any], cloud: str, region: str, image: Path, profile: str, name: str,
            extra: tuple[str, ...], *, ok: bool = True) -> str | None:
    result = cli("publish", "--cloud", cloud, "--image", str(image), "--arch", "x86_64", "--release", RELEASE,
                 "--profile", profile, "--region", region, "--name", name, "--build-dir", "build", "--json", *extra)
    if not ok:
        assert result.exit_code == 1, result.stdout
        return None
    assert result.exit_code == 0, result.stderr
    return rows(result.stdout)[region]["image_id"]


def latest(cli: Callable[..., Any], cloud: str, region: str, *args: str) -> Any:
    return cli("images", "latest", "--cloud", cloud, "--region", region, *args)


def scenario(cli: Callable[..., Any], cloud: str, region: str, workdir: Path, *, fmt: str,
             extra: tuple[str, ...] = (), fail_next_import: Callable[[], None] | None = None) -> None:
    first = publish(cli, cloud, region, disk(workdir, "a", fmt), "hpcnow", f"openEuler-{RELEASE}-x86_64-hpcnow-a",
                    extra)
    time.sleep(CREATED_RESOLUTION_S)
    second = publish(cli, cloud, region, disk(workdir, "b", fmt), "hpcnow", f"openEuler-{RELEASE}-x86_64-hpcnow-b",
                     extra)
    time.sleep(CREATED_RESOLUTION_S)
    other = publish(cli, cloud, region, disk(workdir, "c", fmt), "hpc", f"openEuler-{RELEASE}-x86_64-hpc-c", extra)
    assert len({first, second, other}) == 3
    if fail_next_import is not None:
        time.sleep(CREATED_RESOLUTION_S)
        fail_next_import()
        publish(cli, cloud, region, disk(workdir, "d", fmt), "hpcnow", f"openEuler-{RELEASE}-x86_64-hpcnow-d",
                extra, ok=False)

    found = latest(cli, cloud, region, "--profile", "hpcnow", "--release", RELEASE, "--arch", "x86_64")
    assert found.exit_code == 0, found.stderr
    assert found.stdout == f"{second}\n"
    described = latest(cli, cloud, region, "--profile", "hpcnow", "--json")  # any release: still the same one
    assert described.exit_code == 0, described.stderr
    entry = json.loads(described.stdout)
    assert (entry["image_id"], entry["name"], entry["profile"], entry["release"], entry["arch"], entry["source"]) == (
        second, f"openEuler-{RELEASE}-x86_64-hpcnow-b", "hpcnow", RELEASE, "x86_64", "cloud")
    assert entry["build_id"]
    assert latest(cli, cloud, region, "--profile", "hpc").stdout == f"{other}\n"

    for args, series in (
            (("--profile", "hpcnow", "--release", "22.03-LTS-SP4"), "profile hpcnow, release 22.03-LTS-SP4"),
            (("--profile", "desktop"), "profile desktop")):
        none = latest(cli, cloud, region, *args)
        assert none.exit_code == 1
        assert none.stdout == ""
        assert none.stderr.strip().splitlines()[-1].endswith(
            f"no eulerpub image of {series} in {cloud}/{region} in the cloud")
