"""`eulerpub images` (being written)."""

import typer

app = typer.Typer(help="Images eulerpub has published.", no_args_is_help=True)
