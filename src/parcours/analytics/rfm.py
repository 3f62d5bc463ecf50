"""RFM: each buying customer scored 1 to 5 on recency, frequency and monetary value, and
named by segment.

Written once in Ibis over the `orders` fact (orders with a customer, not cancelled).
Recency is the days from the last purchase to `as_of`; frequency the number of orders;
monetary the amount paid, in cents (totals less refunds). Scores are quintiles by
cumulative distribution, `ceil(5 × cume_dist)`, so equal values always get equal scores
(the usual `ntile` would split ties at random) and every engine agrees; a recent
purchase scores 5 on recency. Segments follow the common recency × frequency grid
(SEGMENTS, checked in that order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from parcours.analytics.facts import Facts

# (segment, recency scores, frequency scores): the recency × frequency grid.
SEGMENTS: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("champions", (5,), (4, 5)),
    ("loyal", (3, 4), (4, 5)),
    ("potential_loyalists", (4, 5), (2, 3)),
    ("new_customers", (5,), (1,)),
    ("promising", (4,), (1,)),
    ("need_attention", (3,), (3,)),
    ("about_to_sleep", (3,), (1, 2)),
    ("cannot_lose", (1, 2), (5,)),
    ("at_risk", (1, 2), (3, 4)),
    ("hibernating", (1, 2), (1, 2)),
)
SEGMENT_NAMES = tuple(name for name, _, _ in SEGMENTS)


@dataclass(frozen=True)
class RfmQuery:
    """`as_of` (UTC): the day recency is measured from; purchases after it are ignored."""

    as_of: datetime


def _score(value: Any, descending: bool = False) -> Any:
    order = ibis.desc(value) if descending else value
    return (ibis.cume_dist().over(order_by=order) * 5).ceil().cast("int64")


def rfm_table(facts: Facts, query: RfmQuery) -> ir.Table:
    """customer, recency_days, frequency, monetary (cents), r, f, m (1..5), segment."""
    as_of = query.as_of.replace(tzinfo=None)
    orders = facts.orders
    bought = orders.filter(orders.customer.notnull(), ~orders.cancelled, orders.placed_at <= as_of)
    per_customer = bought.group_by("customer").aggregate(
        last_at=bought.placed_at.max(),
        frequency=bought.count().cast("int64"),
        monetary=(bought.total - bought.refunded.fill_null(0)).sum().cast("int64"),
    )
    seconds = ibis.literal(as_of).epoch_seconds() - per_customer.last_at.epoch_seconds()
    with_recency = per_customer.mutate(recency_days=(seconds // 86_400).cast("int64"))
    scored = with_recency.mutate(
        r=_score(with_recency.recency_days, descending=True),
        f=_score(with_recency.frequency),
        m=_score(with_recency.monetary),
    )
    return scored.select(
        "customer", "recency_days", "frequency", "monetary", "r", "f", "m",
        segment=_segment(scored.r, scored.f),
    ).order_by("customer")  # fmt: skip


def _segment(r: Any, f: Any) -> Any:
    cases = [(r.isin(rs) & f.isin(fs), name) for name, rs, fs in SEGMENTS]
    return ibis.cases(*cases, else_="other")


def rfm(engine: Any, query: RfmQuery) -> list[dict[str, Any]]:
    """Each customer's RFM row, on an engine (see `engines.open_engine`)."""
    rows: list[dict[str, Any]] = engine.rows(rfm_table(engine.facts, query))
    return rows


def segment_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Customers and value per segment, in SEGMENTS order (empty segments with 0)."""
    customers: dict[str, int] = dict.fromkeys(SEGMENT_NAMES, 0)
    value: dict[str, int] = dict.fromkeys(SEGMENT_NAMES, 0)
    for row in rows:
        name = str(row["segment"])
        customers[name] = customers.get(name, 0) + 1
        value[name] = value.get(name, 0) + int(row["monetary"] or 0)
    return [{"segment": n, "customers": customers[n], "monetary": value[n]} for n in customers]
