"""Insight context: one metrics layer written in Ibis (KPIs, funnels, paths,
attribution, cohorts and lifetime value) run on the live database, on DuckDB over
Parquet exports or on Spark; transaction history imports and store footfall (facade)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from parcours.analytics.footfall_count import FootfallCount

if TYPE_CHECKING:
    import typer
    from sqlalchemy.orm import Session

    from parcours.core.events import PeriodicJob


def record_footfall(
    session: Session, now: datetime, counts: Sequence[FootfallCount], source: str = "api"
) -> int:
    """Store visitor counts (all-or-nothing): each (store, hour) is inserted or replaces
    the count already there; `source` is api, csv or demo. Returns how many counts were
    written; an unknown store or a bad hour or count raises InvalidInput naming it."""
    # Imported on use: importing the facade (as the command line does) stays light.
    from parcours.analytics.footfall import record_footfall as record

    return record(session, now, counts, source)


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
