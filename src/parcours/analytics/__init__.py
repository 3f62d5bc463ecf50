"""Insight context: one metrics layer written in Ibis (KPIs, funnels, paths,
attribution, cohorts and lifetime value) run on the live database, on DuckDB over
Parquet exports or on Spark; transaction history imports and store footfall (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer


def cli_apps() -> dict[str, typer.Typer]:
    """The command groups this context adds: `parcours analytics`, `parcours export`
    and `parcours import`."""
    from parcours.analytics.cli import analytics_app, export_app, import_app

    return {"analytics": analytics_app, "export": export_app, "import": import_app}


__all__ = ["cli_apps"]
