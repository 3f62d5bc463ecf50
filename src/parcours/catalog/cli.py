"""`parcours catalog`: import and export the catalogue from the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parcours.catalog import feeds, transfer
from parcours.core import imports
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState, print_row_errors
from parcours.core.db import Database

app = typer.Typer(help="Import and export the product catalogue.", no_args_is_help=True)
feed_app = typer.Typer(help="Write Google Merchant Center feeds.", no_args_is_help=True)
app.add_typer(feed_app, name="feed")
out = Console()


def _database() -> Database:
    return CliState.database()


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
    fmt = imports.format_of(file, format)
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
    except imports.ImportRejected as exc:
        print_row_errors(out, exc.row_errors)
        raise
    out.print(
        f"Imported {report.products} products, {report.variants} variants and "
        f"{report.prices} prices from {report.rows} rows."
    )
    if report.errors:
        out.print(f"[yellow]{report.rejected_rows} rows were rejected:[/yellow]")
        print_row_errors(out, report.errors)
        raise typer.Exit(1)


@app.command("export")
def export_command(
    file: Annotated[Path, typer.Argument(help="Where to write; .csv or .json.")],
    format: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: from the extension).")
    ] = None,
) -> None:
    """Export the catalogue, one row per variant with its current channel prices."""
    fmt = imports.format_of(file, format)
    db = _database()
    with db.transaction() as session, file.open("w", encoding="utf-8", newline="") as stream:
        count = transfer.write_export(
            transfer.export_rows(session, SYSTEM_CLOCK.now()), stream, fmt
        )
    out.print(f"Exported {count} variants to {file}.")


def _feed_format(file: Path, format: str | None) -> str:
    fmt = format or ("tsv" if file.suffix.lower() == ".tsv" else "xml")
    if fmt not in feeds.FORMATS:
        raise typer.BadParameter("use --format xml or tsv", param_hint="--format")
    return fmt


def _write_whole(file: Path, write: Callable[[IO[str]], feeds.FeedReport]) -> feeds.FeedReport:
    """Write beside `file` and move it in place once complete: a failed run leaves the
    previous feed untouched rather than half a file."""
    partial = file.with_name(file.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            report = write(stream)
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)
    return report


def _print_feed_report(report: feeds.FeedReport, file: Path, limit: int = 50) -> None:
    out.print(f"Wrote {report.items} items to {file}; {report.refused} were left out.")
    if not report.problems:
        return
    table = Table("item", "field", "problem", "left out")
    for problem in report.problems[:limit]:
        table.add_row(problem.id, problem.field, problem.message, "yes" if problem.refused else "")
    out.print(table)
    if len(report.problems) > limit:
        out.print(f"… and {len(report.problems) - limit} more problems.")


@feed_app.command("google-products")
def google_products_command(
    file: Annotated[Path, typer.Argument(help="Where to write; .xml or .tsv.")],
    channel: Annotated[str, typer.Option("--channel", help="Channel code, e.g. web.")],
    locale: Annotated[str, typer.Option("--locale", help="fr or en.")] = "fr",
    format: Annotated[
        str | None, typer.Option("--format", help="xml or tsv (default: from the extension).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="The shop's URL (default: the channel's storefront_url)."),
    ] = None,
) -> None:
    """Write the Google product feed of a channel in one locale."""
    fmt = _feed_format(file, format)
    db = _database()
    with db.transaction() as session, out.status("Writing the product feed…"):
        report = _write_whole(
            file,
            lambda stream: feeds.write_google_products(
                session, SYSTEM_CLOCK.now(), channel, locale, stream, fmt, base_url
            ),
        )
    _print_feed_report(report, file)


@feed_app.command("google-local-inventory")
def google_local_inventory_command(
    file: Annotated[Path, typer.Argument(help="Where to write; .xml or .tsv.")],
    store: Annotated[str, typer.Option("--store", help="Store code.")],
    format: Annotated[
        str | None, typer.Option("--format", help="xml or tsv (default: from the extension).")
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option("--channel", help="Channel of the store prices (default: kind store)."),
    ] = None,
) -> None:
    """Write the Google local inventory feed of one store."""
    fmt = _feed_format(file, format)
    db = _database()
    with db.transaction() as session, out.status("Writing the local inventory feed…"):
        report = _write_whole(
            file,
            lambda stream: feeds.write_local_inventory(
                session, SYSTEM_CLOCK.now(), store, stream, fmt, channel
            ),
        )
    _print_feed_report(report, file)
