"""Options of the verbs that talk to a cloud (publish, images, prune).

Apart from options.py because the cloud names come from the adapter registry (`eulerpub.clouds.ADAPTERS`, so a
new adapter is a new choice), whose import brings the pydantic models that `eulerpub catalog list` need not load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from eulerpub.cli.options import choice
from eulerpub.clouds import ADAPTERS

CLOUDS = tuple(ADAPTERS)

Cloud = Annotated[choice(CLOUDS), typer.Option("--cloud", "-c", help="The cloud.",  # type: ignore[valid-type]
                                               show_default=False)]
Region = Annotated[str, typer.Option("--region", help="The cloud region, e.g. us-east-1, cn-north-4.",
                                     show_default=False)]
ProfileFilter = Annotated[str | None, typer.Option("--profile", "-p", help="Only this profile's images.",
                                                   show_default=False)]
ReleasesDir = Annotated[Path, typer.Option("--releases-dir", help="Where the release index is (index.json, "
                                           "README.md).")]
