"""The `parcours engagement` command group."""

from __future__ import annotations

import typer

app = typer.Typer(help="Messages and campaigns on every channel.", no_args_is_help=True)
