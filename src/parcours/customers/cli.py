"""`parcours customers …`: imports, matching, export and erasure from the command line."""

from __future__ import annotations

import typer

app = typer.Typer(help="Customer profiles: import, match, export, erase.", no_args_is_help=True)
