"""`parcours analytics attribution …`: multi-touch attribution on a path file or on the
journeys recorded in the database."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

# The engine options and output of the metrics commands, shared so every
# `parcours analytics` command reads the same way.
from parcours.analytics.commandline import (
    EndOpt,
    EngineOpt,
    ParquetOpt,
    StartOpt,
    cli_engine,
    parse_day,
    show_rows,
)
from parcours.analytics.names import MAX_ORDER, MODELS
from parcours.core.errors import ParcoursError
from parcours.core.imports import ImportRejected

err = Console(stderr=True, soft_wrap=True)

ModelOption = Annotated[
    str, typer.Option("--model", help=f"Attribution model: {'|'.join(MODELS)}.")
]
OrderOption = Annotated[
    int, typer.Option("--order", min=1, max=MAX_ORDER, help="Markov chain order (1 to 4).")
]
HalfLifeOption = Annotated[
    float | None,
    typer.Option(
        "--half-life",
        help="Time decay half-life: days when touches have times, else touches "
        "(defaults: 7 days, 1 touch).",
    ),
]


def attribution_command(
    file: Annotated[Path, typer.Argument(help="Path file (path;total_conversions;…).")],
    model: ModelOption = "markov",
    order: OrderOption = 1,
    sep: Annotated[str, typer.Option("--sep", help="Column separator.")] = ";",
    touch_sep: Annotated[str, typer.Option("--touch-sep", help="Touch separator.")] = ">",
    half_life: HalfLifeOption = None,
) -> None:
    """Attribute the conversions of a path file; writes channel,conversions,value CSV."""
    from parcours.analytics.attribution import attribute
    from parcours.analytics.pathfile import read_paths, write_attribution

    if not file.is_file():
        err.print(f"[red]Error[/red] — {file} is not a file.", highlight=False)
        raise typer.Exit(2)
    with _refusals_exit_2():
        try:
            with file.open("rb") as stream:
                paths = read_paths(stream, sep=sep, touch_sep=touch_sep)
        except ImportRejected as exc:
            _print_rejected(exc, file)
            raise typer.Exit(2) from None
        result = attribute(paths, model, order=order, half_life=half_life)
    write_attribution(sys.stdout, result)


@contextmanager
def _refusals_exit_2() -> Iterator[None]:
    """A refused request prints its reason and exits with code 2 (bad usage or input)."""
    try:
        yield
    except ParcoursError as exc:
        err.print(f"[red]Error[/red] — {exc.detail}", highlight=False)
        raise typer.Exit(2) from None


def _print_rejected(exc: ImportRejected, file: Path) -> None:
    bad = len({e.row for e in exc.row_errors})
    err.print(
        f"[red]Error[/red] — {file.name}: {bad} rows are invalid; nothing was attributed. "
        "Fix them and run again.",
        highlight=False,
    )
    for problem in exc.row_errors[:50]:
        err.print(f"  line {problem.row}, column {problem.column}: {problem.message}")
    if len(exc.row_errors) > 50:
        err.print(f"  … and {len(exc.row_errors) - 50} more problems.")


def attribution_report_command(
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help=f"Models ({'|'.join(MODELS)}); repeat for several."),
    ] = None,
    order: Annotated[int, typer.Option("--order", help="Markov chain order (1 to 4).")] = 1,
    lookback_days: Annotated[int, typer.Option("--lookback-days", min=1)] = 30,
    start: StartOpt = None,
    end: EndOpt = None,
    engine: EngineOpt = "live",
    parquet: ParquetOpt = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout instead of a table.")
    ] = False,
) -> None:
    """Conversions and revenue (cents) credited to each channel by each model, from the
    journeys recorded (offline touches included)."""
    from parcours.analytics.attribution_report import (
        DEFAULT_MODELS,
        attribution_report,
        check_models,
    )
    from parcours.analytics.metrics import MetricQuery

    models = tuple(model or DEFAULT_MODELS)
    query = MetricQuery(start=parse_day(start), end=parse_day(end))
    with _refusals_exit_2():
        check_models(models, order)
        with cli_engine(engine, parquet) as running:
            rows = attribution_report(running, query, models, order, timedelta(days=lookback_days))
    if as_csv or not rows:
        show_rows(rows, "csv" if as_csv else "table")
        return
    _show_by_model(rows, models)


def _show_by_model(rows: list[dict[str, Any]], models: Sequence[str]) -> None:
    """One block of rows per model: a wide table of every model would not fit a terminal."""
    table = Table("model", "channel", "conversions", "value (cents)")
    for model in models:
        for row in rows:
            table.add_row(
                model,
                row["channel"],
                f"{row[f'{model}_conversions']:.4g}",
                str(row[f"{model}_value"]),
            )
        table.add_section()
    Console().print(table)


def acquisition_report_command(
    lookback_days: Annotated[int, typer.Option("--lookback-days", min=1)] = 30,
    start: StartOpt = None,
    end: EndOpt = None,
    engine: EngineOpt = "live",
    parquet: ParquetOpt = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout instead of a table.")
    ] = False,
) -> None:
    """New customers per month and first-touch channel, with their first-order revenue
    (cents)."""
    from parcours.analytics.attribution_report import acquisition_report
    from parcours.analytics.metrics import MetricQuery

    query = MetricQuery(start=parse_day(start), end=parse_day(end))
    with _refusals_exit_2(), cli_engine(engine, parquet) as running:
        rows = acquisition_report(running, query, timedelta(days=lookback_days))
    show_rows(rows, "csv" if as_csv else "table")


def register(analytics_app: typer.Typer, export_app: typer.Typer, import_app: typer.Typer) -> None:
    """Add this module's commands to the groups."""
    analytics_app.command("attribution")(attribution_command)
    analytics_app.command("attribution-report")(attribution_report_command)
    analytics_app.command("acquisition-report")(acquisition_report_command)
