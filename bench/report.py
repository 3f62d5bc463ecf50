"""How every benchmark reports: rich tables on stdout, then one JSON object as the last line.

The JSON line is for machines (CI, comparisons over time): snake_case names that carry
their unit (`seconds`, `customers_per_s`, `p99_us`). Progress goes to stderr so that
stdout holds only the tables and that line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table as RichTable

Figure = float | int | str | bool
Figures = dict[str, Figure]

_progress = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Table:
    """A titled table of already formatted cells; the first column is left-aligned."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Report:
    """What one benchmark run measured: tables for people, figures for machines."""

    title: str
    figures: Figures
    tables: Sequence[Table] = field(default_factory=tuple)


def note(message: str) -> None:
    """A progress line on stderr."""
    _progress.print(f"[dim]{message}[/dim]")


def print_report(report: Report) -> None:
    """Print the tables, then the figures as one JSON object on the last line of stdout."""
    out = Console(highlight=False)
    out.print(f"[bold]{report.title}[/bold]")
    for table in report.tables:
        rendered = RichTable(title=table.title, title_justify="left")
        for index, column in enumerate(table.columns):
            rendered.add_column(column, justify="left" if index == 0 else "right")
        for row in table.rows:
            rendered.add_row(*row)
        out.print(rendered)
    out.file.flush()
    print(json.dumps(report.figures), flush=True)


def seconds(value: float) -> str:
    return f"{value:,.3f}"


def count(value: float) -> str:
    return f"{value:,.0f}"


def verdict(passed: bool) -> str:
    return "[green]PASS[/green]" if passed else "[red]FAIL[/red]"
