"""REST endpoints of customer value and store footfall: door counts in
(`POST /v1/analytics/footfall`), cohorts, RFM segments and lifetime value out
(`GET /v1/analytics/cohorts|rfm|clv`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from parcours.analytics import clv, cohorts, footfall, rfm
from parcours.analytics.api import Reader, as_utc
from parcours.analytics.engines import open_engine
from parcours.analytics.footfall_count import FootfallCount
from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DatabaseDep, DbSession, api_caller
from parcours.core.errors import FieldError, InvalidInput

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
# Door counters belong to the stores: they post with the store systems' scope.
CounterWriter = Annotated[Actor, Depends(api_caller("commerce:write"))]


class FootfallIn(BaseModel):
    store: str = Field(description="Store code, e.g. LYO-1.")
    hour: datetime = Field(description="Start of the hour, with a time zone (stored in UTC).")
    visitors: int = Field(description="Visitors who entered during that hour.")


class FootfallStored(BaseModel):
    stored: int


@router.post("/footfall", response_model=FootfallStored)
def post_footfall(
    body: list[FootfallIn], session: DbSession, clock: ClockDep, caller: CounterWriter
) -> FootfallStored:
    """Record visitor counts per store and hour; a count for a store and hour already
    recorded is replaced. All-or-nothing: one bad item stores none."""
    counts = [FootfallCount(c.store, c.hour, c.visitors) for c in body]
    return FootfallStored(stored=footfall.record_footfall(session, clock.now(), counts, "api"))


@router.get("/cohorts", summary="Retention by first-purchase month or first channel")
def get_cohorts(
    _: Reader,
    db: DatabaseDep,
    by: Annotated[str, Query(description="month or channel")] = "month",
    months: Annotated[int, Query(description="Months followed after the first.")] = 12,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Rows of cohort, month (0 = month of first purchase), customers, cohort_size and
    retention (customers / cohort_size)."""
    query = cohorts.CohortQuery(by, months, as_utc(start), as_utc(end))
    query.check()
    with open_engine("live", database=db) as engine:
        rows = cohorts.retention(engine, query)
    return {"by": by, "rows": rows}


@router.get("/rfm", summary="Recency, frequency and monetary scores and segments")
def get_rfm(
    _: Reader,
    db: DatabaseDep,
    clock: ClockDep,
    as_of: datetime | None = None,
    segment: Annotated[str | None, Query(description="Only this segment's customers.")] = None,
) -> dict[str, Any]:
    """Each customer's RFM row (monetary in cents) and the customers per segment."""
    if segment is not None and segment not in (*rfm.SEGMENT_NAMES, "other"):
        raise InvalidInput(
            f"Unknown segment {segment!r}.",
            [FieldError(f"one of {', '.join(rfm.SEGMENT_NAMES)}", parameter="segment")],
        )
    with open_engine("live", database=db) as engine:
        rows = rfm.rfm(engine, rfm.RfmQuery(as_utc(as_of) or clock.now()))
    summary = rfm.segment_summary(rows)
    if segment is not None:
        rows = [r for r in rows if r["segment"] == segment]
    return {"segments": summary, "rows": rows}


@router.get("/clv", summary="Customer lifetime value (BG/NBD + Gamma-Gamma)")
def get_clv(
    _: Reader,
    db: DatabaseDep,
    clock: ClockDep,
    as_of: datetime | None = None,
    months: int = 12,
    discount: Annotated[float, Query(description="Monthly discount rate, 0.01 = 1 %.")] = 0.01,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """The customers of highest lifetime value first: expected purchases over `months`,
    expected spend per purchase and CLV, in cents."""
    query = clv.ClvQuery(as_utc(as_of) or clock.now(), months, discount)
    query.check()
    with open_engine("live", database=db) as engine:
        rows = clv.clv(engine, query)
    rows.sort(key=lambda r: (-r["clv"], r["customer"]))
    return {"months": months, "monthly_discount": discount, "customers": len(rows),
            "rows": rows[:limit]}  # fmt: skip
