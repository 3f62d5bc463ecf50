"""Retention cohorts: customers grouped by the month of their first purchase, or by the
channel of their first purchase, and the share of each cohort buying again N months
later.

Written once in Ibis over the `orders` fact, so it runs on the live database, DuckDB and
Spark alike. An order counts when it has a known customer and is not cancelled. Month N
of a cohort is the N-th calendar month after the first purchase's month (month 0 is the
month of the first purchase, so its retention is 1). Rates are floats in [0, 1]; a
cohort always has at least one customer, so no rate divides by zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from parcours.analytics.facts import Facts
from parcours.core.errors import FieldError, InvalidInput

COHORT_KINDS = ("month", "channel")
MAX_MONTHS = 120


@dataclass(frozen=True)
class CohortQuery:
    """`by` month (of first purchase) or channel (of first purchase); `months`, how many
    months after the first to follow; `start`/`end` (UTC, end excluded) bound the first
    purchases considered (later purchases always count)."""

    by: str = "month"
    months: int = 12
    start: datetime | None = None
    end: datetime | None = None

    def check(self) -> None:
        if self.by not in COHORT_KINDS:
            raise InvalidInput(
                f"Unknown cohort kind {self.by!r}: use {' or '.join(COHORT_KINDS)}.",
                [FieldError(f"must be one of {', '.join(COHORT_KINDS)}", parameter="by")],
            )
        if not 0 <= self.months <= MAX_MONTHS:
            raise InvalidInput(
                f"months must be between 0 and {MAX_MONTHS}.",
                [FieldError(f"between 0 and {MAX_MONTHS}", parameter="months")],
            )


def _month_index(column: Any) -> Any:
    return column.year().cast("int64") * 12 + column.month().cast("int64") - 1


def purchases(facts: Facts) -> ir.Table:
    """One row per counted order: customer, channel, placed_at, total (cents)."""
    orders = facts.orders
    return orders.filter(orders.customer.notnull(), ~orders.cancelled).select(
        "customer", "channel", "placed_at", "total"
    )


def first_purchases(facts: Facts) -> ir.Table:
    """One row per customer: first purchase time, its month index and its channel
    (ties on the same instant broken by channel name, so every engine agrees)."""
    bought = purchases(facts)
    rank = ibis.row_number().over(
        group_by=bought.customer, order_by=[bought.placed_at, bought.channel]
    )
    ranked = bought.mutate(rank=rank)
    first = ranked.filter(ranked["rank"] == 0)
    return first.select(
        customer=first.customer,
        first_at=first.placed_at,
        first_month=_month_index(first.placed_at),
        first_channel=first.channel,
    )


def cohort_table(facts: Facts, query: CohortQuery) -> ir.Table:
    """cohort, month (0..months), customers (active that month), cohort_size, retention."""
    query.check()
    first = first_purchases(facts)
    if query.start is not None:
        first = first.filter(first.first_at >= query.start.replace(tzinfo=None))
    if query.end is not None:
        first = first.filter(first.first_at < query.end.replace(tzinfo=None))
    bought = purchases(facts)
    joined = bought.join(first, bought.customer == first.customer)
    month = _month_index(joined.placed_at) - joined.first_month
    label = _cohort_label(joined, query.by)
    active = (
        joined.mutate(cohort=label, month=month)
        .filter(lambda t: t.month <= query.months)
        .group_by(["cohort", "month"])
        .aggregate(customers=lambda t: t.customer.nunique().cast("int64"))
    )
    sizes = (
        first.mutate(cohort=_cohort_label(first, query.by))
        .group_by("cohort")
        .aggregate(cohort_size=lambda t: t.customer.nunique().cast("int64"))
    )
    table = active.join(sizes, "cohort")
    return table.select(
        "cohort",
        "month",
        "customers",
        "cohort_size",
        retention=table.customers.cast("float64") / table.cohort_size.cast("float64"),
    ).order_by(["cohort", "month"])


def _cohort_label(table: ir.Table, by: str) -> Any:
    """The cohort's name: the first purchase's channel, or its month as YYYY-MM."""
    if by == "channel":
        return table.first_channel
    return table.first_at.strftime("%Y-%m")


def retention(engine: Any, query: CohortQuery) -> list[dict[str, Any]]:
    """The cohort table as plain rows on an engine (see `engines.open_engine`)."""
    rows: list[dict[str, Any]] = engine.rows(cohort_table(engine.facts, query))
    return rows
