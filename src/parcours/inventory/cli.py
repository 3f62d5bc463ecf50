"""`parcours inventory`: stock counts from store files, and stock of a SKU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parcours import stores
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.inventory import counts, service

app = typer.Typer(
    help="Stock: counts from store files and stock per location.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)
SHOWN_LINES = 50


def _database() -> Database:
    return CliState.database()


@app.command("import-count")
def import_count(
    file: Annotated[Path, typer.Argument(help="CSV with the columns sku, counted_quantity.")],
    store: Annotated[str, typer.Option("--store", help="Code of the counted store or warehouse.")],
    keep_good_rows: Annotated[
        bool, typer.Option(help="Record the good rows even when some rows are bad.")
    ] = False,
) -> None:
    """Record a stock count: one count movement per SKU whose count differs, and a report."""
    if not file.is_file():
        raise typer.BadParameter(f"no such file: {file}", param_hint="FILE")
    text = file.read_text(encoding="utf-8-sig")
    db = _database()
    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar, db.transaction() as session:
        location = stores.get_store_by_code(session, store)
        reading = bar.add_task("reading", total=None)
        rows, errors = counts.parse_count_file(text)
        bar.update(reading, total=len(rows) + len(errors), completed=len(rows) + len(errors))
        recording = bar.add_task("recording", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(recording, total=total, completed=done)

        report = counts.import_count(
            session, SYSTEM_CLOCK.now(), location.id, rows, errors, keep_good_rows, progress
        )
    _print_report(report, store)
    if not report.applied:
        raise InvalidInput(
            f"{len(report.errors)} bad row(s): nothing was recorded. Fix the file, or run again "
            "with --keep-good-rows to record the good rows."
        )


def _print_report(report: counts.CountReport, store: str) -> None:
    if report.errors:
        table = Table("line", "column", "problem", title="Rows refused", title_justify="left")
        for error in report.errors[:SHOWN_LINES]:
            table.add_row(str(error.row), error.column, error.message)
        out.print(table)
    if not report.applied:
        return
    changed = [line for line in report.lines if line.delta]
    table = Table(
        "sku", "expected", "counted", "delta", title="Reconciliation", title_justify="left"
    )
    for line in sorted(changed, key=lambda x: -abs(x.delta))[:SHOWN_LINES]:
        table.add_row(line.sku, str(line.expected), str(line.counted), f"{line.delta:+d}")
    out.print(table)
    out.print(
        f"Count {report.reference} at {store}: {len(report.lines)} SKU(s) counted, "
        f"{len(changed)} differed and were corrected, {len(report.errors)} row(s) refused."
    )


@app.command("stock")
def stock(sku: Annotated[str, typer.Argument(help="The SKU to look up.")]) -> None:
    """Show a SKU's stock per location: on hand, reserved, safety stock and available."""
    db = _database()
    table = Table("location", "kind", "on hand", "reserved", "safety", "available")
    with db.transaction() as session:
        levels = service.stock_by_location(session, sku)
    for level in levels:
        table.add_row(
            level.code,
            level.kind,
            str(level.on_hand),
            str(level.reserved),
            str(level.safety_stock),
            str(level.available),
        )
    if not levels:
        out.print(f"No location holds or ever held SKU {sku!r}.")
        return
    out.print(table)
