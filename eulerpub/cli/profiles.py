"""`eulerpub profiles`: list the profiles and show one fully resolved."""

from __future__ import annotations

import typer
import yaml

from eulerpub import tables, ui
from eulerpub.cli.options import Json, ProfilesDir
from eulerpub.profiles import list_profiles, load_profile

COLUMNS = ("NAME", "DESCRIPTION")

app = typer.Typer(help="List build profiles and show one fully resolved (after `extends:`).",
                  no_args_is_help=True)


@app.command("list")
def list_command(profiles_dir: ProfilesDir = None, json_output: Json = False) -> None:
    """List every profile on the search path with its description.

    Example: `eulerpub profiles list --profiles-dir ./my-profiles`
    """
    rows = []
    for source in list_profiles(profiles_dir or []):
        profile = load_profile(source.name, profiles_dir or [])
        rows.append({"name": source.name, "path": str(source.path), "description": profile.description,
                     "releases": profile.releases, "arches": profile.arches})
    if json_output:
        ui.emit_json(rows)
        return
    # a description may span lines in its YAML: one line per profile
    print(tables.render(COLUMNS, [(row["name"], " ".join(row["description"].split())) for row in rows]))


@app.command("show")
def show_command(name: str = typer.Argument(..., help="Profile name (file name without .yaml)."),
                 profiles_dir: ProfilesDir = None, json_output: Json = False) -> None:
    """Show a profile after merging everything it extends, as the build will see it.

    Example: `eulerpub profiles show hpc-desktop --json`
    """
    profile = load_profile(name, profiles_dir or [])
    data = profile.model_dump(mode="json")
    if json_output:
        ui.emit_json(data)
    else:
        print(yaml.safe_dump(data, sort_keys=False).rstrip())
