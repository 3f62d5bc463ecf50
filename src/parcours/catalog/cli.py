"""`parcours catalog`: import and export the catalogue from the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parcours.catalog import transfer
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.db import Database

app = typer.Typer(help="Import and export the product catalogue.", no_args_is_help=True)
out = Console()


class _Opened:
    """How commands open the database: the root command line injects it (the contexts
    sit below `parcours.runtime` and may not import it)."""

    database: Callable[[], Database] | None = None


def make_app(database: Callable[[], Database]) -> typer.Typer:
    """The command group, opening the database with `database()` when a command runs."""
    _Opened.database = database
    return app


def _database() -> Database:
    assert _Opened.database is not None, "make_app() was not called"
    return _Opened.database()


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV or JSON file, one row per variant.")],
    format: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: from the extension).")
    ] = None,
    keep_good_rows: Annotated[
        bool, typer.Option("--keep-good-rows", help="Import the good rows, report the bad ones.")
    ] = False,
) -> None:
    """Import products, variants and prices; all-or-nothing unless --keep-good-rows."""
    fmt = transfer.format_of(file, format)
    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    db = _database()
    columns = (TextColumn("import"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=out) as bar, file.open(encoding="utf-8-sig") as stream:
            task = bar.add_task("import", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            with db.transaction() as session:
                report = transfer.import_file(
                    session, SYSTEM_CLOCK.now(), stream, fmt, keep_good_rows, progress
                )
    except transfer.ImportRejected as exc:
        _print_errors(exc.row_errors)
        raise
    out.print(
        f"Imported {report.products} products, {report.variants} variants and "
        f"{report.prices} prices from {report.rows} rows."
    )
    if report.errors:
        out.print(f"[yellow]{report.rejected_rows} rows were rejected:[/yellow]")
        _print_errors(report.errors)
        raise typer.Exit(1)


def _print_errors(errors: list[transfer.RowError], limit: int = 50) -> None:
    table = Table("row", "column", "problem")
    for error in errors[:limit]:
        table.add_row(str(error.row), error.column, error.message)
    out.print(table)
    if len(errors) > limit:
        out.print(f"… and {len(errors) - limit} more problems.")


@app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="Where to write; .csv or .json.")],
    format: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: from the extension).")
    ] = None,
) -> None:
    """Export the catalogue, one row per variant with its current channel prices."""
    fmt = transfer.format_of(file, format)
    db = _database()
    with db.transaction() as session, file.open("w", encoding="utf-8", newline="") as stream:
        count = transfer.write_export(
            transfer.export_rows(session, SYSTEM_CLOCK.now()), stream, fmt
        )
    out.print(f"Exported {count} variants to {file}.")
