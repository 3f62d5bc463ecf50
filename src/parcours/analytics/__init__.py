"""Insight context: one metrics layer written in Ibis (KPIs, funnels, paths,
attribution, cohorts and lifetime value) run on the live database, on DuckDB over
Parquet exports or on Spark; transaction history imports and store footfall (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.analytics.footfall import FootfallCount, record_footfall

if TYPE_CHECKING:
    import typer

    from parcours.core.events import PeriodicJob


def cli_apps() -> dict[str, typer.Typer]:
    """The command groups this context adds: `parcours analytics`, `parcours export`
    and `parcours import`."""
    from parcours.analytics.cli import analytics_app, export_app, import_app

    return {"analytics": analytics_app, "export": export_app, "import": import_app}


def console_msgids() -> set[str]:
    """Words the insight pages translate from Python data (for the translation tests)."""
    from parcours.analytics.pages import console_msgids as words

    return words()


def periodic_jobs() -> list[PeriodicJob]:
    """Time-driven jobs of this context: the scheduled report emails."""
    from parcours.analytics.reports import report_emails_job

    return [report_emails_job()]


__all__ = [
    "FootfallCount",
    "cli_apps",
    "console_msgids",
    "periodic_jobs",
    "record_footfall",
]
