"""The human release page `releases/README.md`, generated from the index with a jinja2 template."""

from __future__ import annotations

from pathlib import Path

import jinja2

from eulerpub.release.index import INDEX_NAME, ReleaseIndex, iter_entries, write_index

README_NAME = "README.md"
_TEMPLATE = "README.md.j2"

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("eulerpub.release", "templates"),
    autoescape=False,  # Markdown, not HTML
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render_readme(index: ReleaseIndex) -> str:
    """The Markdown page for `index`: one table row per image, sorted by profile/release/arch/cloud/region."""
    template = _environment.get_template(_TEMPLATE)
    return template.render(schema_version=index.schema_version, updated=index.updated,
                           rows=list(iter_entries(index)))


def write_release_pages(directory: Path, index: ReleaseIndex) -> tuple[Path, Path]:
    """Write `index.json` and `README.md` in `directory` (each atomically); return their paths."""
    index_path = directory / INDEX_NAME
    readme_path = directory / README_NAME
    write_index(index_path, index)
    tmp = readme_path.with_name(f".{README_NAME}.tmp")
    tmp.write_text(render_readme(index))
    tmp.replace(readme_path)
    return index_path, readme_path
