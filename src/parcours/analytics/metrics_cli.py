"""Commands of this capability (filled in by its owner)."""

from __future__ import annotations

import typer


def register(analytics_app: typer.Typer, export_app: typer.Typer, import_app: typer.Typer) -> None:
    """Add this module's commands to the groups."""
