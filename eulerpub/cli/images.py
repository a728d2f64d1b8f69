"""`eulerpub images`: what eulerpub has published in a cloud region, found by its tags."""

from __future__ import annotations

import typer

from eulerpub import tables, ui
from eulerpub.cli.cloud_options import Cloud, ProfileFilter, Region, ReleasesDir
from eulerpub.cli.options import Json, start
from eulerpub.clouds import get_adapter, rules
from eulerpub.clouds.base import TAG_ARCH, TAG_PROFILE, TAG_RELEASE
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
