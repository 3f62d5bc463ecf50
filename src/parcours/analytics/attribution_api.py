"""`/v1/analytics/attribution` and `/v1/analytics/acquisition`: who gets the credit for
the orders, and which channels bring new customers.

Reading needs a secret key with the `insight:read` scope (as every analytics route).
Dates are ISO 8601 (UTC when no zone is given); the range is [start, end). `engine`
picks where the facts are read: `live` (the application database, the default) or
`duckdb` / `spark` over the configured Parquet export (ANALYTICS_PARQUET).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from parcours.analytics.api import Reader, as_utc
from parcours.analytics.attribution_report import (
    DEFAULT_MODELS,
    acquisition_report,
    attribution_report,
    check_models,
)
from parcours.analytics.engines import configured_engine
from parcours.analytics.metrics import MetricQuery
from parcours.analytics.names import ENGINES, MAX_ORDER, MODELS
from parcours.core.deps import DatabaseDep, SettingsDep

router = APIRouter(tags=["analytics"])
EngineParam = Annotated[str, Query(description=f"Where to compute: {', '.join(ENGINES)}.")]
LookbackParam = Annotated[int, Query(ge=1, le=365, description="Days of touches before an order.")]


@router.get(
    "/v1/analytics/attribution",
    summary="Conversions and revenue credited to each channel, per attribution model",
)
def get_attribution(
    _: Reader,
    db: DatabaseDep,
    settings: SettingsDep,
    model: Annotated[
        list[str] | None,
        Query(description=f"Models ({', '.join(MODELS)}); repeat for several."),
    ] = None,
    order: Annotated[int, Query(description=f"Markov chain order, 1 to {MAX_ORDER}.")] = 1,
    lookback_days: LookbackParam = 30,
    start: datetime | None = None,
    end: datetime | None = None,
    engine: EngineParam = "live",
) -> dict[str, Any]:
    models = tuple(model or DEFAULT_MODELS)
    check_models(models, order)
    query = MetricQuery(start=as_utc(start), end=as_utc(end))
    with configured_engine(engine, db, settings) as running:
        rows = attribution_report(running, query, models, order, timedelta(days=lookback_days))
    return {"models": list(models), "order": order, "units": {"value": "cents"}, "rows": rows}


@router.get(
    "/v1/analytics/acquisition",
    summary="New customers per month and first-touch channel, with their first-order revenue",
)
def get_acquisition(
    _: Reader,
    db: DatabaseDep,
    settings: SettingsDep,
    lookback_days: LookbackParam = 30,
    start: datetime | None = None,
    end: datetime | None = None,
    engine: EngineParam = "live",
) -> dict[str, Any]:
    query = MetricQuery(start=as_utc(start), end=as_utc(end))
    with configured_engine(engine, db, settings) as running:
        rows = acquisition_report(running, query, timedelta(days=lookback_days))
    return {"units": {"revenue": "cents"}, "rows": rows}
