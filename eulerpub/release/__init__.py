"""Release automation: the matrix in `release.yaml`, its plan, the cell runner, the release index.

Modules, one job each:
- `config`: read and validate `release.yaml` (errors name the file and the key);
- `matrix`: expand the config into cells and filter them (`--only` / `--skip`), pure;
- `plan`: the ordered builds and publishes a run will do, and their printable form, pure;
- `runner`: run the cells (build or reuse → boot test gate → publish) with injected `Steps`;
- `index`: the release index `releases/index.json` and its merge, and `readme` its Markdown page;
- `prune`: which published images to keep and which to delete, pure;
- `wiring`: the default `Steps`, connected to the build, boot test and publish library functions.
"""
