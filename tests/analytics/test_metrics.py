"""KPIs on a hand-built shop: the same figures, worked out by hand, on SQLite and
PostgreSQL live, on DuckDB over a Parquet export and on Spark (slow)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from parcours.analytics import engines, metrics
from parcours.analytics.metrics import MetricQuery
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from tests.analytics import kpi_data
from tests.analytics.kpi_data import engine_on

WHOLE_RANGE: dict[str, Any] = {
    "sales": 23000,  # 7000 + 1000 + 5000 + 7000 + 3000; the cancelled order is out
    "orders": 5,
    "units": 9,
    "average_basket": 4600.0,
    "items_per_basket": 1.8,
    "returns_rate": pytest.approx(1 / 9),
    "sessions": 5,  # Léa 2 on the web, Marc 1 web + 1 app, one visitor
    "bounce_rate": 0.4,  # Léa's second session and the visitor's
    "conversion_rate": 0.2,
    "cart_abandonment_rate": 0.5,  # Marc's web cart
    "footfall": 75,
    "store_conversion": pytest.approx(2 / 75),
    "click_collect_share": pytest.approx(1 / 3),
    "drive_share": pytest.approx(1 / 3),
    "delivery_share": pytest.approx(1 / 3),
    # Units of known buyers: 6; considered first: Léa's dress, Marc's bag (viewed in the app
    # 25 min before; his web view is 8 days old): 4 impulse units.
    "impulse_share": pytest.approx(4 / 6),
    "omnichannel_customers": 1,
    "omnichannel_revenue": 8000,
    "omnichannel_orders_per_customer": 2.0,
    "single_channel_customers": 1,
    "single_channel_revenue": 12500,  # order totals: delivery included
    "single_channel_revenue_per_customer": 12500.0,
    "omnichannel_share": 0.5,
}


def check_kpis(engine: engines.Engine) -> None:
    [row] = metrics.kpis(engine, list(WHOLE_RANGE), MetricQuery())
    assert row == WHOLE_RANGE
    by_channel = metrics.kpis(
        engine, ["sales", "orders"], MetricQuery(dimensions=("channel", "period"), grain="week")
    )
    assert by_channel == [
        {"channel": "store", "period": "2026-03-02", "sales": 1000, "orders": 1},
        {"channel": "store", "period": "2026-03-09", "sales": 3000, "orders": 1},
        {"channel": "web", "period": "2026-03-02", "sales": 12000, "orders": 2},
        {"channel": "web", "period": "2026-03-09", "sales": 7000, "orders": 1},
    ]
    by_category = metrics.kpis(engine, ["sales", "orders"], MetricQuery(dimensions=("category",)))
    assert by_category == [
        {"category": "Accessoires", "sales": 7000, "orders": 1},
        {"category": "Maison", "sales": 6000, "orders": 3},
        {"category": "Robes", "sales": 10000, "orders": 2},
    ]
    by_store = metrics.kpis(
        engine, ["footfall", "store_conversion"], MetricQuery(dimensions=("store",))
    )
    assert by_store == [
        {"store": "LYO-1", "footfall": 50, "store_conversion": 0.02},
        {"store": "PAR-1", "footfall": 25, "store_conversion": 0.04},
    ]
    sessions = metrics.kpis(
        engine, ["sessions", "conversion_rate"], MetricQuery(dimensions=("channel",))
    )
    assert sessions == [
        {"channel": "app", "sessions": 1, "conversion_rate": 0.0},
        {"channel": "web", "sessions": 4, "conversion_rate": 0.25},
    ]
    filtered = metrics.kpis(
        engine,
        ["sales"],
        MetricQuery(
            channels=("web",),
            categories=("Robes",),
            start=datetime(2026, 3, 2, tzinfo=UTC),
            end=datetime(2026, 3, 3, tzinfo=UTC),
        ),
    )
    assert filtered == [{"sales": 10000}]


def check_empty_period(engine: engines.Engine) -> None:
    empty = MetricQuery(
        start=datetime(2020, 1, 1, tzinfo=UTC), end=datetime(2020, 2, 1, tzinfo=UTC)
    )
    [row] = metrics.kpis(engine, list(metrics.METRICS), empty)
    assert row["sales"] == 0
    assert row["orders"] == 0
    assert row["sessions"] == 0
    assert row["average_basket"] is None
    assert row["bounce_rate"] is None
    assert row["store_conversion"] is None
    assert row["impulse_share"] is None
    assert (
        metrics.kpis(
            engine,
            ["sales"],
            MetricQuery(dimensions=("channel",), start=empty.start, end=empty.end),
        )
        == []
    )


@pytest.mark.parametrize("engine_name", ["live", "duckdb"])
def test_kpis_match_the_hand_computed_figures(
    db: Database, tmp_path: Path, engine_name: str
) -> None:
    kpi_data.build(db)
    with engine_on(db, engine_name, tmp_path) as engine:
        check_kpis(engine)
        check_empty_period(engine)


@pytest.mark.slow
def test_kpis_on_spark_match_the_hand_computed_figures(sqlite_db: Database, tmp_path: Path) -> None:
    kpi_data.build(sqlite_db)
    with engine_on(sqlite_db, "spark", tmp_path) as engine:
        check_kpis(engine)
        check_empty_period(engine)


def test_an_unknown_metric_or_dimension_is_named(sqlite_db: Database) -> None:
    with engines.open_engine("live", database=sqlite_db) as engine:
        with pytest.raises(InvalidInput, match=r"unknown metric.*gross_margin"):
            metrics.kpis(engine, ["sales", "gross_margin"], MetricQuery())
        with pytest.raises(InvalidInput, match=r"unknown dimension.*colour"):
            metrics.kpis(engine, ["sales"], MetricQuery(dimensions=("colour",)))
        with pytest.raises(InvalidInput, match="unknown period"):
            metrics.kpis(engine, ["sales"], MetricQuery(dimensions=("period",), grain="fortnight"))
        with pytest.raises(InvalidInput, match="sessions cannot be split or filtered by category"):
            metrics.kpis(engine, ["sessions"], MetricQuery(dimensions=("category",)))


def test_an_unknown_engine_or_a_missing_export_is_refused(
    sqlite_db: Database, tmp_path: Path
) -> None:
    with (
        pytest.raises(InvalidInput, match="Unknown engine 'hive'"),
        engines.open_engine("hive", database=sqlite_db),
    ):
        pass
    with (
        pytest.raises(InvalidInput, match="parcours export parquet"),
        engines.open_engine("duckdb", parquet=tmp_path / "nothing"),
    ):
        pass
