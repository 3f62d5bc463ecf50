"""`parcours orders …`: marketplace imports and offline till files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState, print_row_errors
from parcours.core.errors import InvalidInput, ParcoursError
from parcours.core.imports import ImportRejected

app = typer.Typer(help="Orders: marketplace imports, POS receipt files.", no_args_is_help=True)
out = Console()


@app.command("import-marketplace")
def import_marketplace_command(
    file: Annotated[Path, typer.Argument(help="The marketplace's CSV export.")],
    marketplace: Annotated[str, typer.Option("--marketplace", help="Its name, e.g. zalando.")],
    all_or_nothing: Annotated[
        bool, typer.Option("--all-or-nothing", help="Import nothing when any row is bad.")
    ] = False,
) -> None:
    """Import marketplace orders (one per order id); re-imports skip existing orders."""
    from parcours.orders import marketplace as imports

    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    db = CliState.database()
    columns = (TextColumn("orders"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=out) as bar, file.open(encoding="utf-8-sig") as stream:
            task = bar.add_task("orders", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            with db.transaction() as session:
                report = imports.import_marketplace(
                    session, SYSTEM_CLOCK.now(), stream, marketplace, all_or_nothing, progress
                )
    except ImportRejected as exc:
        print_row_errors(out, exc.row_errors)
        raise
    out.print(
        f"Imported {len(report.imported)} orders from {report.rows} rows of {file.name} "
        f"(source marketplace:{marketplace}); {len(report.skipped)} already imported."
    )
    if report.skipped:
        out.print("Skipped (already imported): " + ", ".join(report.skipped[:20]))
    if report.errors:
        out.print(f"[yellow]{report.rejected_orders} rows were not imported:[/yellow]")
        print_row_errors(out, report.errors)
        raise typer.Exit(1)


@app.command("import-receipts")
def import_receipts_command(
    file: Annotated[Path, typer.Argument(help="A till's offline file: one receipt per line.")],
) -> None:
    """Record a till's offline receipts (JSON Lines); bad ones are reported, good ones kept."""
    from parcours.orders import pos
    from parcours.orders.pos_schemas import receipt_from_json

    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    parsed: list[pos.Receipt | ParcoursError] = []
    line_of: list[int] = []  # the file's line of each receipt (blank lines are skipped)
    with file.open(encoding="utf-8-sig") as stream:
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            line_of.append(number)
            try:
                parsed.append(receipt_from_json(json.loads(text), f"#/receipts/{len(parsed)}"))
            except json.JSONDecodeError as exc:
                parsed.append(InvalidInput(f"Line {number} is not JSON: {exc.msg}."))
            except ParcoursError as exc:
                parsed.append(exc)
    recorded = 0
    rejected: list[pos.RejectedReceipt] = []
    with CliState.database().transaction() as session:
        for start in range(0, len(parsed), pos.MAX_BATCH):
            chunk = parsed[start : start + pos.MAX_BATCH]
            result = pos.record_receipts(session, SYSTEM_CLOCK.now(), chunk, offset=start)
            recorded += sum(1 for _, r in result.accepted if r.created)
            rejected += result.rejected
    out.print(
        f"Recorded {recorded} receipts from {file.name}; "
        f"{len(parsed) - recorded - len(rejected)} were already recorded, {len(rejected)} rejected."
    )
    if rejected:
        table = Table("line", "reference", "problem")
        for r in rejected[:50]:
            problems = "; ".join(f"{e.pointer}: {e.detail}" for e in r.errors) or r.detail
            table.add_row(str(line_of[r.index]), r.reference, problems)
        out.print(table)
        raise typer.Exit(1)
