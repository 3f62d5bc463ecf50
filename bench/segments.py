# ruff: noqa: E501
"""Segments: full evaluation of many varied segments over a synthetic population, then
the incremental refresh's latency per event (p50/p99) and its events/s under a stream.

Profiles (city, postcode, birth date), their web events, `Order Completed` events and
consents are written in bulk to a fresh SQLite database (or `--database-url`, or
`--postgres`: a throwaway PostgreSQL server, analysed after the load as autovacuum would
within a minute); computed traits are refreshed once. Then `--segments` definitions (traits, events with property
filters, orders, RFM, geo, consent, nesting) are saved and fully evaluated (every
membership is new: each one is written with its `Segment Entered` event).

Warm-up: the statements of the incremental passes are built and compiled ahead of the
events, as the worker does at its first run and after a catalogue change
(`segments.service.warm`); its time is reported on its own, and again after one segment's
definition changes (only that segment's group is rebuilt).

Latency is what the issue means: the time from an event being in the log to the
memberships being updated, when the worker's pass runs for it: `--events` single events
are logged one by one, each followed by one incremental pass (p50/p95/p99/max of the
passes, every pass after the warm-up counted, none dropped; the statements built during
them are counted too, and should be 0). Throughput: `--stream-seconds` seconds of a stream of `--stream-rate` events/s, one pass
per second of events as the worker does; events/s = events / time spent in the passes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.databases import postgres_databases
from bench.demo_generation import target_database
from bench.report import Report, Table, note
from parcours import customers, segments
from parcours.core.audit import CLI_ACTOR
from parcours.core.db import Database, bulk_insert
from parcours.core.migrate import upgrade
from parcours.customers.models import IdentityIdentifier, TrackedEvent
from parcours.segments.realtime import refresh_touched
from parcours.segments.service import refresh_everything, statements_built, warm

DESCRIPTION = "Segments: full evaluation of 50 segments, incremental latency per event"
NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)
CITIES = [("Lyon", "69002"), ("Paris", "75011"), ("Marseille", "13001"), ("Lille", "59000"),
          ("Bordeaux", "33000"), ("Nantes", "44000"), ("Toulouse", "31000")]  # fmt: skip
EVENTS = ["Product Viewed", "Product Added", "Cart Viewed", "Page Viewed"]
CATEGORIES = ["Robes", "Jeans", "Chaussures", "Accessoires"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench segments", description=DESCRIPTION)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=50)
    parser.add_argument("--events-per-profile", type=int, default=5)
    parser.add_argument("--events", type=int, default=300, help="incremental events to time")
    parser.add_argument("--stream-rate", type=int, default=500, help="events per second")
    parser.add_argument("--stream-seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", default="", help="an EMPTY database (default: SQLite)")
    where.add_argument(
        "--postgres",
        action="store_true",
        help="run on a throwaway PostgreSQL server started for the run (needs its binaries)",
    )
    return parser.parse_args(argv)


@contextmanager
def database(options: argparse.Namespace) -> Iterator[Database]:
    """The database the run uses: a throwaway PostgreSQL one, the one given, or a new
    SQLite file in a temporary folder."""
    if options.postgres:
        with postgres_databases(1) as (db,):
            yield db
        return
    with target_database(options.database_url) as db:
        yield db


def populate(db: Database, options: argparse.Namespace, rng: random.Random) -> list[str]:
    users = [f"u{i}" for i in range(options.profiles)]
    for start in range(0, len(users), 5000):
        chunk = users[start : start + 5000]
        rows = []
        for user in chunk:
            city, postcode = rng.choice(CITIES)
            rows.append({"email": f"{user}@example.com", "city": city, "postcode": postcode,
                         "phone": f"+336{rng.randrange(10**8):08d}",
                         "birth_date": date(rng.randint(1950, 2006), rng.randint(1, 12), rng.randint(1, 28))})  # fmt: skip
        with db.transaction() as session:
            ids = customers.add_customers(session, NOW - timedelta(days=400), rows)
            session.execute(bulk_insert(IdentityIdentifier), [
                {"kind": "user_id", "value": user, "profile_id": pid, "origin_profile_id": pid,
                 "cluster_id": pid, "source": "bench", "first_seen": NOW, "last_seen": NOW}
                for user, pid in zip(chunk, ids, strict=True)
            ])  # fmt: skip
            consents = [
                {"customer_id": pid, "purpose": "marketing", "channel": "email",
                 "granted": rng.random() < 0.6, "at": NOW - timedelta(days=30), "source": "bench"}
                for pid in ids
            ]  # fmt: skip
            customers.add_consents(session, consents)
            session.execute(bulk_insert(TrackedEvent), [
                event(rng, user) for user in chunk for _ in range(options.events_per_profile)
            ])  # fmt: skip
    return users


def event(rng: random.Random, user: str, at: datetime | None = None) -> dict[str, Any]:
    at = at or NOW - timedelta(days=rng.uniform(0, 120))
    if rng.random() < 0.15:
        name = "Order Completed"
        properties: dict[str, Any] = {
            "order_id": uuid.uuid4().hex, "revenue": rng.randint(10, 300), "currency": "EUR",
            "products": [{"sku": "S1", "category": rng.choice(CATEGORIES)}],
        }  # fmt: skip
    else:
        name = rng.choice(EVENTS)
        properties = {"category": rng.choice(CATEGORIES), "price": rng.randint(5, 200)}
    return {
        "message_id": uuid.uuid4().hex, "type": "track", "event": name, "user_id": user,
        "anonymous_id": None, "previous_id": None, "group_id": None,
        "channel": rng.choice(["web", "app", "store"]), "store_id": None, "source_id": None,
        "timestamp": at, "received_at": at, "sent_at": None, "original_timestamp": None,
        "properties": properties, "traits": None, "context": None,
    }  # fmt: skip


def definitions(count: int) -> list[dict[str, Any]]:
    base: list[dict[str, Any]] = []
    for i, (city, _) in enumerate(CITIES):
        base.append({"kind": "trait", "field": "city", "operator": "eq", "value": city})
        base.append({"all": [
            {"kind": "event", "name": EVENTS[i % 4], "operator": "at_least", "value": 2, "within_days": 30,
             "where": [{"property": "category", "operator": "eq", "value": CATEGORIES[i % 4]}]},
            {"kind": "consent", "purpose": "marketing", "channel": "email"}]})  # fmt: skip
        base.append({"kind": "geo", "lat": 45.76, "lon": 4.83, "radius_km": 50 + 100 * i})
        base.append({"kind": "rfm", "recency": [2 + i % 4, 5]})
        base.append({"any": [{"kind": "trait", "field": "age", "operator": "between", "value": [18 + i, 30 + i]},
                             {"not": {"kind": "event", "name": "Cart Viewed", "operator": "did", "within_days": 7 + i}}]})  # fmt: skip
        base.append(
            {
                "kind": "trait",
                "field": "revenue_cents",
                "operator": "gte",
                "value": 10_000 * (i + 1),
            }
        )
        base.append(
            {"kind": "trait", "field": "birth_date", "operator": "birthday_in_days", "value": 7 + i}
        )
        base.append({"kind": "event", "name": EVENTS[(i + 1) % 4], "operator": "did", "within_days": 3 + i,
                     "channel": "app"})  # fmt: skip
    return base[:count]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(argv: list[str]) -> Report:
    options = parse(argv)
    rng = random.Random(options.seed)
    with database(options) as db:
        upgrade(db)
        kind = db.engine.dialect.name
        note(f"populating {options.profiles:,} profiles")
        users = populate(db, options, rng)
        with db.transaction() as session:
            from parcours.customers.profile_traits import refresh_all

            refresh_all(session, NOW)
        with db.transaction() as session:
            refresh_touched(session, NOW)  # the cursors move to the log's head
        with db.transaction() as session:
            for i, definition in enumerate(definitions(options.segments)):
                segments.create_segment(
                    session, NOW, CLI_ACTOR, f"s{i}", f"Segment {i}", definition
                )
        note(f"full evaluation of {options.segments} segments")
        started = time.perf_counter()
        with db.transaction() as session:
            refresh_everything(session, NOW)
        full_s = time.perf_counter() - started
        with db.transaction() as session:
            members = sum(s.member_count for s in segments.list_segments(session))
        if kind == "postgresql":
            # what autovacuum does within a minute of the bulk writes above: without
            # statistics the planner takes the fresh tables for empty ones
            with db.engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE")
        note("warm-up: the incremental passes' statements built ahead")
        started = time.perf_counter()
        with db.transaction() as session:
            warmup = warm(session, NOW)
        warm_s = time.perf_counter() - started
        note(f"{options.events} events, each followed by the incremental pass")
        built_before = statements_built()
        latencies = []
        clock_now = NOW
        for _ in range(options.events):
            clock_now += timedelta(milliseconds=100)
            with db.transaction() as session:
                session.execute(
                    bulk_insert(TrackedEvent), [event(rng, rng.choice(users), clock_now)]
                )
            started = time.perf_counter()
            with db.transaction() as session:
                refresh_touched(session, clock_now)
            latencies.append(time.perf_counter() - started)
        built_during_events = statements_built() - built_before
        note("one segment's definition changes: warm-up again")
        with db.transaction() as session:
            changed = definitions(options.segments)[1 % options.segments]
            segments.update_segment(session, clock_now, CLI_ACTOR, f"s{1 % options.segments}",
                                    definition={"all": [changed, {"not": {"kind": "trait", "field": "city", "operator": "eq", "value": "Nice"}}]})  # fmt: skip
        started = time.perf_counter()
        with db.transaction() as session:
            rewarm = warm(session, clock_now)
        rewarm_s = time.perf_counter() - started
        built_before = statements_built()
        note(f"a stream of {options.stream_rate} events/s, one pass per second")
        passes = []
        for _ in range(options.stream_seconds):
            clock_now += timedelta(seconds=1)
            with db.transaction() as session:
                session.execute(
                    bulk_insert(TrackedEvent),
                    [event(rng, rng.choice(users), clock_now) for _ in range(options.stream_rate)],
                )
            started = time.perf_counter()
            with db.transaction() as session:
                refresh_touched(session, clock_now)
            passes.append(time.perf_counter() - started)
        built_during_stream = statements_built() - built_before

    def ms(share: float) -> float:
        return round(percentile(latencies, share) * 1000, 2)

    figures = {
        "database": kind,
        "profiles": options.profiles, "segments": options.segments,
        "full_evaluation_seconds": round(full_s, 3),
        "memberships": members,
        "warm_up_ms": round(warm_s * 1000, 1), "warm_up_statements": warmup.built,
        "trigger_groups": warmup.groups,
        "rewarm_after_one_change_ms": round(rewarm_s * 1000, 1),
        "rewarm_statements": rewarm.built,
        "incremental_p50_ms": ms(0.5), "incremental_p95_ms": ms(0.95),
        "incremental_p99_ms": ms(0.99), "incremental_max_ms": round(max(latencies) * 1000, 2),
        "incremental_mean_ms": round(statistics.mean(latencies) * 1000, 2),
        "statements_built_during_events": built_during_events,
        "statements_built_during_stream": built_during_stream,
        "events_per_s_one_per_pass": round(len(latencies) / sum(latencies), 1),
        "stream_pass_p50_ms": round(percentile(passes, 0.5) * 1000, 1) if passes else 0,
        "stream_events_per_s": round(options.stream_rate * len(passes) / sum(passes), 1) if passes else 0,
    }  # fmt: skip
    rows = [[name, str(value)] for name, value in figures.items()]
    return Report("Segments", figures, (Table("Segments", ("figure", "value"), rows),))
