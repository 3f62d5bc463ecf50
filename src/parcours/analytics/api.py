"""`/v1/analytics/kpis`, `/funnels` and `/paths`: the metrics on the live database.

Reading needs a secret key with the `insight:read` scope. Dates are ISO 8601 (UTC when
no zone is given); the range is [start, end).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from parcours.analytics import funnels, metrics, paths
from parcours.analytics.engines import open_engine
from parcours.analytics.metrics import MetricQuery
from parcours.core.audit import Actor
from parcours.core.deps import DatabaseDep, api_caller

router = APIRouter(tags=["analytics"])
READ_SCOPE = "insight:read"
Reader = Annotated[Actor, Depends(api_caller(READ_SCOPE))]
Many = Annotated[list[str] | None, Query()]


def as_utc(value: datetime | None) -> datetime | None:
    """A query parameter's time in UTC (a time without a zone is taken as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _query(
    dimension: list[str] | None,
    period: str,
    start: datetime | None,
    end: datetime | None,
    channel: list[str] | None,
    store: list[str] | None,
    category: list[str] | None,
) -> MetricQuery:
    return MetricQuery(
        dimensions=tuple(dimension or ()),
        grain=period,
        start=as_utc(start),
        end=as_utc(end),
        channels=tuple(channel or ()),
        stores=tuple(store or ()),
        categories=tuple(category or ()),
    )


@router.get("/v1/analytics/kpis", summary="KPIs by channel, store, category and period")
def get_kpis(
    _: Reader,
    db: DatabaseDep,
    metric: Annotated[list[str], Query(description="Metric names; repeat for several.")],
    dimension: Many = None,
    period: str = "day",
    start: datetime | None = None,
    end: datetime | None = None,
    channel: Many = None,
    store: Many = None,
    category: Many = None,
) -> dict[str, Any]:
    query = _query(dimension, period, start, end, channel, store, category)
    metrics.check_query(metric, query)
    with open_engine("live", database=db) as engine:
        rows = metrics.kpis(engine, metric, query)
    units = {name: metrics.METRICS[name].unit for name in metric}
    return {"dimensions": list(query.dimensions), "units": units, "rows": rows}


@router.get("/v1/analytics/funnels", summary="The journey funnel or a custom funnel")
def get_funnel(
    _: Reader,
    db: DatabaseDep,
    step: Many = None,
    window_hours: Annotated[float, Query(gt=0)] = funnels.DEFAULT_WINDOW.total_seconds() / 3600,
    by: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    steps = funnels.custom_steps(step) if step else funnels.journey_steps()
    query = MetricQuery(start=as_utc(start), end=as_utc(end))
    with open_engine("live", database=db) as engine:
        rows = funnels.funnel(engine, steps, query, timedelta(hours=window_hours), by)
    return {"steps": [s.name for s in steps], "rows": rows}


@router.get("/v1/analytics/paths", summary="Most frequent paths to conversion, with a Sankey")
def get_paths(
    _: Reader,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    lookback_days: Annotated[int, Query(ge=1, le=365)] = 30,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    query = MetricQuery(start=as_utc(start), end=as_utc(end))
    with open_engine("live", database=db) as engine:
        found = paths.conversion_paths(engine, query, timedelta(days=lookback_days))
    return {"paths": paths.top_paths(found, limit), "sankey": paths.sankey(found, limit)}
