"""Profile page latency with a big event log: the API answer and the console page.

A log of 1,000,000 events (default) is written straight into the `events` table, as
tracking's bulk path does, for 50,000 profiles: each has a user id and one to three
anonymous ids (browsers, the app), and the identity rows the graph would hold for them
(written in bulk too: the identity graph's own speed is another benchmark). Activity is
skewed as in real shops: a few profiles have thousands of events, most a handful; a
fifth of the log belongs to anonymous visitors nobody identified. About 4% of events are
`Order Completed` (web, app and store tills), with products and categories.

Then the computed traits are refreshed for everyone (timed: the periodic job's work),
and each timed profile is read, in-process through ASGI with httpx, as its page does:
`GET /v1/customers/{id}` (profile, traits, identifiers, computed traits),
`GET /v1/customers/{id}/timeline` (first page of 50) and the console page
`/console/customers/{id}` (all of it in HTML). Profiles are drawn at random, plus the
heaviest ones, whose timeline is the hardest; the timeline reads through the log's
index by sender (`event_senders`), which the report checks in the plan. The events are
loaded in bulk with the identities, so the log's identity reader only files them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, cast

import httpx
import sqlalchemy as sa
from sqlalchemy import text

from bench.demo_generation import target_database
from bench.report import Report, Table, count, note, seconds, verdict
from parcours import stores
from parcours.app import create_app
from parcours.core import auth
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database, bulk_insert, safe_url
from parcours.core.events import locked_cursor
from parcours.core.ids import new_id
from parcours.core.logs import configure_logging
from parcours.core.migrate import upgrade
from parcours.core.settings import load_settings
from parcours.customers import identity_log, profile_traits
from parcours.customers.models import (
    Customer,
    IdentityCluster,
    IdentityIdentifier,
    TrackedEvent,
)
from parcours.customers.profile_timeline import (
    TimelineQuery,
    event_statement,
    unfiled_statement,
)

DESCRIPTION = "Profile page p50/p95 (API and console) with 1M events in the log"
NOW = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)
HISTORY_DAYS = 730
CHANNELS = (("web", 50), ("app", 25), ("store", 15), ("call_centre", 4), ("email", 6))
CATEGORIES = ("Robes", "Chemises", "Pantalons", "Chaussures", "Maison", "Accessoires")
PAGES = ("/", "/robes", "/chemises", "/maison", "/soldes", "/magasins")
CHUNK = 20_000
PASSWORD = "bench password 1"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench profile_page", description=DESCRIPTION)
    parser.add_argument("--events", type=int, default=1_000_000, help="events (default: 1M)")
    parser.add_argument("--profiles", type=int, default=50_000, help="profiles (default: 50k)")
    parser.add_argument("--samples", type=int, default=300, help="timed profiles (default: 300)")
    parser.add_argument("--heavy", type=int, default=20, help="of which the heaviest (20)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--target-p95-ms", type=float, default=100.0)
    parser.add_argument(
        "--database-url",
        help="an EMPTY database to run on (e.g. postgresql+psycopg://...); default: temp SQLite",
    )
    options = parser.parse_args(argv)
    if options.profiles < 10 or options.events < options.profiles or options.samples < 1:
        parser.error("need at least 10 profiles, as many events as profiles, and 1 sample")
    if not 0 <= options.heavy <= options.samples:
        parser.error("--heavy must be between 0 and --samples")
    return options


# ------------------------------------------------------------------ data


def add_people(db: Database, rng: random.Random, n: int) -> list[list[tuple[str, str]]]:
    """Profiles with their identity rows, in bulk; each person's (kind, value) ids."""
    people: list[list[tuple[str, str]]] = []
    for start in range(0, n, CHUNK):
        customers, clusters, identifiers = [], [], []
        for i in range(start, min(n, start + CHUNK)):
            profile_id = new_id()
            ids = [("user_id", f"u-{i}"), ("email", f"person{i}@example.com")]
            ids += [("anonymous_id", f"a-{i}-{k}") for k in range(rng.choice((1, 1, 2, 3)))]
            people.append([p for p in ids if p[0] != "email"])
            customers.append(
                {
                    "id": profile_id,
                    "email": f"person{i}@example.com",
                    "first_name": f"Prénom{i}",
                    "last_name": f"Nom{i}",
                    "country": "FR",
                    "locale": "fr",
                    "timezone": "Europe/Paris",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            clusters.append({"id": profile_id, "conflicted": False, "created_at": NOW})
            identifiers += [
                {
                    "kind": kind,
                    "value": value,
                    "profile_id": profile_id,
                    "origin_profile_id": profile_id,
                    "cluster_id": profile_id,
                    "source": "web",
                    "first_seen": NOW,
                    "last_seen": NOW,
                }
                for kind, value in ids
            ]
        with db.transaction() as session:
            session.execute(bulk_insert(Customer), customers)
            session.execute(bulk_insert(IdentityCluster), clusters)
            session.execute(bulk_insert(IdentityIdentifier), identifiers)
    return people


def _weights(n: int) -> list[float]:
    """Zipf-like activity: person i weighs 1 / (i + 10) ** 0.9 (a few very active)."""
    return [1 / (i + 10) ** 0.9 for i in range(n)]


EVENT_COLUMNS = (
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "channel",
    "store_id",
    "timestamp",
    "received_at",
    "properties",
    "context",
)
_PAGE_EVENTS = [(path, path.strip("/") or "home", json.dumps({"path": path})) for path in PAGES]
_OTHER_EVENTS = ("Product Viewed", "Product Added", "Store Visited")


def event_rows(
    rng: random.Random,
    people: list[list[tuple[str, str]]],
    store_ids: list[uuid.UUID],
    total: int,
    dialect: str,
) -> Iterator[list[tuple[Any, ...]]]:
    """The log in chunks of tuples (`EVENT_COLUMNS`): 80% by known people, skewed, and
    20% by visitors nobody identified. Random draws are made a chunk at a time."""
    owners = rng.choices(range(len(people)), _weights(len(people)), k=int(total * 0.8))
    owners += [-1] * (total - len(owners))
    rng.shuffle(owners)
    names = [name for name, _ in CHANNELS]
    cumulative = list(itertools.accumulate(float(weight) for _, weight in CHANNELS))
    start = int((NOW - timedelta(days=HISTORY_DAYS)).timestamp())
    stores_hex = [(s, s.hex) for s in store_ids]
    for first in range(0, total, CHUNK):
        size = min(total, first + CHUNK) - first
        channels = rng.choices(names, cum_weights=cumulative, k=size)
        rows = []
        for offset, channel in enumerate(channels):
            n = first + offset
            owner = owners[n]
            user_id = anonymous_id = None
            if owner < 0:
                anonymous_id = f"visitor-{rng.randrange(total)}"
            else:
                kind, value = rng.choice(people[owner])
                if kind == "user_id":
                    user_id = value
                else:
                    anonymous_id = value
            at = datetime.fromtimestamp(start + rng.randrange(HISTORY_DAYS * 86_400), UTC)
            when: Any = at if dialect == "postgresql" else at.strftime("%Y-%m-%d %H:%M:%S.000000")
            store: Any = None
            if channel == "store":
                chosen = rng.choice(stores_hex)
                store = chosen[0] if dialect == "postgresql" else chosen[1]
            kind_, event, properties = _what(rng, channel, n)
            context = f'{{"channel": "{channel}"}}'
            rows.append(
                (
                    f"bench-{n}",
                    kind_,
                    event,
                    user_id,
                    anonymous_id,
                    channel,
                    store,
                    when,
                    when,
                    properties,
                    context,
                )
            )
        yield rows


def _what(rng: random.Random, channel: str, n: int) -> tuple[str, str, str]:
    """(type, event, properties as JSON) of one event: 4% purchases, page or screen views
    on the web and in the app, product and store events otherwise."""
    roll = rng.random()
    if roll < 0.04:
        lines = [
            {"sku": f"SKU-{rng.randrange(1600)}", "category": rng.choice(CATEGORIES)}
            for _ in range(rng.choice((1, 1, 2, 3)))
        ]
        revenue = round(rng.uniform(15, 250), 2)
        properties = {"order_id": f"o-{n}", "revenue": revenue, "currency": "EUR"}
        return "track", "Order Completed", json.dumps({**properties, "products": lines})
    if roll < 0.6 and channel in ("web", "app"):
        _, name, properties_json = rng.choice(_PAGE_EVENTS)
        return ("page" if channel == "web" else "screen"), name, properties_json
    sku = rng.randrange(1600)
    return "track", rng.choice(_OTHER_EVENTS), f'{{"sku": "SKU-{sku}"}}'


def write_events(db: Database, rows: list[tuple[Any, ...]]) -> None:
    """The driver's own bulk path: one executemany of plain tuples on SQLite, COPY on
    PostgreSQL (the ORM's per-value conversions would make writing the log the slowest
    part of this benchmark)."""
    columns = ", ".join(EVENT_COLUMNS)
    if db.dialect == "postgresql":
        raw = db.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection  # psycopg's connection: COPY
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            driver.commit()
        finally:
            raw.close()
        return
    marks = ", ".join("?" for _ in EVENT_COLUMNS)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO events ({columns}) VALUES ({marks})", rows)


def fill(db: Database, options: argparse.Namespace) -> tuple[list[list[tuple[str, str]]], float]:
    rng = random.Random(options.seed)
    started = time.perf_counter()
    with db.transaction() as session:
        stores.add_stores(session, NOW, [_store(i) for i in range(12)])
        store_ids = list(stores.store_ids_by_code(session, [f"B-{i}" for i in range(12)]).values())
    note(f"adding {options.profiles:,} profiles and their identity rows")
    people = add_people(db, rng, options.profiles)
    note(f"writing {options.events:,} events into the log")
    # As any bulk load: the secondary indexes are built once at the end, by sorting,
    # rather than grown one random insert at a time.
    events_table = cast(sa.Table, TrackedEvent.__table__)
    indexes = sorted(events_table.indexes, key=lambda i: str(i.name))
    with db.engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    written = 0
    for rows in event_rows(rng, people, store_ids, options.events, db.dialect):
        write_events(db, rows)
        written += len(rows)
        if written % 200_000 == 0:
            note(f"  {written:,} events")
    with db.engine.begin() as conn:
        for index in indexes:
            index.create(conn)
    # The identities were written above: the log's identity reader only files the
    # events by sender, as its passes would have, and starts after them.
    with db.transaction() as session:
        cursor = locked_cursor(session, identity_log.CURSOR, NOW)
        head = identity_log.log_head(session)
        identity_log.file_senders(session, cursor.position, head)
        cursor.position = head
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return people, time.perf_counter() - started


def _store(i: int) -> dict[str, Any]:
    return {
        "code": f"B-{i}",
        "name": f"Bench store {i}",
        "address": "1 rue du Bench",
        "postcode": "69002",
        "city": "Lyon",
        "lat": 45.75 + i / 100,
        "lon": 4.83,
        "timezone": "Europe/Paris",
        "opening_hours": {},
        "services": [],
    }


# ------------------------------------------------------------------ timing


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def pick_profiles(db: Database, options: argparse.Namespace) -> tuple[list[uuid.UUID], int]:
    """Random profiles, plus the heaviest (by events); the heaviest one's event count."""
    rng = random.Random(options.seed + 1)
    with db.transaction() as session:
        ids = list(session.scalars(text("SELECT id FROM customers ORDER BY id")))
        heavy = session.execute(
            text(
                "SELECT profile_id, events_count FROM profile_computed_traits "
                "ORDER BY events_count DESC LIMIT :n"
            ),
            {"n": options.heavy},
        ).all()
    ids = [uuid.UUID(str(i)) if not isinstance(i, uuid.UUID) else i for i in ids]
    chosen = [uuid.UUID(str(h[0])) for h in heavy]
    chosen += rng.sample(ids, options.samples - len(chosen))
    return chosen, int(heavy[0][1]) if heavy else 0


def uses_indexes(db: Database, identifiers: list[tuple[str, str]]) -> bool:
    """Whether the first timeline page reads the sender index (`event_senders`), and
    the log's tail by position rather than the whole log in time order."""
    query = TimelineQuery(uuid.uuid4(), tuple(identifiers), None, 51)
    plans = []
    with db.transaction() as session:
        dialect = session.get_bind().dialect
        prefix = "EXPLAIN " if dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
        for stmt in (event_statement(query), unfiled_statement(query)):
            assert stmt is not None
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            plans.append(" ".join(str(row[-1]) for row in session.execute(text(prefix + sql))))
    filed, unfiled = plans
    if dialect.name == "postgresql":
        return "pk_event_senders" in filed and "ix_events_timestamp" not in unfiled
    return "event_senders USING PRIMARY KEY" in filed and "rowid>?" in unfiled


async def time_pages(
    db: Database, folder: Path, profile_ids: list[uuid.UUID]
) -> dict[str, list[float]]:
    clock = ManualClock(NOW)
    with db.transaction() as session:
        key = auth.create_api_key(session, NOW, CLI_ACTOR, "bench", "secret", ["customers:read"])
        auth.create_user(session, NOW, CLI_ACTOR, "bench", PASSWORD, "marketer")
    settings = load_settings(
        database_url=db.engine.url.render_as_string(hide_password=False),
        data_dir=folder,
        log_level="WARNING",
    )
    app = create_app(settings, db, clock)
    headers = {"Authorization": f"Bearer {key.secret}"}
    timings: dict[str, list[float]] = {"api_profile": [], "api_timeline": [], "console_page": []}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await _log_in(client)
        urls = {
            "api_profile": ("/v1/customers/{}", headers),
            "api_timeline": ("/v1/customers/{}/timeline", headers),
            "console_page": ("/console/customers/{}", {"Accept": "text/html"}),
        }
        for warm in profile_ids[:10]:
            for url, sent in urls.values():
                await client.get(url.format(warm), headers=sent)
        for profile_id in profile_ids:
            for name, (url, sent) in urls.items():
                started = time.perf_counter()
                response = await client.get(url.format(profile_id), headers=sent)
                timings[name].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")
    return timings


async def _log_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/console/login", headers={"Accept": "text/html"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    data = {"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
    answer = await client.post("/console/login", data={**data, "next": "/console/"})
    if answer.status_code != 303:
        raise RuntimeError("the bench user could not log in")


def run(argv: list[str]) -> Report:
    options = parse(argv)
    configure_logging("WARNING", "json")
    with target_database(options.database_url) as db, TemporaryDirectory() as folder:
        upgrade(db)
        where = safe_url(str(db.engine.url))
        people, generation_s = fill(db, options)
        note(f"data written in {generation_s:,.1f} s; refreshing every profile's traits")
        started = time.perf_counter()
        with db.transaction() as session:
            profile_traits.refresh_all(session, NOW)
        refresh_s = time.perf_counter() - started
        indexed = uses_indexes(db, people[0])
        chosen, heaviest = pick_profiles(db, options)
        note(f"timing {len(chosen)} profiles ({options.heavy} heaviest: {heaviest:,} events)")
        timings = asyncio.run(time_pages(db, Path(folder), chosen))
        return _report(
            options, db.dialect, where, generation_s, refresh_s, indexed, heaviest, timings
        )


def _report(
    options: argparse.Namespace,
    dialect: str,
    where: str,
    generation_s: float,
    refresh_s: float,
    indexed: bool,
    heaviest: int,
    timings: dict[str, list[float]],
) -> Report:
    figures: dict[str, Any] = {
        "database": dialect,
        "events": options.events,
        "profiles": options.profiles,
        "samples": options.samples,
        "heaviest_profile_events": heaviest,
        "generation_s": round(generation_s, 1),
        "refresh_all_s": round(refresh_s, 2),
        "timeline_uses_indexes": indexed,
    }
    rows = []
    for name, values in timings.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        figures[f"{name}_p50_ms"] = round(p50, 2)
        figures[f"{name}_p95_ms"] = round(p95, 2)
        rows.append((name.replace("_", " "), f"{p50:,.1f}", f"{p95:,.1f}", count(len(values))))
    worst = max(
        figures["api_profile_p95_ms"] + figures["api_timeline_p95_ms"],
        figures["console_page_p95_ms"],
    )
    passed = indexed and worst <= options.target_p95_ms
    figures["target_p95_ms"] = options.target_p95_ms
    figures["passed"] = passed
    return Report(
        f"Profile page on {where}: {options.events:,} events, {options.profiles:,} profiles",
        json.loads(json.dumps(figures)),
        [
            Table("Latency (ms, in-process ASGI)", ("request", "p50", "p95", "requests"), rows),
            Table(
                "Verdict",
                ("what", "value", f"target {options.target_p95_ms:,.0f} ms"),
                [
                    (
                        "p95 of the page (API: profile + timeline; console)",
                        f"{worst:,.1f} ms",
                        verdict(passed),
                    ),
                    ("timeline reads the sender index", str(indexed), ""),
                    ("generating the log and the profiles", f"{seconds(generation_s)} s", ""),
                    ("refreshing every profile's computed traits", f"{seconds(refresh_s)} s", ""),
                ],
            ),
        ],
    )
