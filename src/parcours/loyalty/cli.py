"""The `parcours loyalty` command group."""

from __future__ import annotations

import typer

app = typer.Typer(help="Promotions, promo codes and the loyalty programme.", no_args_is_help=True)
