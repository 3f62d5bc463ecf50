"""What every `parcours analytics …` command shares: the engine, date and output options,
reading a day, printing rows as a table or CSV, and opening the engine asked for."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from parcours.analytics.names import ENGINES
from parcours.core.commandline import CliState

if TYPE_CHECKING:
    from parcours.analytics.engines import Engine

out = Console()
EngineOpt = Annotated[str, typer.Option("--engine", help=f"One of {', '.join(ENGINES)}.")]
ParquetOpt = Annotated[
    Path | None, typer.Option("--parquet", help="Parquet export directory (duckdb, spark).")
]
FormatOpt = Annotated[str, typer.Option("--format", help="table or csv.")]
StartOpt = Annotated[str | None, typer.Option("--start", help="First day, YYYY-MM-DD (UTC).")]
EndOpt = Annotated[str | None, typer.Option("--end", help="Day after the last, YYYY-MM-DD.")]


def parse_day(value: str | None) -> datetime | None:
    """A `YYYY-MM-DD` option as midnight UTC (None when absent)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def show_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    """Rows as a rich table, or as CSV on stdout with `fmt == "csv"`."""
    if not rows:
        out.print("No rows.")
        return
    columns = list(rows[0])
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(
            *(
                ""
                if row[c] is None
                else f"{row[c]:.4g}"
                if isinstance(row[c], float)
                else str(row[c])
                for c in columns
            )
        )
    out.print(table)


@contextmanager
def cli_engine(name: str, parquet: Path | None) -> Iterator[Engine]:
    """The engine by name: `live` on the configured database, the others on `parquet`."""
    from parcours.analytics.engines import open_engine  # Ibis: only for the commands using it

    if name == "live":
        with open_engine(name, database=CliState.database()) as engine:
            yield engine
    else:
        with open_engine(name, parquet=parquet) as engine:
            yield engine
