"""What the insight pages share: the filter bar, the engine behind them, value formatting
and CSV downloads.

The console runs the metrics on the engine named by `PARCOURS_ANALYTICS_ENGINE` (`live`
by default: the application database; `duckdb` over `PARCOURS_ANALYTICS_PARQUET`, the
directory `parcours export parquet` fills, for larger data).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from babel.numbers import format_percent
from fastapi import Request
from fastapi.responses import Response

from parcours.analytics.engines import Engine, configured_engine
from parcours.analytics.metrics import GRAINS, METRICS, MetricQuery
from parcours.core.db import Database
from parcours.core.errors import FieldError, InvalidInput
from parcours.core.i18n import format_number
from parcours.core.money import Money
from parcours.core.settings import Settings

REPORT_CURRENCY = "EUR"
DEFAULT_DAYS = 365


@dataclass(frozen=True)
class Filters:
    """The filter bar of every insight page: a date range (local dates, end included),
    the period grain and optional channel and store."""

    start: date
    end: date
    grain: str
    channel: str
    store: str

    def query(self, *dimensions: str) -> MetricQuery:
        """The metric query for these filters, split by `dimensions`."""
        return MetricQuery(
            dimensions=dimensions,
            grain=self.grain,
            start=datetime.combine(self.start, datetime.min.time(), UTC),
            end=datetime.combine(self.end + timedelta(days=1), datetime.min.time(), UTC),
            channels=(self.channel,) if self.channel else (),
            stores=(self.store,) if self.store else (),
        )

    def link(self, **changes: str) -> str:
        """The query string of these filters with some changed (for drill-down links)."""
        values = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "grain": self.grain,
            "channel": self.channel,
            "store": self.store,
            **changes,
        }
        return "?" + "&".join(f"{k}={v}" for k, v in values.items() if v)

    def applicable(self, names: Sequence[str], *dimensions: str) -> list[str]:
        """The metrics of `names` that can be split by `dimensions` and filtered as asked;
        the others are left out of a table or report rather than failing it."""
        asked = self.query(*dimensions).filters()
        return [
            name
            for name in names
            if all(d in METRICS[name].dimensions for d in dimensions)
            and all(f in METRICS[name].accepts() for f in asked)
        ]

    def without_store(self) -> Filters:
        return replace(self, store="")


def read_filters(request: Request, today: date) -> Filters:
    """The filters from the query string; the last 12 months by month when absent."""
    params = request.query_params
    end = _date(params.get("end"), "end") or today
    start = _date(params.get("start"), "start") or end - timedelta(days=DEFAULT_DAYS - 1)
    grain = params.get("grain") or "month"
    if grain not in GRAINS:
        raise InvalidInput(
            f"Unknown period {grain!r}: use {', '.join(GRAINS)}.",
            [FieldError(f"must be one of {', '.join(GRAINS)}", parameter="grain")],
        )
    if start > end:
        raise InvalidInput(
            "The start date is after the end date.",
            [FieldError("must not be after the end", parameter="start")],
        )
    channel = (params.get("channel") or "").strip()[:24]
    store = (params.get("store") or "").strip()[:32]
    return Filters(start=start, end=end, grain=grain, channel=channel, store=store)


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a date like 2026-01-31, not {value!r}.",
            [FieldError("must be a date (YYYY-MM-DD)", parameter=name)],
        ) from None


@contextmanager
def console_engine(database: Database, settings: Settings) -> Iterator[Engine]:
    """The engine the console reads, as configured (`PARCOURS_ANALYTICS_ENGINE`)."""
    with configured_engine(settings.analytics_engine, database, settings) as engine:
        yield engine


def format_value(value: Any, unit: str, locale: str) -> str:
    """A metric value for people: money, percentages, counts; an em dash when empty."""
    if value is None:
        return "—"
    if unit == "cents":
        return Money(round(value), REPORT_CURRENCY).format(locale)
    if unit == "fraction":
        return format_percent(value, format="#,##0.0%", locale=locale)
    if isinstance(value, float) and not value.is_integer():
        return format_number(round(value, 2), locale)
    return format_number(int(value), locale)


def csv_response(filename: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Response:
    """Rows as a CSV download (UTF-8, comma-separated, raw values: cents and fractions)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
