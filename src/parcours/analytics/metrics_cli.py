"""`parcours analytics kpis|funnel|paths` and `parcours export parquet`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from parcours.analytics.commandline import (
    EndOpt,
    EngineOpt,
    FormatOpt,
    ParquetOpt,
    StartOpt,
    cli_engine,
    out,
    parse_day,
    show_rows,
)
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState


def kpis_command(
    metric: Annotated[list[str], typer.Argument(help="Metric names (see the docs).")],
    by: Annotated[
        list[str] | None, typer.Option("--by", help="channel, store, category, period")
    ] = None,
    period: Annotated[str, typer.Option("--period", help="day, week or month")] = "day",
    start: StartOpt = None,
    end: EndOpt = None,
    channel: Annotated[list[str] | None, typer.Option("--channel")] = None,
    store: Annotated[list[str] | None, typer.Option("--store")] = None,
    category: Annotated[list[str] | None, typer.Option("--category")] = None,
    engine: EngineOpt = "live",
    parquet: ParquetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """KPIs by channel, store, category or period."""
    from parcours.analytics import metrics
    from parcours.analytics.metrics import MetricQuery

    query = MetricQuery(
        dimensions=tuple(by or ()),
        grain=period,
        start=parse_day(start),
        end=parse_day(end),
        channels=tuple(channel or ()),
        stores=tuple(store or ()),
        categories=tuple(category or ()),
    )
    metrics.check_query(metric, query)
    with cli_engine(engine, parquet) as running:
        show_rows(metrics.kpis(running, metric, query), fmt)


def funnel_command(
    step: Annotated[
        list[str] | None,
        typer.Argument(help="Event names in order (none: the five journey stages)."),
    ] = None,
    window_hours: Annotated[float, typer.Option("--window-hours")] = 24 * 30,
    by: Annotated[
        str | None, typer.Option("--by", help="channel, device, age_band or city")
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    engine: EngineOpt = "live",
    parquet: ParquetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """The journey funnel, or a custom funnel of event names."""
    from parcours.analytics import funnels
    from parcours.analytics.metrics import MetricQuery

    steps = funnels.custom_steps(step) if step else funnels.journey_steps()
    query = MetricQuery(start=parse_day(start), end=parse_day(end))
    with cli_engine(engine, parquet) as running:
        show_rows(funnels.funnel(running, steps, query, timedelta(hours=window_hours), by), fmt)


def paths_command(
    limit: Annotated[int, typer.Option("--limit")] = 20,
    lookback_days: Annotated[int, typer.Option("--lookback-days")] = 30,
    start: StartOpt = None,
    end: EndOpt = None,
    engine: EngineOpt = "live",
    parquet: ParquetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Most frequent paths to conversion across channels, offline included."""
    from parcours.analytics import paths
    from parcours.analytics.metrics import MetricQuery

    query = MetricQuery(start=parse_day(start), end=parse_day(end))
    with cli_engine(engine, parquet) as running:
        found = paths.conversion_paths(running, query, timedelta(days=lookback_days))
    show_rows(paths.top_paths(found, limit), fmt)


def parquet_command(
    directory: Annotated[Path, typer.Argument(help="Export directory.")],
    full: Annotated[bool, typer.Option("--full", help="Export everything again.")] = False,
) -> None:
    """Export the facts as Parquet for the duckdb and spark engines (incremental)."""
    from parcours.analytics.export import export_parquet

    result = export_parquet(CliState.database(), directory, now=SYSTEM_CLOCK.now(), full=full)
    kind = "full" if result.full else "incremental"
    counts = ", ".join(f"{name} {rows}" for name, rows in result.rows.items())
    out.print(f"Exported ({kind}) to {directory}: {counts} rows; {result.files} files written.")


def register(analytics_app: typer.Typer, export_app: typer.Typer, import_app: typer.Typer) -> None:
    """Add this module's commands to the groups."""
    analytics_app.command("kpis")(kpis_command)
    analytics_app.command("funnel")(funnel_command)
    analytics_app.command("paths")(paths_command)
    export_app.command("parquet")(parquet_command)
