"""Identity graph throughput: identify operations/s through `observe`, merges/s, unmerges/s.

A synthetic population: every person has a web account (user id, email, anonymous id);
half of them also have a store loyalty profile (customer number, phone) that the graph
does not know is the same person yet. Then, in batches shaped like tracking sends:

1. profiles: the first identify of each web account and each loyalty enrolment;
2. tracking mix: sessions of events from one browser; mostly signed-in users whose ids
   are already linked, some new anonymous ids (new links), some identify calls with
   traits, a few sightings of an email with a loyalty phone (automatic merges);
3. merges: batches that each tie a web account to its loyalty profile;
4. manual merges (`merge_profiles`, one per transaction, as the review queue does) and
   unmerges (`unmerge`, which replays the cluster).

Each phase runs through the real service on a real database (SQLite by default,
PostgreSQL with `--postgres` or `--database-url`), and the end state is checked.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import func, select

from bench import BenchmarkError
from bench.report import Report, Table, count, note, seconds
from parcours import customers
from parcours.core.audit import CLI_ACTOR
from parcours.core.db import Database, safe_url
from parcours.core.migrate import upgrade
from parcours.customers import Observation

DESCRIPTION = "Identity graph: identify operations/s through observe (tracking batches), merges/s"
NOW = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)
SESSION = 10  # events per browsing session in the tracking mix


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench identity_merge", description=DESCRIPTION)
    parser.add_argument("--people", type=int, default=20_000, help="web accounts (default: 20000)")
    parser.add_argument(
        "--mix-batches", type=int, default=60, help="tracking-mix batches (default: 60)"
    )
    parser.add_argument("--batch-size", type=int, default=500, help="observations per batch")
    parser.add_argument("--manual", type=int, default=200, help="manual merges (default: 200)")
    parser.add_argument("--unmerges", type=int, default=100, help="unmerges (default: 100)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database-url", help="run on this EMPTY database (migrated first)")
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL server and use it"
    )
    options = parser.parse_args(argv)
    if options.people < 10 or options.batch_size < 1 or options.mix_batches < 0:
        parser.error("--people must be at least 10, --batch-size at least 1")
    if options.manual * 2 > options.people // 2 or options.unmerges > options.people // 4:
        parser.error("--manual and --unmerges must stay well below --people")
    if options.database_url and options.postgres:
        parser.error("give --database-url or --postgres, not both")
    return options


@contextmanager
def database(options: argparse.Namespace) -> Iterator[Database]:
    """A migrated database: the given one, a throwaway PostgreSQL, or a temporary SQLite."""
    if options.database_url:
        db = Database.connect(options.database_url)
    elif options.postgres:
        with _throwaway_postgres() as url, _migrated(Database.connect(url)) as db:
            yield db
        return
    else:
        with TemporaryDirectory(prefix="parcours-bench-") as folder:
            path = Path(folder) / "bench.db"
            with _migrated(Database.connect(f"sqlite:///{path}")) as db:
                yield db
        return
    with _migrated(db) as migrated:
        if count_profiles(migrated)[0]:
            raise BenchmarkError("the database already holds customers; give an empty one")
        yield migrated


@contextmanager
def _migrated(db: Database) -> Iterator[Database]:
    try:
        upgrade(db)
        yield db
    finally:
        db.dispose()


@contextmanager
def _throwaway_postgres() -> Iterator[str]:
    try:
        from tests.pg_server import PostgresServer
    except ImportError as exc:  # run from outside the repository
        raise BenchmarkError("--postgres needs the repository's tests/pg_server.py") from exc
    note("starting a throwaway PostgreSQL server")
    server = PostgresServer.start()
    try:
        yield server.url("postgres")
    finally:
        server.stop()


class Clock:
    """Event times that move forward a second per observation."""

    def __init__(self) -> None:
        self.at = START

    def tick(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


def web(i: int) -> dict[str, str]:
    return {"user_id": f"web-{i}", "email": f"person{i}@example.com"}


def store(i: int) -> dict[str, str]:
    return {"customer_number": f"C{i:07d}", "phone": f"+3361{i:07d}"}


def timed_batches(db: Database, batches: list[list[Observation]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        with db.transaction() as session:
            customers.observe(session, NOW, batch)
    return time.perf_counter() - started


def chunks(items: list[Observation], size: int) -> list[list[Observation]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def profiles_phase(options: argparse.Namespace, clock: Clock) -> list[Observation]:
    people, items = options.people, []
    for i in range(people):
        traits = {"firstName": f"Prénom{i}", "lastName": f"Nom{i}"}
        ids = {**web(i), "anonymous_id": f"anon-{i}-0"}
        items.append(Observation(ids, "web", clock.tick(), traits, f"signup-{i}"))
        if i % 2 == 0:
            items.append(Observation(store(i), "store", clock.tick(), {}, f"till-{i}"))
    return items


def mix_phase(
    options: argparse.Namespace, clock: Clock, rng: random.Random
) -> tuple[list[Observation], int]:
    """Tracking-like traffic: sessions of `SESSION` events from one browser, a second
    apart. Most sessions are signed-in users on a known browser; some bring a new
    anonymous id (a new link), some identify with traits, a few tie a web email to a
    loyalty phone (a merge). Returns the observations and the merges they should make."""
    items: list[Observation] = []
    merged: set[int] = set()
    fresh = 0
    while len(items) < options.mix_batches * options.batch_size:
        i = rng.randrange(options.people)
        anonymous = f"anon-{i}-0"
        roll = rng.random()
        first: Observation | None = None
        if roll < 0.08:  # a new browser or a cleared cookie: a new link
            fresh += 1
            anonymous = f"anon-{i}-{fresh}"
        elif roll < 0.13:  # identify with traits
            traits = {"city": rng.choice(["Lyon", "Paris", "Lille"]), "plan": "gold"}
            first = Observation(web(i), "web", clock.tick(), traits, f"id-{len(items)}")
        elif roll < 0.15:  # the web email seen with the loyalty phone: one merge
            j = i - i % 2
            merged.add(j)
            ids = {"email": f"person{j}@example.com", "phone": store(j)["phone"]}
            first = Observation(ids, "call_centre", clock.tick(), {}, f"cc-{len(items)}")
        if first is not None:
            items.append(first)
        ids = {"user_id": f"web-{i}", "anonymous_id": anonymous}
        for _ in range(SESSION):
            items.append(Observation(ids, "web", clock.tick(), {}, f"ev-{len(items)}"))
    return items, len(merged)


def merge_phase(options: argparse.Namespace, clock: Clock) -> list[Observation]:
    """One observation per loyalty profile, tying it to its web account."""
    return [
        Observation(
            {"user_id": f"web-{i}", "customer_number": store(i)["customer_number"]},
            "store",
            clock.tick(),
            {},
            f"link-{i}",
        )
        for i in range(0, options.people, 2)
    ]


def count_profiles(db: Database) -> tuple[int, int]:
    """(profiles, profiles merged into another); the bench reads the table to check."""
    from parcours.customers.models import Customer

    with db.transaction() as session:
        total = session.scalar(select(func.count()).select_from(Customer)) or 0
        merged = session.scalar(
            select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_not(None))
        )
        return int(total), int(merged or 0)


def manual_phase(
    db: Database, options: argparse.Namespace, clock: Clock
) -> tuple[float, list[uuid.UUID]]:
    base = options.people * 10
    with db.transaction() as session:
        batch = []
        for k in range(options.manual):
            batch.append(Observation({"email": f"m{base + k}@example.com"}, "web", clock.tick()))
            batch.append(Observation({"user_id": f"pos-{base + k}"}, "store", clock.tick()))
        ids = customers.observe(session, NOW, batch)
    pairs = [(ids[2 * k], ids[2 * k + 1]) for k in range(options.manual)]
    merge_ids = []
    started = time.perf_counter()
    for keep, other in pairs:
        if keep is None or other is None:
            raise BenchmarkError("phase 4 could not create the profiles to merge")
        with db.transaction() as session:
            merge_ids.append(
                customers.merge_profiles(session, NOW, CLI_ACTOR, keep, other, "bench: same person")
            )
    return time.perf_counter() - started, merge_ids


def unmerge_phase(db: Database, merge_ids: list[uuid.UUID]) -> float:
    started = time.perf_counter()
    for merge_id in merge_ids:
        with db.transaction() as session:
            customers.unmerge(session, NOW, CLI_ACTOR, merge_id)
    return time.perf_counter() - started


def run(argv: list[str]) -> Report:
    options = parse(argv)
    rng = random.Random(options.seed)
    clock = Clock()
    with database(options) as db:
        where = safe_url(str(db.engine.url))
        size = options.batch_size
        note(f"phase 1: {options.people:,} web accounts and their loyalty profiles")
        first = profiles_phase(options, clock)
        profiles_s = timed_batches(db, chunks(first, size))
        if count_profiles(db) != (len(first), 0):
            raise BenchmarkError("phase 1 did not create one profile per observation")
        note(f"phase 2: {options.mix_batches} tracking batches of {size}")
        mix, expected_merges = mix_phase(options, clock, rng)
        mix_s = timed_batches(db, chunks(mix, size))
        mix_merges = count_profiles(db)[1]
        if mix_merges != expected_merges:
            raise BenchmarkError(f"phase 2 made {mix_merges} merges, expected {expected_merges}")
        note("phase 3: tying every loyalty profile to its web account")
        links = merge_phase(options, clock)
        merge_s = timed_batches(db, chunks(links, size))
        all_merged = count_profiles(db)[1]
        if all_merged != len(links):
            raise BenchmarkError(
                f"phase 3 left {all_merged} merged profiles, expected {len(links)}"
            )
        note(f"phase 4: {options.manual} manual merges, then {options.unmerges} unmerges")
        manual_s, merge_ids = manual_phase(db, options, clock)
        unmerge_s = unmerge_phase(db, merge_ids[: options.unmerges])
        dialect = db.dialect
    return _report(
        options,
        dialect,
        where,
        {
            "profiles": (len(first), profiles_s),
            "mix": (len(mix), mix_s),
            "merges": (len(links) - mix_merges, merge_s),
            "manual": (options.manual, manual_s),
            "unmerges": (min(options.unmerges, len(merge_ids)), unmerge_s),
        },
        expected_merges,
    )


def _report(
    options: argparse.Namespace,
    dialect: str,
    where: str,
    phases: dict[str, tuple[int, float]],
    mix_merges: int,
) -> Report:
    def rate(name: str) -> float:
        done, spent = phases[name]
        return done / spent if spent else 0.0

    labels = {
        "profiles": "1. first identify / enrolment (new profiles)",
        "mix": f"2. tracking mix ({mix_merges} merges among them)",
        "merges": "3. observations that each merge two profiles",
        "manual": "4. manual merges (merge_profiles, one per transaction)",
        "unmerges": "5. unmerges (replay of the cluster, one per transaction)",
    }
    rows = [
        (labels[name], count(done), seconds(spent), count(rate(name)))
        for name, (done, spent) in phases.items()
    ]
    figures = {
        "database": dialect,
        "people": options.people,
        "batch_size": options.batch_size,
        "new_profiles_per_s": round(rate("profiles")),
        "identify_ops_per_s": round(rate("mix")),
        "merges_per_s": round(rate("merges")),
        "manual_merges_per_s": round(rate("manual"), 1),
        "unmerges_per_s": round(rate("unmerges"), 1),
        "mix_observations": phases["mix"][0],
        "mix_merges": mix_merges,
    }
    return Report(
        f"Identity graph on {where}: {options.people:,} people, batches of {options.batch_size}",
        figures,
        [Table("Throughput", ("phase", "operations", "seconds", "per second"), rows)],
    )
