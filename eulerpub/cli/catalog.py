"""`eulerpub releases`: the catalog of openEuler releases and arches with their image URLs."""

from __future__ import annotations

from eulerpub import catalog, ui
from eulerpub.cli.options import Json, Mirror, start


def command(mirror: Mirror = None, json_output: Json = False) -> None:
    """List every openEuler release and architecture eulerpub can build from, with the official image URL.

    The URLs follow repo.openeuler.org's layout below the mirror root; each image has a `.sha256sum` beside
    it. Nothing is downloaded.

    Examples:

    - `eulerpub releases`
    - `eulerpub releases --mirror https://mirrors.example.edu/openeuler/ --json | jq -r '.images[].url'`
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
    width = max(len(s.release) for s in images)
    print(f"{'RELEASE':<{width}}  {'ARCH':<8}  URL")
    for source in images:
        print(f"{source.release:<{width}}  {source.arch:<8}  {source.url}")
