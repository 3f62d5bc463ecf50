"""The `parcours segments` command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Segments: define, preview, refresh and export audiences.", no_args_is_help=True
)
