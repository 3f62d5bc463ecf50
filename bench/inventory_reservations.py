"""Concurrent reservation attempts on a few units: exactly that many succeed, none oversold.

Threads race through the real service (`inventory.reserve`, one conditional UPDATE per
attempt) on a real database: a SQLite file by default, PostgreSQL with
`--database-url` or with `--postgres` (a throwaway server started like the test suite's).
Attempts per second count every answer, granted or refused.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from bench import BenchmarkError
from bench.report import Report, Table, count, note, seconds, verdict
from parcours import inventory, stores
from parcours.core.db import Database, safe_url
from parcours.core.errors import Conflict
from parcours.core.migrate import upgrade

DESCRIPTION = "1,000 concurrent reservation attempts on 100 units: exactly 100 granted, no oversell"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench inventory_reservations", description=DESCRIPTION
    )
    parser.add_argument("--attempts", type=int, default=1_000, help="attempts (default: 1000)")
    parser.add_argument("--units", type=int, default=100, help="units in stock (default: 100)")
    parser.add_argument("--threads", type=int, default=32, help="concurrent threads (default: 32)")
    parser.add_argument("--database-url", help="run on this database (it is migrated first)")
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL server and use it"
    )
    options = parser.parse_args(argv)
    if options.attempts < 1 or options.units < 1 or options.threads < 1:
        parser.error("--attempts, --units and --threads must be at least 1")
    if options.database_url and options.postgres:
        parser.error("give --database-url or --postgres, not both")
    return options


@contextmanager
def database(options: argparse.Namespace) -> Iterator[Database]:
    """The database to race on, migrated; temporary unless a URL was given."""
    if options.database_url:
        db = Database.connect(options.database_url)
        try:
            upgrade(db)
            yield db
        finally:
            db.dispose()
        return
    if options.postgres:
        with _throwaway_postgres() as url:
            db = Database.connect(url)
            try:
                upgrade(db)
                yield db
            finally:
                db.dispose()
        return
    with TemporaryDirectory(prefix="parcours-bench-") as folder:
        db = Database.connect(f"sqlite:///{Path(folder) / 'bench.db'}")
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


def _stock(db: Database, now: datetime, units: int) -> tuple[str, uuid.UUID]:
    code = f"BENCH-{uuid.uuid4().hex[:8]}"
    sku = f"BENCH-{uuid.uuid4().hex[:12]}"
    row = {
        "code": code,
        "name": "Benchmark store",
        "address": "1 rue du Banc",
        "postcode": "75001",
        "city": "Paris",
        "lat": 48.86,
        "lon": 2.34,
    }
    with db.transaction() as session:
        stores.add_stores(session, now, [row])
        location = stores.get_store_by_code(session, code).id
        inventory.track_skus(session, now, [sku])
        inventory.record_movements(
            session, now, [inventory.MovementInput(sku, location, "receipt", units)]
        )
    return sku, location


def race(db: Database, options: argparse.Namespace) -> dict[str, float | int]:
    now = datetime.now(UTC)
    sku, location = _stock(db, now, options.units)
    start = threading.Barrier(min(options.threads, options.attempts))

    def attempt(index: int) -> str:
        if index < start.parties:
            start.wait()
        try:
            with db.transaction() as session:
                inventory.reserve(session, now, sku, location, 1)
        except Conflict:
            return "conflict"
        except Exception as exc:  # counted and reported: a benchmark must not hide failures
            note(f"attempt {index} failed: {type(exc).__name__}: {exc}")
            return "error"
        return "granted"

    note(f"{options.attempts} attempts on {options.units} units with {options.threads} threads")
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=options.threads) as pool:
        outcomes = Counter(pool.map(attempt, range(options.attempts)))
    elapsed = time.perf_counter() - began
    with db.transaction() as session:
        held = inventory.available_by_location(session, sku, [location])[location]
        [level] = inventory.stock_for_sku(session, sku)
        reserved = level.reserved
    return {
        "granted": outcomes["granted"],
        "conflicts": outcomes["conflict"],
        "errors": outcomes["error"],
        "reserved_units": reserved,
        "available_after": held,
        "seconds": elapsed,
    }


def run(argv: list[str]) -> Report:
    options = parse(argv)
    with database(options) as db:
        where = db.dialect
        note(f"database: {safe_url(str(db.engine.url))}")
        result = race(db, options)
    granted = int(result["granted"])
    oversold = max(0, granted - options.units)
    exact = (
        granted == min(options.units, options.attempts)
        and result["reserved_units"] == granted
        and result["errors"] == 0
    )
    attempts_per_s = options.attempts / float(result["seconds"])
    figures: dict[str, float | int | str | bool] = {
        "database": where,
        "attempts": options.attempts,
        "units": options.units,
        "threads": options.threads,
        "granted": granted,
        "conflicts": int(result["conflicts"]),
        "errors": int(result["errors"]),
        "oversold": oversold,
        "available_after": int(result["available_after"]),
        "seconds": round(float(result["seconds"]), 3),
        "attempts_per_s": round(attempts_per_s),
        "granted_per_s": round(granted / float(result["seconds"])),
        "exactly_units_granted": exact,
    }
    rows = [
        ("attempts", count(options.attempts)),
        ("granted", count(granted)),
        ("conflicts (409)", count(int(result["conflicts"]))),
        ("errors", count(int(result["errors"]))),
        ("oversold", count(oversold)),
        ("seconds", seconds(float(result["seconds"]))),
        ("attempts/s", count(attempts_per_s)),
    ]
    checks = [
        (f"exactly {min(options.units, options.attempts)} granted", str(granted), verdict(exact)),
        ("zero oversell", str(oversold), verdict(oversold == 0)),
    ]
    title = (
        f"Reservations racing on {where}: {options.attempts:,} attempts, {options.units:,} units, "
        f"{options.threads} threads"
    )
    return Report(
        title,
        figures,
        [Table("Race", ("what", "value"), rows), Table("Verdict", ("what", "value", ""), checks)],
    )
