"""`eulerpub images`: what eulerpub has published in a cloud region, found by its tags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eulerpub import catalog, latest, tables, ui
from eulerpub.cli.cloud_options import Cloud, ProfileFilter, Region, ReleasesDir
from eulerpub.cli.options import Json, Release, arch_option, start
from eulerpub.clouds import get_adapter, rules
from eulerpub.clouds.base import TAG_ARCH, TAG_PROFILE, TAG_RELEASE
from eulerpub.errors import EulerpubError
from eulerpub.release import index as release_index

app = typer.Typer(help="Images eulerpub has published.", no_args_is_help=True)

COLUMNS = ("IMAGE", "NAME", "PROFILE", "RELEASE", "ARCH", "CREATED", "STATE", "CURRENT")


@app.command("list")
def list_command(cloud: Cloud, region: Region, profile: ProfileFilter = None,
                 releases_dir: ReleasesDir = release_index.DEFAULT_RELEASES_DIR, json_output: Json = False) -> None:
    """List the images eulerpub published in one region (tagged `managed-by=eulerpub`), newest first.

    CURRENT marks the images the release index points at. Example:
    `eulerpub images list --cloud aws --region us-east-1 --profile hpc`
    """
    start(json_output)
    rules.check_region(cloud, region, what="--region")
    adapter = get_adapter(cloud)
    current = release_index.current_image_ids(release_index.read_index(releases_dir / release_index.INDEX_NAME),
                                              cloud, region)
    images = adapter.list_images(region, profile=profile)
    rows = [{"image_id": i.image_id, "name": i.name, "profile": i.tags.get(TAG_PROFILE, ""),
             "release": i.tags.get(TAG_RELEASE, ""), "arch": i.tags.get(TAG_ARCH, ""), "created": i.created,
             "state": i.state, "build_id": i.build_id, "snapshot_ids": list(i.snapshot_ids),
             "current": i.image_id in current} for i in images]
    if json_output:
        ui.emit_json(rows)
        return
    if not rows:
        print(f"no eulerpub images in {cloud}/{region}" + (f" for profile {profile}" if profile else ""))
        return
    print(tables.render(COLUMNS, [(r["image_id"], r["name"], r["profile"], r["release"], r["arch"], r["created"],
                                   r["state"], "yes" if r["current"] else "") for r in rows]))


LatestArch = arch_option(catalog.ARCHES, "Only this architecture (needed when the series has images of both).")
LatestProfile = Annotated[str, typer.Option("--profile", "-p", help="The profile whose images to look at.",
                                            show_default=False)]
IndexFile = Annotated[Path | None, typer.Option("--index", help="Read this release index (releases/index.json) "
                                                "instead of asking the cloud.", show_default=False,
                                                exists=True, dir_okay=False)]


@app.command("latest")
def latest_command(cloud: Cloud, region: Region, profile: LatestProfile, release: Release = None,
                   arch: LatestArch = None, index: IndexFile = None, json_output: Json = False) -> None:
    """Print the id of the newest image of a series: a profile (and release, arch) in one cloud region.

    From the cloud by eulerpub's tags (available images only), or with --index from a release index. Without
    --release, the newest of any release. Exit 1 when the series has no image. Example (HPC-NOW on Huawei):
    `hpcopr init --os "$(eulerpub images latest --cloud huawei --region cn-north-4 --profile hpcnow)"`
    """
    start(json_output)
    rules.check_region(cloud, region, what="--region")
    series = latest.Series(cloud, region, profile, release, arch)
    if index is not None:
        found = latest.from_index(release_index.read_index(index), series)
    else:
        found = latest.from_cloud(get_adapter(cloud), series)
    if found is None:
        where = f"the index {index}" if index is not None else "the cloud"
        raise EulerpubError(f"no eulerpub image of {series.describe()} in {where}")
    if json_output:
        ui.emit_json(found.as_dict())
        return
    print(found.image_id)
