"""Funnels: the five stages of the retail journey and custom funnels of ordered steps.

A visitor (profile, else anonymous id) reaches step k when an event of step k happens
at or after the moment they reached step k-1 and within `window` of reaching step 1;
each step counts visitors. Broken down by channel or device, the funnel is counted
within each value (a visitor's steps on that channel or device); by age band or city,
each visitor counts in their own. Counts are an Ibis expression; the rates beside are
plain divisions of them (None when the step before has nobody).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from parcours.analytics.engines import Engine
from parcours.analytics.facts import Facts
from parcours.analytics.metrics import MetricQuery, scoped
from parcours.core.errors import FieldError, InvalidInput

BREAKDOWNS = ("channel", "device", "age_band", "city")
# The five stages of the journey and the events (as the demo, the web tracker and the
# orders context send them) that show a visitor in each.
STAGES: dict[str, tuple[str, ...]] = {
    "information_search": ("Products Searched", "Product Viewed", "Product List Viewed"),
    "visit_preparation": (
        "Store Locator Searched",
        "Store Stock Checked",
        "Pickup Store Selected",
        "Reservation Requested",
    ),
    "in_store_or_on_site": ("Product Added", "Checkout Started", "Store Visited"),
    "purchase": ("Order Completed",),
    "after_purchase": (
        "Order Ready For Pickup",
        "Order Collected",
        "Order Delivered",
        "Order Refunded",
        "Call Completed",
        "Review Submitted",
    ),
}
DEFAULT_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class FunnelStep:
    """A step: its name and the event names that count for it."""

    name: str
    events: tuple[str, ...]


def journey_steps() -> list[FunnelStep]:
    """The five journey stages as funnel steps."""
    return [FunnelStep(name, events) for name, events in STAGES.items()]


def custom_steps(events: Sequence[str]) -> list[FunnelStep]:
    """One step per event name, in order (an unknown name simply counts nobody)."""
    names = [e.strip() for e in events if e.strip()]
    if len(names) < 2:
        raise InvalidInput(
            "A funnel needs at least two steps.",
            [FieldError("give two event names or more, in order", parameter="steps")],
        )
    return [FunnelStep(name, (name,)) for name in names]


def _visitor_events(facts: Facts, query: MetricQuery, breakdown: str | None) -> ir.Table:
    events = scoped(facts.events, query, "timestamp")
    events = events.mutate(
        visitor=ibis.coalesce(events.profile, events.anonymous_id),
        at_s=events.timestamp.epoch_seconds(),
    ).filter(lambda t: t.visitor.notnull() & t.event.notnull())
    if breakdown in ("channel", "device"):
        return events.mutate(part=events[breakdown])
    if breakdown in ("age_band", "city"):
        people = facts.customers
        until = query.end or query.start
        year = until.year if until is not None else datetime.now(UTC).year
        age = ibis.literal(year) - people.birth_year
        band = ibis.cases(
            (age < 25, "<25"),
            (age < 35, "25-34"),
            (age < 50, "35-49"),
            (age < 65, "50-64"),
            else_=ibis.ifelse(people.birth_year.isnull(), "unknown", "65+"),
        )
        value = band if breakdown == "age_band" else ibis.coalesce(people.city, "unknown")
        people = people.select(person=people.customer, part=value)
        joined = events.left_join(people, events.profile == people.person)
        return joined.mutate(part=ibis.coalesce(joined.part, "unknown")).drop("person")
    return events.mutate(part=ibis.literal("all"))


def funnel_counts(
    engine: Engine,
    steps: Sequence[FunnelStep],
    query: MetricQuery,
    window: timedelta,
    breakdown: str | None = None,
) -> ir.Table:
    """(part, step, visitors): visitors reaching each step, per breakdown value."""
    if breakdown is not None and breakdown not in BREAKDOWNS:
        raise InvalidInput(
            f"Unknown breakdown {breakdown!r}: use {', '.join(BREAKDOWNS)}.",
            [FieldError(f"must be one of {', '.join(BREAKDOWNS)}", parameter="by")],
        )
    events = _visitor_events(engine.facts, query, breakdown)
    # One join key of plain text: SQLite indexes it on the fly for the step joins (on
    # visitor and part separately it picks `part` and the join goes quadratic).
    events = engine.facts.materialize(
        events.mutate(key=events.visitor.concat("\x1f", ibis.coalesce(events.part, ""))),
        "key",
        "at_s",
    )
    first = events.filter(events.event.isin(list(steps[0].events)))
    reached = first.group_by(["key", "part"]).aggregate(start_s=first.at_s.min())
    reached = reached.mutate(step_s=reached.start_s)
    counts = [reached.group_by("part").aggregate(step=ibis.literal(1), visitors=reached.count())]
    limit = window.total_seconds()
    for index, step in enumerate(steps[1:], start=2):
        hits = events.filter(events.event.isin(list(step.events))).select(
            hit_key="key", hit_s="at_s"
        )
        joined = reached.join(
            hits,
            [
                reached.key == hits.hit_key,
                hits.hit_s >= reached.step_s,
                hits.hit_s <= reached.start_s + limit,
            ],
        )
        reached = joined.group_by(["key", "part"]).aggregate(
            start_s=joined.start_s.min(), step_s=joined.hit_s.min()
        )
        counts.append(
            reached.group_by("part").aggregate(step=ibis.literal(index), visitors=reached.count())
        )
    return ibis.union(*counts)


def funnel(
    engine: Engine,
    steps: Sequence[FunnelStep],
    query: MetricQuery,
    window: timedelta = DEFAULT_WINDOW,
    breakdown: str | None = None,
) -> list[dict[str, Any]]:
    """Rows of (breakdown value, step number and name, visitors, conversion from the
    first step, conversion from the step before); steps nobody reached count 0."""
    if window <= timedelta(0):
        raise InvalidInput(
            "The conversion window must be positive.", [FieldError("> 0", parameter="window")]
        )
    found = engine.rows(funnel_counts(engine, steps, query, window, breakdown))
    by_part: dict[str, dict[int, int]] = {}
    for row in found:
        by_part.setdefault(str(row["part"]), {})[int(row["step"])] = int(row["visitors"])
    parts = sorted(by_part) or (["all"] if breakdown is None else [])
    rows = []
    for part in parts:
        counts = by_part.get(part, {})
        first = counts.get(1, 0)
        previous = first
        for number, step in enumerate(steps, start=1):
            visitors = counts.get(number, 0)
            out: dict[str, Any] = {} if breakdown is None else {breakdown: part}
            out.update(
                step=number,
                name=step.name,
                visitors=visitors,
                conversion=visitors / first if first else None,
                step_conversion=visitors / previous if previous else None,
            )
            rows.append(out)
            previous = visitors
    return rows
