"""Door counts of the demo stores: visitors per opening hour over the two years.

Counts follow the till: each store's traffic is sized so that about a quarter of its
visitors buy (a typical fashion-and-home store conversion), shaped by the hour of day
(lunch and after-work peaks), Saturdays, and December, and never below the receipts of
that hour. They go through the same recording function as a real counter's feed.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from parcours import analytics

if TYPE_CHECKING:
    from parcours.demo.generator import DemoRun

HISTORY_DAYS = 730
STORE_CONVERSION = 0.25
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHUNK = 20_000


def _hour_weight(hour: int, weekday: int, month: int) -> float:
    """Relative traffic of an hour: peaks at lunch and after work, busier Saturdays and
    Decembers."""
    shape = (
        1.0 + 0.6 * math.exp(-((hour - 12.5) ** 2) / 2) + 0.9 * math.exp(-((hour - 17.5) ** 2) / 2)
    )
    return shape * (1.6 if weekday == 5 else 1.0) * (1.4 if month == 12 else 1.0)


def _open_hours(opening: dict[str, list[list[str]]], day: date) -> list[int]:
    """The local hours (0..23) a store is open for at least part of, on one day."""
    hours: set[int] = set()
    for start, end in opening.get(DAY_KEYS[day.weekday()], []):
        first, last = time.fromisoformat(start), time.fromisoformat(end)
        hours.update(range(first.hour, last.hour + (1 if last.minute else 0)))
    return sorted(hours)


def _store_counts(run: DemoRun, store: dict[str, Any], receipts: Counter[datetime]) -> list[Any]:
    zone = ZoneInfo(store["timezone"])
    first_day = (run.now - timedelta(days=HISTORY_DAYS)).astimezone(zone).date()
    slots = []
    for offset in range(HISTORY_DAYS):
        day = first_day + timedelta(days=offset)
        for hour in _open_hours(store["opening_hours"], day):
            start = datetime.combine(day, time(hour), zone).astimezone(UTC)
            if start < run.now:
                slots.append((start, _hour_weight(hour, day.weekday(), day.month)))
    if not slots:
        return []
    weights = sum(w for _, w in slots)
    per_weight = sum(receipts.values()) / STORE_CONVERSION / weights
    counts = []
    for start, weight in slots:
        mean = per_weight * weight
        drawn = max(0, round(run.rng.gauss(mean, math.sqrt(mean))))
        sold = receipts.get(start, 0)
        visitors = max(drawn, math.ceil(sold / 0.6))  # a sale needs a visitor
        counts.append(analytics.FootfallCount(store["code"], start, visitors))
    return counts


def generate_footfall(run: DemoRun) -> None:
    """Record the door counts of every store (warehouses have none)."""
    receipts: dict[str, Counter[datetime]] = {}
    for sale in run.orders:
        if sale["channel"] == "store" and sale["store_id"]:
            hour = sale["at"].replace(minute=0, second=0, microsecond=0)
            receipts.setdefault(str(sale["store_id"]), Counter())[hour] += 1
    shops = [s for s in run.stores if s["kind"] == "store"]
    stored = 0
    for index, store in enumerate(shops):
        counts = _store_counts(
            run, store, receipts.get(str(uuid.UUID(str(store["id"]))), Counter())
        )
        for start in range(0, len(counts), CHUNK):
            with run.db.transaction() as session:
                stored += analytics.record_footfall(
                    session, run.now, counts[start : start + CHUNK], source="demo"
                )
        run.progress("footfall", index + 1, len(shops))
    run.counts["footfall hours"] = stored
