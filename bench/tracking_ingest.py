"""Tracking ingestion: events/s through `POST /v1/batch`, against one INSERT per event,
and identity reading the log afterwards.

The real app runs in-process and is driven over ASGI with httpx, one request at a
time, with the real clock: batches of realistic Segment events (web page views and
product events with browser context, app screens, till receipts naming a store code,
identify calls with traits; visitors making ~10 events each, interleaved; random
message ids, as Segment libraries make them) are pre-encoded to JSON, then posted with
a write key in HTTP Basic, as Segment libraries send it. Everything the endpoint does
is timed: reading and decoding the body, validation, skew correction, the store check,
the erasure check, the insert and the commit.

With `--worker`, `parcours worker` runs in a process of its own during phase 1, as in
production, and the bench waits after the last request until identity has read every
event: the lag, and the rate with identity included, say whether it keeps up.

With `--processes N` the app is served instead by uvicorn in N processes on 127.0.0.1
(as `parcours serve --processes N`), and posted to over TCP with `--connections`
requests in flight (two per process by default), a new connection per request so that
the kernel spreads them over the processes; the servers' CPU time is read from /proc.

Two phases, each on a fresh database of the same kind:

1. ingestion, one bulk insert per request (one executemany on SQLite, one INSERT …
   SELECT FROM unnest on PostgreSQL); then, timed apart, the identity graph reading
   what was logged (`identity_log.resolve_job`, as the worker's job does it, in passes
   of 5,000 log positions), so the table also says what one process doing both
   sustains;
2. the baseline: each event inserted on its own through SQLAlchemy
   (`session.execute(insert(...), row)`).

The ratio compares 1 and 2 over the same number of events from an empty log (the
log's indexes make inserts slower as it grows).

The httpx client shares the process with the app, so its cost counts against the
figures; it is small (about 1-2% of the elapsed time: the ASGI app runs for 98-99% of
it). Each phase also reports events per CPU second of the process (client, app and its
worker threads): on a machine shared with other work, that figure moves less than
events per second of wall time, so compare changes with it and confirm with the wall
figures over interleaved runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bench import BenchmarkError
from bench.databases import postgres_databases
from bench.demo_generation import target_database
from bench.report import Figures, Report, Table, count, note, seconds, verdict
from parcours import customers, stores
from parcours.app import create_app
from parcours.core import auth
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import SystemClock
from parcours.core.db import Database, safe_url
from parcours.core.logs import configure_logging
from parcours.core.migrate import upgrade
from parcours.core.settings import load_settings
from parcours.customers import identity, identity_log, privacy, tracking, tracking_messages
from parcours.customers.models import TrackedEvent

DESCRIPTION = (
    "Tracking /v1/batch events/s (in-process ASGI, or uvicorn over TCP) vs one INSERT per event"
)
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
BULK_INSERT = tracking._insert
WARM_UP = json.dumps(
    {"batch": [{"type": "track", "event": "Warm-up", "anonymousId": "bench", "messageId": "w"}]}
).encode()
STORE_CODES = [f"ML-{n:02d}" for n in range(1, 13)]
PRODUCTS = [f"ROBE-{n:03d}" for n in range(200)]
PAGES = ["/", "/femme/robes", "/maison/linge", "/panier", "/compte", "/magasins"]
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench tracking_ingest", description=DESCRIPTION
    )
    parser.add_argument(
        "--events", type=int, default=50_000, help="events per phase (default: 50000)"
    )
    parser.add_argument("--batch-size", type=int, default=500, help="events per request")
    parser.add_argument(
        "--baseline-events",
        type=int,
        default=10_000,
        help="events for the one-INSERT-per-event baseline (default: 10000)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a PRAGMA set on every SQLite connection, to try settings the product does not "
        "use (e.g. cache_size=-65536, wal_autocheckpoint=10000); repeatable",
    )
    parser.add_argument("--target", type=float, default=20_000.0, help="events/s to reach")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="serve the app with uvicorn in this many processes on 127.0.0.1 (as `parcours "
        "serve --processes N`) and post over TCP, instead of in-process ASGI (default: 0)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=0,
        help="with --processes: requests in flight at once (default: two per process)",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="run `parcours worker` in its own process during the bulk phase and time "
        "identity catching up after the last request (default: identity is timed after)",
    )
    parser.add_argument(
        "--erasure",
        action="store_true",
        help="erase one person first, so that every batch's identifiers are checked against "
        "the erasures' tombstones, as in a shop that has erased someone (default: none)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--postgres",
        action="store_true",
        help="run on a throwaway PostgreSQL server started for the run (needs its binaries)",
    )
    where.add_argument(
        "--database-url",
        help="an EMPTY database for the first phase; the others run on temporary SQLite "
        "files, so prefer --postgres for PostgreSQL",
    )
    options = parser.parse_args(argv)
    for pragma in options.sqlite_pragma:
        if not re.fullmatch(r"[a-z_]+=-?[0-9A-Za-z_]+", pragma):
            parser.error(f"--sqlite-pragma takes NAME=VALUE, not {pragma!r}")
    if options.events < 1 or not 1 <= options.batch_size <= 2_000 or options.baseline_events < 1:
        parser.error("--events and --baseline-events must be at least 1, --batch-size 1-2000")
    if options.processes < 0 or options.connections < 0:
        parser.error("--processes and --connections cannot be negative")
    if options.processes and options.sqlite_pragma:
        parser.error("--sqlite-pragma applies to in-process runs only")
    options.connections = options.connections or 2 * options.processes
    return options


# ------------------------------------------------------------------ realistic events


def _web_context(rng: random.Random, path: str) -> dict[str, Any]:
    return {
        "library": {"name": "parcours.js", "version": "1.0.0"},
        "page": {
            "path": path,
            "referrer": rng.choice(["", "https://www.google.fr/", "https://www.instagram.com/"]),
            "search": "",
            "title": "Maison Lavande",
            "url": f"https://www.maison-lavande.fr{path}",
        },
        "userAgent": USER_AGENT,
        "locale": "fr-FR",
        "ip": f"90.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "campaign": {"source": "newsletter", "medium": "email"} if rng.random() < 0.1 else {},
    }


def _product(rng: random.Random) -> dict[str, Any]:
    code = rng.choice(PRODUCTS)
    return {
        "product_id": code,
        "sku": f"{code}-{rng.choice('SML')}",
        "category": "Robes",
        "name": f"Robe en lin {code[-3:]}",
        "brand": "Maison Lavande",
        "price": rng.choice([39.9, 59.0, 89.0, 129.0]),
        "currency": "EUR",
        "quantity": 1,
    }


@dataclass(frozen=True)
class Visitor:
    """A browser or phone: its anonymous id, and a user id once logged in."""

    anonymous_id: str
    user_id: str | None
    device_id: str


def make_visitors(rng: random.Random, n: int) -> list[Visitor]:
    return [
        Visitor(
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            f"web-{rng.randrange(50_000):05d}" if rng.random() < 0.3 else None,
            f"dev-{rng.randrange(10**9)}",
        )
        for _ in range(n)
    ]


def make_event(rng: random.Random, visitor: Visitor, n: int, sent: datetime) -> dict[str, Any]:
    """One realistic message (0.3-1.5 KB). It happened up to 2 s before the batch was sent
    (a server library flushes every half second), or up to 10 minutes before for one
    event in twenty (a phone that was offline). Message ids are random UUIDs, as Segment
    libraries make them."""
    delay = rng.uniform(0, 600) if rng.random() < 0.05 else rng.uniform(0, 2)
    at = (sent - timedelta(seconds=delay)).isoformat(timespec="milliseconds")
    base: dict[str, Any] = {
        "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "anonymousId": visitor.anonymous_id,
        "timestamp": at,
    }
    user_id = visitor.user_id
    if user_id:
        base["userId"] = user_id
    roll = rng.random()
    if roll < 0.35:
        path = rng.choice(PAGES)
        return {**base, "type": "page", "name": path, "context": _web_context(rng, path)}
    if roll < 0.75:
        name = rng.choice(["Product Viewed", "Product Added", "Product List Viewed"])
        return {
            **base,
            "type": "track",
            "event": name,
            "properties": _product(rng),
            "context": _web_context(rng, "/femme/robes"),
        }
    if roll < 0.85:
        return {
            **base,
            "type": "screen",
            "name": "Fiche produit",
            "properties": _product(rng),
            "context": {
                "channel": "app",
                "library": {"name": "analytics-kotlin", "version": "1.16"},
                "device": {"id": visitor.device_id, "model": "Pixel 8"},
                "os": {"name": "Android", "version": "15"},
                "locale": "fr-FR",
            },
        }
    if roll < 0.95:
        products = [_product(rng) for _ in range(rng.randint(1, 4))]
        return {
            **base,
            "type": "track",
            "event": "Order Completed",
            "userId": user_id or f"pos-{rng.randrange(20_000):05d}",
            "properties": {
                "order_id": f"T-{n}",
                "revenue": round(sum(p["price"] for p in products), 2),
                "currency": "EUR",
                "products": products,
            },
            "context": {"channel": "store", "store_id": rng.choice(STORE_CODES)},
        }
    return {
        **base,
        "type": "identify",
        "userId": user_id or f"web-{rng.randrange(50_000):05d}",
        "traits": {
            "email": f"client{rng.randrange(50_000)}@exemple.fr",
            "first_name": "Camille",
            "city": "Lyon",
        },
        "context": _web_context(rng, "/compte"),
    }


def make_bodies(rng: random.Random, events: int, batch_size: int) -> list[bytes]:
    """Batches of events from visitors making ~10 events each, interleaved, sent every
    half second by the sender's clock (which runs a minute fast: skew correction puts
    the events at the server's reception time)."""
    visitors = make_visitors(rng, max(1, events // 10))
    bodies = []
    for number, start in enumerate(range(0, events, batch_size)):
        sent = NOW + timedelta(minutes=1, seconds=number / 2)
        batch = [
            make_event(rng, rng.choice(visitors), n, sent)
            for n in range(start, min(start + batch_size, events))
        ]
        sent_at = sent.isoformat(timespec="milliseconds")
        bodies.append(json.dumps({"batch": batch, "sentAt": sent_at}).encode())
    return bodies


# ------------------------------------------------------------------ databases and runs


@dataclass(frozen=True)
class Phase:
    """One timed run of requests on a fresh database."""

    name: str
    insert: str  # "bulk" or "per_event"


PHASES = (
    Phase("ingestion, one bulk insert per request", "bulk"),
    Phase("ingestion, one INSERT per event (baseline)", "per_event"),
)


@contextmanager
def fresh_databases(options: argparse.Namespace, count: int) -> Iterator[list[Database]]:
    """`count` empty databases of the kind asked for (temporary SQLite files by default)."""
    if options.postgres:
        with postgres_databases(count) as dbs:
            yield dbs
        return
    with ExitStack() as stack:
        first = stack.enter_context(target_database(options.database_url))
        others = [stack.enter_context(target_database(None)) for _ in range(count - 1)]
        yield [first, *others]


def _prepare(db: Database) -> str:
    """Migrate, add the stores events name, and create a write key."""
    upgrade(db)
    rows = [
        {
            "code": code,
            "name": f"Maison Lavande {code}",
            "address": "1 rue de la République",
            "postcode": "69002",
            "city": "Lyon",
            "lat": 45.76,
            "lon": 4.83,
            "timezone": "Europe/Paris",
        }
        for code in STORE_CODES
    ]
    with db.transaction() as session:
        if stores.count_stores(session) == 0:
            stores.add_stores(session, NOW, rows)
        return auth.create_api_key(session, NOW, CLI_ACTOR, "bench", "write").secret


def _erase_someone(db: Database) -> None:
    """A person seen on the web, then erased: an erasure tombstone is in force."""
    with db.transaction() as session:
        seen = identity.Observation(
            identifiers={"user_id": "erased-1", "email": "erased@exemple.fr"},
            source="web",
            observed_at=NOW,
            traits={},
            reference="bench",
        )
        [profile_id] = identity.observe(session, NOW, [seen])
        assert profile_id is not None
        privacy.erase_person(session, NOW, CLI_ACTOR, profile_id)
        assert privacy.erasures_in_force(session)


def _insert_one_by_one(
    session: Session, source_id: uuid.UUID | None, events: list[tracking_messages.PreparedEvent]
) -> set[str]:
    """The baseline: each event inserted on its own, as an ordinary implementation would
    (`session.execute(insert(Model), row)`), with the same conflict rule."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = TrackedEvent.__table__
    stmt = (
        dialect.insert(table)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(table.c.message_id)
    )
    stored = set()
    for event in events:
        event.row["source_id"] = source_id
        found = session.scalar(stmt, event.row)
        if found is not None:
            stored.add(found)
    return stored


def _pragmas(pragmas: list[str]) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        for pragma in pragmas:
            dbapi_connection.execute(f"PRAGMA {pragma}")  # checked NAME=VALUE

    return apply


@contextmanager
def configured(phase: Phase) -> Iterator[None]:
    """Swap in the phase's insert strategy, then restore it."""
    _swap_in(phase)
    try:
        yield
    finally:
        tracking._insert = BULK_INSERT


def _swap_in(phase: Phase) -> None:
    if phase.insert == "per_event":
        tracking._insert = _insert_one_by_one


def _headers(key: str) -> dict[str, str]:
    """The write key in HTTP Basic, as Segment libraries send it."""
    basic = base64.b64encode(f"{key}:".encode()).decode()
    return {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}


async def _post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> None:
    """Post one batch; a refusal or a rejected event stops the run."""
    response = await client.post("/v1/batch", content=body, headers=headers)
    answer = response.json()
    if response.status_code != 200 or answer["rejected"]:
        raise BenchmarkError(f"/v1/batch answered {response.status_code}: {answer}")


async def _post_all(
    db: Database, key: str, bodies: list[bytes], folder: Path
) -> tuple[list[float], float]:
    """Post every body in turn; the elapsed time after each request, and the CPU time
    of the whole process over all of them (client, server and its worker threads)."""
    settings = load_settings(
        database_url=db.engine.url.render_as_string(hide_password=False),
        data_dir=folder,
        log_level="WARNING",
    )
    app = create_app(settings, db)  # the real clock: the log grows in time order
    headers = _headers(key)
    transport = httpx.ASGITransport(app=app)
    elapsed = []
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        # One untimed request first: FastAPI and SQLAlchemy prepare things on first use.
        await client.post("/v1/batch", content=WARM_UP, headers=headers)
        started, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            await _post(client, body, headers)
            elapsed.append(time.perf_counter() - started)
        return elapsed, time.process_time() - cpu


# ------------------------------------------------------------------ over TCP (--processes)

ROOT = Path(__file__).resolve().parents[1]
_PHASE_ENV = "PARCOURS_BENCH_PHASE"


def served_app() -> FastAPI:
    """The app of each server process (uvicorn factory), with the phase named in the
    environment swapped in for the life of the process."""
    from parcours.runtime import served_app as parcours_app

    _swap_in(next(p for p in PHASES if p.name == os.environ[_PHASE_ENV]))
    return parcours_app()


def _process_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        used = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    return used + sum(_process_cpu(int(child)) for child in children)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _parcours_env(db: Database, folder: Path, log_level: str) -> dict[str, str]:
    """The environment of a Parcours process of the bench's (server or worker) on `db`."""
    return {
        **os.environ,
        "PARCOURS_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "PARCOURS_DATA_DIR": str(folder),
        "PARCOURS_LOG_LEVEL": log_level,
    }


def _post_served(
    db: Database, key: str, bodies: list[bytes], folder: Path, phase: Phase, options: Any
) -> tuple[list[float], float]:
    """Serve the app in `options.processes` uvicorn processes and post every body over
    TCP with `options.connections` requests in flight; the elapsed time after each
    completed request, and the CPU time of the servers and this client."""
    port = _free_port()
    env = _parcours_env(db, folder, "WARNING")
    env |= {"PARCOURS_WORKER_IN_PROCESS": "false", _PHASE_ENV: phase.name}
    serve = (
        "import uvicorn; uvicorn.run('bench.tracking_ingest:served_app', factory=True, "
        f"host='127.0.0.1', port={port}, workers={options.processes}, "
        "log_level='warning', access_log=False)"
    )
    server = subprocess.Popen([sys.executable, "-c", serve], env=env, cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        return asyncio.run(_post_over_tcp(url, key, bodies, server, options.connections))
    finally:
        server.terminate()
        server.wait(timeout=60)


async def _post_over_tcp(
    url: str, key: str, bodies: list[bytes], server: subprocess.Popen[bytes], connections: int
) -> tuple[list[float], float]:
    headers = _headers(key)
    # A new connection per request: the kernel spreads them over the server processes.
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:
        for _ in range(600):  # up to a minute for the processes to start
            if server.poll() is not None:
                raise BenchmarkError(f"the server exited with status {server.returncode}")
            try:
                if (await client.get("/health")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        else:
            raise BenchmarkError("the server did not answer within a minute")
        # Untimed: each process prepares FastAPI and SQLAlchemy on its first requests.
        warm = [client.post("/v1/batch", content=WARM_UP, headers=headers) for _ in range(20)]
        await asyncio.gather(*warm)
        pending = iter(bodies)
        elapsed: list[float] = []
        server_cpu, cpu = _process_cpu(server.pid), time.process_time()
        started = time.perf_counter()

        async def send() -> None:
            for body in pending:
                await _post(client, body, headers)
                elapsed.append(time.perf_counter() - started)

        await asyncio.gather(*(send() for _ in range(connections)))
        used = _process_cpu(server.pid) - server_cpu + time.process_time() - cpu
        return elapsed, used


@contextmanager
def running_worker(db: Database, folder: Path) -> Iterator[None]:
    """`parcours worker` in a process of its own on `db`, once it has started."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "parcours", "worker"],
        env=_parcours_env(db, folder, "INFO"),  # INFO: it says when it has started
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            if b"worker started" in line:
                break
        else:
            raise BenchmarkError(f"the worker exited with status {worker.wait()}")
        output = worker.stdout  # read on, so that its logs never fill the pipe
        threading.Thread(target=lambda: [None for _ in output], daemon=True).start()
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def _identity_lag(db: Database, timeout_s: float = 600.0) -> float:
    """Seconds until identity has read every logged event (the worker reads it)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        with db.transaction() as session:
            if customers.pending_events(session) == 0:
                return time.perf_counter() - started
        time.sleep(0.05)
    raise BenchmarkError(f"identity had not read the log {timeout_s:.0f} s after the last request")


def _identity_pass(db: Database) -> tuple[float, float]:
    """Identity reading the whole log, as the worker's job does: wall and CPU seconds."""
    started, cpu = time.perf_counter(), time.process_time()
    identity_log.resolve_job(db, SystemClock())
    return time.perf_counter() - started, time.process_time() - cpu


def _stored(db: Database) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(TrackedEvent)) or 0


@dataclass(frozen=True)
class Measured:
    phase: Phase
    events: int
    elapsed: list[float]  # seconds after each request
    cpu_seconds: float  # CPU time of the process: less sensitive than wall time to other load
    identity_seconds: float = 0.0  # identity reading the logged events afterwards
    identity_cpu_seconds: float = 0.0
    identity_lag: float | None = None  # with --worker: from the last answer to caught up

    @property
    def seconds(self) -> float:
        return self.elapsed[-1]

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.events / self.cpu_seconds

    @property
    def median_rate(self) -> float:
        """Events/s between consecutive answers, the median over the run (mean events per
        request): unlike the total it leaves out the few requests a WAL checkpoint or a
        busy moment of the machine slowed down, so it moves less from run to run."""
        gaps = [after - before for before, after in itertools.pairwise([0.0, *self.elapsed])]
        return self.events / len(self.elapsed) / statistics.median(gaps)

    def rate_over_first(self, batches: int, batch_size: int) -> float:
        """Events/s over the first requests only: the log grows, so rates are compared
        at the same size."""
        batches = min(batches, len(self.elapsed))
        return min(self.events, batches * batch_size) / self.elapsed[batches - 1]


def run(argv: list[str]) -> Report:
    options = parse(argv)
    configure_logging("WARNING", "json")
    rng = random.Random(options.seed)
    note(f"making {options.events:,} events in batches of {options.batch_size}")
    bodies = make_bodies(rng, options.events, options.batch_size)
    baseline_batches = max(1, options.baseline_events // options.batch_size)
    mean_bytes = sum(len(b) for b in bodies) / options.events
    results = []
    with (
        TemporaryDirectory(prefix="parcours-bench-") as folder,
        fresh_databases(options, len(PHASES)) as dbs,
    ):
        where = safe_url(str(dbs[0].engine.url))
        dialect = dbs[0].dialect
        if options.sqlite_pragma and dialect == "sqlite":
            for db in dbs:
                sqlalchemy_event.listen(db.engine, "connect", _pragmas(options.sqlite_pragma))
            where += " with PRAGMA " + ", ".join(options.sqlite_pragma)
        for phase, db in zip(PHASES, dbs, strict=True):
            sent = bodies if phase.insert == "bulk" else bodies[:baseline_batches]
            count = sum(body.count(b'"messageId"') for body in sent)
            key = _prepare(db)
            if options.erasure:
                _erase_someone(db)
            note(f"{phase.name}: {len(sent):,} batches")
            watched = options.worker and phase.insert == "bulk"
            with ExitStack() as stack:
                if watched:
                    note("starting parcours worker")
                    stack.enter_context(running_worker(db, Path(folder)))
                if options.processes:
                    elapsed, cpu = _post_served(db, key, sent, Path(folder), phase, options)
                else:
                    with configured(phase):
                        elapsed, cpu = asyncio.run(_post_all(db, key, sent, Path(folder)))
                lag = _identity_lag(db) if watched else None
            if _stored(db) != count + 1:  # and the warm-up event
                raise BenchmarkError(f"{phase.name}: expected {count:,} events in the log")
            identity_s, identity_cpu = (0.0, 0.0)
            if phase.insert == "bulk" and lag is None:
                note("identity reading the log")
                identity_s, identity_cpu = _identity_pass(db)
            measured = Measured(phase, count, elapsed, cpu, identity_s, identity_cpu, lag)
            results.append(measured)
    return _report(options, dialect, where, results, mean_bytes)


def _report(
    options: argparse.Namespace,
    dialect: str,
    where: str,
    results: list[Measured],
    mean_bytes: float,
) -> Report:
    bulk, baseline = results
    same_size = bulk.rate_over_first(len(baseline.elapsed), options.batch_size)
    ratio = same_size / baseline.rate
    judged = dialect == "sqlite"  # the target is for the embedded database
    passed = bulk.rate >= options.target
    if bulk.identity_lag is None:
        identity_rate = bulk.events / bulk.identity_seconds
        identity_cpu_rate = bulk.events / bulk.identity_cpu_seconds
        both_rate = bulk.events / (bulk.seconds + bulk.identity_seconds)
        both = "events/s, ingestion then identity in one process"
    else:  # the worker read the log meanwhile, in its own process
        identity_rate = identity_cpu_rate = 0.0
        both_rate = bulk.events / (bulk.seconds + bulk.identity_lag)
        both = "events/s, identity included (the worker read the log meanwhile)"
    figures: Figures = {
        "database": dialect,
        "server_processes": options.processes or "in-process",
        "events": options.events,
        "batch_size": options.batch_size,
        "mean_event_bytes": round(mean_bytes),
        "events_per_s": round(bulk.rate),
        "events_per_cpu_s": round(bulk.cpu_rate),
        "events_per_s_median_request": round(bulk.median_rate),
        "worker_process": bulk.identity_lag is not None,
        "erasure_in_force": options.erasure,
        "identity_events_per_s": round(identity_rate) if identity_rate else "n/a",
        "identity_events_per_cpu_s": round(identity_cpu_rate) if identity_cpu_rate else "n/a",
        "identity_lag_after_last_request_s": (
            round(bulk.identity_lag, 3) if bulk.identity_lag is not None else "n/a"
        ),
        "events_per_s_identity_included": round(both_rate),
        "baseline_events": baseline.events,
        "baseline_events_per_s": round(baseline.rate),
        "bulk_events_per_s_same_size": round(same_size),
        "ratio_vs_one_insert_per_event": round(ratio, 2),
        "target_events_per_s": options.target,
        "passed": passed if judged else "n/a",
    }
    rows = [
        (m.phase.name, count(m.events), seconds(m.seconds), count(m.rate), count(m.cpu_rate))
        for m in results
    ]
    if bulk.identity_lag is None:
        identity_row = (
            "identity reading the events of phase 1",
            count(bulk.events),
            seconds(bulk.identity_seconds),
            count(identity_rate),
            count(identity_cpu_rate),
        )
    else:
        identity_row = (
            "identity (worker process) caught up after the last request",
            count(bulk.events),
            seconds(bulk.identity_lag),
            "",
            "",
        )
    rows.insert(1, identity_row)
    target = "SQLite target" if dialect == "sqlite" else "target (SQLite only)"
    verdicts = [
        (f"events/s through /v1/batch ({target} {options.target:,.0f})", count(bulk.rate)),
        (
            "events/s through /v1/batch, median request (slow moments aside)",
            count(bulk.median_rate),
        ),
        (both, count(both_rate)),
        (
            "ratio, bulk insert vs one INSERT per event "
            f"(first {baseline.events:,} events of each)",
            f"x{ratio:,.1f}",
        ),
    ]
    how = (
        f"{options.processes} uvicorn process(es) over TCP, {options.connections} requests "
        "in flight"
        if options.processes
        else "in-process ASGI"
    )
    return Report(
        f"POST /v1/batch on {where}, {how}: {options.events:,} events, "
        f"{options.batch_size} per batch, ~{mean_bytes:,.0f} bytes each",
        figures,
        [
            Table(
                "Ingestion (each phase on a fresh database) and identity",
                ("phase", "events", "seconds", "events/s", "events/CPU s"),
                rows,
            ),
            Table(
                "Verdict",
                ("what", "value", ""),
                [
                    (what, value, verdict(passed) if n == 0 and judged else "")
                    for n, (what, value) in enumerate(verdicts)
                ],
            ),
        ],
    )
