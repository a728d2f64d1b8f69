"""`eulerpub catalog list`: the openEuler releases and arches eulerpub can build from, with their image URLs."""

from __future__ import annotations

import typer

from eulerpub import catalog, tables, ui
from eulerpub.cli.options import Json, Mirror, deprecated, start

COLUMNS = ("RELEASE", "ARCH", "URL")

app = typer.Typer(help="The openEuler releases and architectures with official VM images.", no_args_is_help=True)


@app.command("list")
def list_command(mirror: Mirror = None, json_output: Json = False) -> None:
    """List every openEuler release and architecture eulerpub can build from, with the official image URL.

    The URLs follow repo.openeuler.org's layout below the mirror root; each image has a `.sha256sum` beside
    it. Nothing is downloaded.

    Examples:

    - `eulerpub catalog list`
    - `eulerpub catalog list --mirror https://mirrors.example.edu/openeuler/ --json | jq -r '.images[].url'`
    """
    start(json_output)
    root = catalog.mirror_root(mirror)
    images = catalog.catalog(root)
    if json_output:
        ui.emit_json({"mirror": root, "images": [
            {"release": s.release, "arch": s.arch, "kind": catalog.find_release(s.release).kind,
             "url": s.url, "checksum_url": s.checksum_url, "file_name": s.file_name}
            for s in images]})
        return
    print(tables.render(COLUMNS, [(s.release, s.arch, s.url) for s in images]))


def releases_command(mirror: Mirror = None, json_output: Json = False) -> None:
    """Deprecated: use `eulerpub catalog list` (`releases` was one letter from `eulerpub release`)."""
    deprecated("`eulerpub releases`", "`eulerpub catalog list`")
    list_command(mirror=mirror, json_output=json_output)
