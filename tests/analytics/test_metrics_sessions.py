"""Sessions at the 30-minute edge, and KPIs run together or one by one, on DuckDB (over
a Parquet export loaded into its tables) and on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from parcours.analytics import engines, metrics
from parcours.analytics.export import arrow_schema
from parcours.analytics.facts import FACT_COLUMNS, FACT_NAMES, facts_of
from parcours.analytics.metrics import MetricQuery

START = datetime(2026, 3, 2, 10, 0, 0)
SESSION_METRICS = ["sessions", "bounce_rate", "conversion_rate", "cart_abandonment_rate"]


def _events(rows: list[tuple[str, str, datetime, str]]) -> dict[str, list[Any]]:
    """Events (visitor, channel, time, event name) with the other columns empty."""
    data: dict[str, list[Any]] = {c: [None] * len(rows) for c in FACT_COLUMNS["events"]}
    data["seq"] = list(range(1, len(rows) + 1))
    data["type"] = ["track"] * len(rows)
    data["profile"] = [r[0] for r in rows]
    data["channel"] = [r[1] for r in rows]
    data["timestamp"] = [r[2] for r in rows]
    data["event"] = [r[3] for r in rows]
    data["device"] = ["desktop"] * len(rows)
    return data


def _tables(events: dict[str, list[Any]]) -> dict[str, pa.Table]:
    tables = {name: arrow_schema(name).empty_table() for name in FACT_NAMES}
    tables["events"] = pa.table(events, schema=arrow_schema("events"))
    return tables


@pytest.fixture(params=["duckdb", "sqlite"])
def engine_of(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A function giving an engine over the given events."""
    opened: list[engines.Engine] = []

    def make(events: dict[str, list[Any]]) -> engines.Engine:
        tables = _tables(events)
        if request.param == "duckdb":
            folder = tmp_path / f"export{len(opened)}"
            for name, table in tables.items():
                (folder / name).mkdir(parents=True)
                pq.write_table(table, folder / name / "part.parquet")
            engine = engines.duckdb_engine(folder)
        else:
            backend = ibis.sqlite.connect()
            raw = {name: backend.create_table(name, table) for name, table in tables.items()}
            engine = engines.Engine("sqlite", backend, facts_of(raw))
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.backend.disconnect()


def test_a_gap_is_measured_in_whole_seconds_on_every_engine(engine_of: Any) -> None:
    # 1800.5 s apart: 10:00:00 and 10:30:00 in whole seconds, no break (Spark and SQLite
    # only see whole seconds); 1801 s apart: a new session.
    engine = engine_of(
        _events(
            [
                ("léa", "web", START, "Product Viewed"),
                ("léa", "web", START + timedelta(seconds=1800, microseconds=500_000), "Home"),
                ("léa", "web", START + timedelta(seconds=3601, microseconds=500_000), "Home"),
            ]
        )
    )
    [row] = metrics.kpis(engine, ["sessions", "bounce_rate"], MetricQuery())
    assert row == {"sessions": 2, "bounce_rate": 0.5}


def test_events_at_one_instant_share_a_session(engine_of: Any) -> None:
    same = START + timedelta(hours=5)
    engine = engine_of(
        _events(
            [
                ("marc", "app", START, "Home"),
                ("marc", "app", same, "Product Added"),
                ("marc", "app", same, "Order Completed"),
                ("marc", "app", same, "Home"),
                ("marc", "web", same, "Product Added"),
            ]
        )
    )
    rows = metrics.kpis(engine, SESSION_METRICS, MetricQuery(dimensions=("channel",)))
    assert rows == [
        {
            "channel": "app",
            "sessions": 2,
            "bounce_rate": 0.5,
            "conversion_rate": 0.5,
            "cart_abandonment_rate": 0.0,
        },
        {
            "channel": "web",
            "sessions": 1,
            "bounce_rate": 1.0,
            "conversion_rate": 0.0,
            "cart_abandonment_rate": 1.0,
        },
    ]


def test_metrics_run_together_as_one_by_one(engine_of: Any) -> None:
    """`kpis` runs the metrics of one source in one query: same figures as each alone."""
    engine = engine_of(
        _events(
            [
                ("léa", "web", START + timedelta(minutes=m), name)
                for m, name in [(0, "Home"), (10, "Product Added"), (95, "Product Viewed")]
            ]
            + [("marc", "app", START + timedelta(minutes=3), "Order Completed")]
        )
    )
    query = MetricQuery(dimensions=("channel",))
    together = metrics.kpis(engine, SESSION_METRICS, query)
    alone = [metrics.kpis(engine, [name], query) for name in SESSION_METRICS]
    for name, rows in zip(SESSION_METRICS, alone, strict=True):
        assert [r[name] for r in rows] == [r[name] for r in together]
    assert [r["sessions"] for r in together] == [1, 2]
