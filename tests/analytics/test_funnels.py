"""Funnels and paths on the hand-built shop (live SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from parcours.analytics import engines, funnels, paths
from parcours.analytics.metrics import MetricQuery
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from tests.analytics import kpi_data


def test_journey_custom_funnels_and_paths(db: Database) -> None:
    kpi_data.build(db)
    with engines.open_engine("live", database=db) as engine:
        journey = funnels.funnel(engine, funnels.journey_steps(), MetricQuery())
        # Léa and Marc searched; nobody used the store locator, so later stages are 0.
        assert [(r["name"], r["visitors"]) for r in journey] == [
            ("information_search", 2),
            ("visit_preparation", 0),
            ("in_store_or_on_site", 0),
            ("purchase", 0),
            ("after_purchase", 0),
        ]
        assert journey[1]["step_conversion"] == 0.0
        assert journey[2]["step_conversion"] is None
        steps = funnels.custom_steps(["Product Viewed", "Product Added", "Order Completed"])
        custom = funnels.funnel(engine, steps, MetricQuery(), breakdown="channel")
        assert [(r["channel"], r["step"], r["visitors"]) for r in custom] == [
            ("app", 1, 1),
            ("app", 2, 0),
            ("app", 3, 0),
            ("web", 1, 2),
            ("web", 2, 2),
            ("web", 3, 1),
        ]
        assert custom[-1]["conversion"] == 0.5
        short = funnels.funnel(engine, steps, MetricQuery(), window=timedelta(minutes=10))
        assert [r["visitors"] for r in short] == [2, 2, 0]  # Léa paid 15 min after viewing
        never = funnels.funnel(
            engine, funnels.custom_steps(["Coupon Entered", "Order Completed"]), MetricQuery()
        )
        assert [(r["visitors"], r["conversion"]) for r in never] == [(0, None), (0, None)]

        found = paths.conversion_paths(engine, MetricQuery())
        assert found == [
            paths.ConversionPath(("web",), conversions=1, value=7000, nulls=2),
            paths.ConversionPath(("web", "app"), conversions=0, value=0, nulls=1),
        ]
        assert paths.top_paths(found) == [
            {"path": "web", "conversions": 1, "value": 7000, "share": 1.0}
        ]
        assert paths.sankey(found) == {
            "nodes": [{"name": "1. web"}, {"name": "conversion"}],
            "links": [{"source": "1. web", "target": "conversion", "value": 1}],
        }


def test_a_funnel_needs_two_steps_and_a_known_breakdown(sqlite_db: Database) -> None:
    with pytest.raises(InvalidInput, match="at least two steps"):
        funnels.custom_steps(["Order Completed"])
    with engines.open_engine("live", database=sqlite_db) as engine:
        with pytest.raises(InvalidInput, match="Unknown breakdown 'shoe_size'"):
            funnels.funnel(engine, funnels.journey_steps(), MetricQuery(), breakdown="shoe_size")
        assert paths.conversion_paths(engine, MetricQuery()) == []
        assert paths.sankey([]) == {"nodes": [], "links": []}
