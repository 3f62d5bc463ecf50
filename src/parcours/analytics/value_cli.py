"""Commands of customer value and history: `parcours analytics import-footfall`,
`parcours analytics cohorts|rfm|clv` and `parcours import transactions`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from parcours.analytics.commandline import (
    EndOpt,
    EngineOpt,
    FormatOpt,
    ParquetOpt,
    StartOpt,
    cli_engine,
    parse_day,
    show_rows,
)
from parcours.analytics.names import DEFAULT_SOURCE, TRANSACTION_FIELDS
from parcours.core import imports
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState, print_row_errors

out = Console()


def register(analytics_app: typer.Typer, export_app: typer.Typer, import_app: typer.Typer) -> None:
    """Add this module's commands to the groups."""
    analytics_app.command("import-footfall")(import_footfall_command)
    import_app.command("transactions")(import_transactions_command)
    analytics_app.command("cohorts")(cohorts_command)
    analytics_app.command("rfm")(rfm_command)
    analytics_app.command("clv")(clv_command)


AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="End of the history, YYYY-MM-DD (default: now).")
]


def _as_of(value: str | None) -> datetime:
    return parse_day(value) or SYSTEM_CLOCK.now()


def cohorts_command(
    by: Annotated[str, typer.Option("--by", help="month or channel (of first purchase)")] = "month",
    months: Annotated[int, typer.Option("--months", help="Months followed.")] = 12,
    start: StartOpt = None,
    end: EndOpt = None,
    engine: EngineOpt = "live",
    parquet: ParquetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Retention by first-purchase month or first channel."""
    from parcours.analytics import cohorts

    query = cohorts.CohortQuery(by, months, parse_day(start), parse_day(end))
    query.check()
    with cli_engine(engine, parquet) as running:
        show_rows(cohorts.retention(running, query), fmt)


def rfm_command(
    as_of: AsOfOpt = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Customers and value per segment only.")
    ] = False,
    engine: EngineOpt = "live",
    parquet: ParquetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Recency, frequency and monetary scores (1-5) and segments of every customer."""
    from parcours.analytics import rfm

    with cli_engine(engine, parquet) as running:
        rows = rfm.rfm(running, rfm.RfmQuery(_as_of(as_of)))
    show_rows(rfm.segment_summary(rows) if summary else rows, fmt)


def clv_command(
    as_of: AsOfOpt = None,
    months: Annotated[int, typer.Option("--months", help="Horizon in months.")] = 12,
    discount: Annotated[
        float, typer.Option("--discount", help="Monthly discount rate (0.01 = 1 %).")
    ] = 0.01,
    top: Annotated[int, typer.Option("--top", help="Show the N most valuable.")] = 20,
    engine: EngineOpt = "live",
    parquet: ParquetOpt = None,
    fmt: FormatOpt = "table",
) -> None:
    """Customer lifetime value (BG/NBD + Gamma-Gamma): expected purchases, spend, CLV."""
    from parcours.analytics import clv

    query = clv.ClvQuery(_as_of(as_of), months, discount)
    query.check()
    with cli_engine(engine, parquet) as running:
        rows = clv.clv(running, query)
    rows.sort(key=lambda r: (-r["clv"], r["customer"]))
    show_rows(rows[:top], fmt)


def import_footfall_command(
    file: Annotated[Path, typer.Argument(help="CSV with columns store,hour,visitors.")],
    keep_good_rows: Annotated[
        bool, typer.Option("--keep-good-rows", help="Import the good rows, report the bad ones.")
    ] = False,
) -> None:
    """Import door-counter footfall (visitors per store and hour, UTC); a store and hour
    imported again is replaced."""
    from parcours.analytics import footfall

    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    db = CliState.database()
    try:
        with db.transaction() as session, file.open(encoding="utf-8-sig", newline="") as stream:
            report = footfall.import_footfall(session, SYSTEM_CLOCK.now(), stream, keep_good_rows)
    except imports.ImportRejected as exc:
        print_row_errors(out, exc.row_errors)
        raise
    out.print(f"Stored {report.stored} hourly counts from {report.rows} rows.")
    if report.errors:
        out.print(f"[yellow]{report.rejected_rows} rows were rejected:[/yellow]")
        print_row_errors(out, report.errors)
        raise typer.Exit(1)


def import_transactions_command(
    file: Annotated[Path, typer.Argument(help="CSV (or .csv.gz), one row per sold line.")],
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="COLUMN=FIELD: the file's column for a field ("
            + ", ".join(TRANSACTION_FIELDS)
            + "); repeat for each.",
        ),
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="Name of the old system (orders are keyed by it).")
    ] = DEFAULT_SOURCE,
    warehouse: Annotated[
        str | None,
        typer.Option("--warehouse", help="Code of the warehouse web sales left from."),
    ] = None,
    keep_good_rows: Annotated[
        bool, typer.Option("--keep-good-rows", help="Import the good rows, report the bad ones.")
    ] = False,
) -> None:
    """Import years of line-level sales as past orders; returns, new products and new
    customers included; importing the same file again adds nothing."""
    from parcours.analytics import transactions

    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    mapping = transactions.parse_mapping(map_ or [])
    frame = transactions.read_transactions(file, mapping)
    db = CliState.database()
    try:
        with db.transaction() as session, out.status("Importing sales history…"):
            report = transactions.import_transactions(
                session, SYSTEM_CLOCK.now(), frame, source, keep_good_rows, warehouse
            )
    except imports.ImportRejected as exc:
        print_row_errors(out, exc.row_errors)
        raise
    out.print(
        f"Imported {report.orders} orders ({report.lines} lines, {report.returns} with "
        f"returns) from {report.rows} rows; created {report.new_products} products and "
        f"{report.new_customers} customers."
    )
    if report.errors:
        out.print(f"[yellow]{report.rejected_rows} rows were rejected:[/yellow]")
        print_row_errors(out, report.errors)
        raise typer.Exit(1)
