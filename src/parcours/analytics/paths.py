"""Paths to conversion across channels, offline included, and their Sankey data.

A touch is a visitor's event on a channel (`web`, `app`, `email`, …) or offline: a
store visit (`store`, any store event but the purchase itself) or a call-centre call
(`call_centre`). A conversion is an `Order Completed`; its path is the visitor's touches
since their previous conversion (within `lookback`), consecutive repeats of one channel
folded into one, ending with the channel of the purchase. Visitors whose touches led to
no conversion form `null` paths. The touches are selected with Ibis on the engine; the
sequences are built in Python from those rows. `conversion_paths` is what attribution
reads too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from parcours.analytics.engines import Engine
from parcours.analytics.facts import Facts
from parcours.analytics.metrics import ORDER_COMPLETED, MetricQuery, scoped

DEFAULT_LOOKBACK = timedelta(days=30)
TOUCH_TYPES = ("track", "page", "screen")


@dataclass(frozen=True)
class ConversionPath:
    """One distinct path: its touches, how often it converted (and the revenue in
    cents), and how often it ended without a conversion."""

    touches: tuple[str, ...]
    conversions: int
    value: int
    nulls: int


def touch_table(facts: Facts, query: MetricQuery) -> ir.Table:
    """(visitor, at_s, seq, touch, converts, revenue) for every touch in the range."""
    events = scoped(facts.events, query, "timestamp")
    events = events.filter(events.type.isin(list(TOUCH_TYPES)))
    events = events.mutate(visitor=ibis.coalesce(events.profile, events.anonymous_id))
    return events.filter(events.visitor.notnull()).select(
        "visitor",
        "seq",
        at_s=events.timestamp.epoch_seconds(),
        touch=events.channel,
        converts=events.event == ORDER_COMPLETED,
        revenue=ibis.coalesce(events.revenue, 0),
    )


def _fold(touches: Sequence[str]) -> tuple[str, ...]:
    folded: list[str] = []
    for touch in touches:
        if not folded or folded[-1] != touch:
            folded.append(touch)
    return tuple(folded)


@dataclass(frozen=True)
class Journey:
    """One visitor's touches (oldest first, repeats kept) up to a purchase or to the end
    of the range: the channel and age in days before the journey's end of each touch, and
    the purchase's revenue in cents (None: no purchase)."""

    touches: tuple[str, ...]
    ages_days: tuple[float, ...]
    value: int | None


def journeys(
    engine: Engine, query: MetricQuery, lookback: timedelta = DEFAULT_LOOKBACK
) -> Iterator[Journey]:
    """Every journey in the range: touches since the visitor's previous purchase (within
    `lookback`), ending with a purchase or with the visitor's last touch."""
    rows = engine.rows(touch_table(engine.facts, query).order_by(["visitor", "at_s", "seq"]))
    current: list[tuple[float, str]] = []
    visitor: Any = object()
    limit = lookback.total_seconds()
    for row in rows:
        if row["visitor"] != visitor:
            if current:
                yield _journey(current, None)
            visitor, current = row["visitor"], []
        at = float(row["at_s"])
        current = [(when, touch) for when, touch in current if at - when <= limit]
        current.append((at, str(row["touch"])))
        if row["converts"]:
            yield _journey(current, int(row["revenue"] or 0))
            current = []
    if current:
        yield _journey(current, None)


def _journey(touches: list[tuple[float, str]], value: int | None) -> Journey:
    end = touches[-1][0]
    return Journey(
        tuple(t for _, t in touches), tuple((end - at) / 86_400 for at, _ in touches), value
    )


def conversion_paths(
    engine: Engine, query: MetricQuery, lookback: timedelta = DEFAULT_LOOKBACK
) -> list[ConversionPath]:
    """Distinct paths with their conversions, value and nulls, most frequent first."""
    conversions: Counter[tuple[str, ...]] = Counter()
    values: Counter[tuple[str, ...]] = Counter()
    nulls: Counter[tuple[str, ...]] = Counter()
    for journey in journeys(engine, query, lookback):
        path = _fold(journey.touches)
        if journey.value is None:
            nulls[path] += 1
        else:
            conversions[path] += 1
            values[path] += journey.value
    keys = set(conversions) | set(nulls)
    paths = [ConversionPath(k, conversions[k], values[k], nulls[k]) for k in keys]
    return sorted(paths, key=lambda p: (-p.conversions, -p.nulls, p.touches))


def top_paths(paths: Sequence[ConversionPath], limit: int = 20) -> list[dict[str, Any]]:
    """The most frequent paths to conversion as rows (`path` joined with `>`)."""
    converting = [p for p in paths if p.conversions][:limit]
    total = sum(p.conversions for p in paths)
    return [
        {
            "path": " > ".join(p.touches),
            "conversions": p.conversions,
            "value": p.value,
            "share": p.conversions / total if total else None,
        }
        for p in converting
    ]


def sankey(paths: Sequence[ConversionPath], limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """ECharts Sankey data of the converting paths: nodes are "step. channel" (the
    position keeps the graph acyclic) and a final "conversion" node; links carry
    conversions."""
    links: Counter[tuple[str, str]] = Counter()
    for path in [p for p in paths if p.conversions][:limit]:
        names = [f"{i}. {touch}" for i, touch in enumerate(path.touches, start=1)]
        for source, target in zip(names, [*names[1:], "conversion"], strict=True):
            links[(source, target)] += path.conversions
    nodes = sorted({name for pair in links for name in pair})
    return {
        "nodes": [{"name": name} for name in nodes],
        "links": [{"source": s, "target": t, "value": v} for (s, t), v in sorted(links.items())],
    }
