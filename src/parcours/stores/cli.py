"""`parcours stores`: list the network, find the nearest stores, import a network file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState, print_row_errors
from parcours.core.imports import ImportRejected, format_of, read_rows
from parcours.stores.locator import nearest_stores, resolve_place
from parcours.stores.models import Store
from parcours.stores.transfer import import_stores

app = typer.Typer(help="The store network: list, locate, import.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@app.command("list")
def list_command(
    kind: Annotated[str | None, typer.Option(help="Only `store` or `warehouse`.")] = None,
) -> None:
    """List stores and warehouses with their city and services."""
    from sqlalchemy import select

    table = Table("code", "name", "kind", "city", "services", "active")
    with CliState.database().transaction() as session:
        query = select(Store).order_by(Store.code)
        if kind:
            query = query.where(Store.kind == kind)
        for store in session.scalars(query):
            table.add_row(
                store.code,
                store.name,
                store.kind,
                f"{store.postcode} {store.city}",
                ", ".join(store.services),
                "yes" if store.active else "no",
            )
    table.columns[0].no_wrap = True
    out.print(table)


@app.command("nearest")
def nearest_command(
    postcode: Annotated[str | None, typer.Option(help="A French postcode, e.g. 69002.")] = None,
    city: Annotated[str | None, typer.Option(help="A city name, e.g. Lyon.")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude (with --lon).")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude (with --lat).")] = None,
    service: Annotated[str | None, typer.Option(help="Only stores offering this service.")] = None,
    limit: Annotated[int, typer.Option(help="How many stores.")] = 5,
) -> None:
    """The nearest stores to a postcode, a city or a point, with opening state."""
    centre = resolve_place(lat, lon, postcode, city)
    table = Table("code", "name", "km", "open now", "next opening (local)", "services")
    with CliState.database().transaction() as session:
        found = nearest_stores(session, centre, SYSTEM_CLOCK.now(), limit, service)
    for store in found:
        table.add_row(
            store.code,
            store.name,
            f"{store.distance_km:.1f}",
            "yes" if store.open_now else "no",
            _local(store.next_opening, store.timezone),
            ", ".join(store.services),
        )
    out.print(table)


@app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="A CSV or JSON file of stores (see docs/stores.md).")
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: extension).")
    ] = None,
    keep_good_rows: Annotated[
        bool, typer.Option(help="Create the valid stores and report the others.")
    ] = False,
) -> None:
    """Create stores and warehouses from a file; all-or-nothing unless --keep-good-rows."""
    chosen = format_of(file, fmt)
    try:
        with CliState.database().transaction() as session, file.open(encoding="utf-8") as stream:
            report = import_stores(
                session,
                SYSTEM_CLOCK.now(),
                CLI_ACTOR,
                read_rows(stream, chosen),
                chosen,
                keep_good_rows,
            )
    except ImportRejected as exc:
        print_row_errors(err, exc.row_errors)
        raise
    if report.errors:
        print_row_errors(err, report.errors)
    out.print(f"{report.created} of {report.rows} stores created, {len(report.errors)} problem(s).")


def _local(moment: datetime | None, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%a %d %b %H:%M") if moment else ""
