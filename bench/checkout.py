"""Checkouts through the API, SQL statements per checkout, and a race on scarce stock.

1. **Throughput**: carts of three lines are checked out one after the other with
   `POST /v1/checkout` (home delivery, an `Idempotency-Key` each) on the real app driven
   in-process over ASGI; checkouts/s count the checkout requests only (carts are made
   beforehand). Every SQL statement sent meanwhile is counted, per request (API key,
   idempotency record, the checkout) and for the checkout alone, called as a service.
   Both include the order's outbox event; the Segment event of the tracking log and the
   buyer's identity resolution happen afterwards, in the `orders.tracking` consumer.
2. **Race**: `--race` checkouts (threads calling `checkout.place_order`, each in its own
   transaction) compete for `--units` units held at one warehouse: exactly that many
   orders, zero oversell, every loser a `Conflict` (409) naming the SKU.

SQLite file by default; `--postgres` starts a throwaway server like the test suite's.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from sqlalchemy import event, func, select

from bench import BenchmarkError
from bench.report import Report, Table, count, note, seconds, verdict
from parcours import catalog, inventory, stores
from parcours.app import create_app
from parcours.core import auth
from parcours.core.audit import CLI_ACTOR
from parcours.core.db import Database, safe_url
from parcours.core.errors import Conflict
from parcours.core.migrate import upgrade
from parcours.core.settings import load_settings
from parcours.orders import carts, checkout
from parcours.orders.models import OrderLine

DESCRIPTION = "Checkouts/s through the API, SQL statements per checkout, 1,000 racing checkouts"
SKUS = ("BENCH-ROBE-S", "BENCH-ROBE-M", "BENCH-ROBE-L")
SCARCE = "BENCH-ROBE-XL"
ADDRESS = {"name": "Léa Martin", "line1": "3 rue Mercière", "postcode": "69002", "city": "Lyon"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench checkout", description=DESCRIPTION)
    parser.add_argument("--checkouts", type=int, default=300, help="API checkouts (default 300)")
    parser.add_argument("--race", type=int, default=1_000, help="racing checkouts (default 1000)")
    parser.add_argument("--units", type=int, default=100, help="scarce units (default 100)")
    parser.add_argument("--threads", type=int, default=32, help="race threads (default 32)")
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL server and use it"
    )
    options = parser.parse_args(argv)
    if min(options.checkouts, options.race, options.units, options.threads) < 1:
        parser.error("--checkouts, --race, --units and --threads must be at least 1")
    return options


@contextmanager
def database(options: argparse.Namespace, folder: Path) -> Iterator[Database]:
    if options.postgres:
        try:
            from tests.pg_server import PostgresServer
        except ImportError as exc:  # run from outside the repository
            raise BenchmarkError("--postgres needs the repository's tests/pg_server.py") from exc
        note("starting a throwaway PostgreSQL server")
        server = PostgresServer.start()
        try:
            db = Database.connect(server.url("postgres"))
            try:
                upgrade(db)
                yield db
            finally:
                db.dispose()
        finally:
            server.stop()
        return
    db = Database.connect(f"sqlite:///{folder / 'bench.db'}")
    try:
        upgrade(db)
        yield db
    finally:
        db.dispose()


@dataclass
class Shop:
    warehouse: uuid.UUID
    key: str


def build_shop(db: Database, now: datetime, units: int, plenty: int) -> Shop:
    """A web channel, a four-size dress, a warehouse with plenty of three sizes and
    `units` of the fourth, and an API key."""
    with db.transaction() as session:
        catalog.add_brand(session, "lavande", "Maison Lavande")
        catalog.add_category(session, "robes", "Robes", "Dresses")
        catalog.add_channel(session, now, {"code": "web", "kind": "web", "locales": ["fr"]})
        catalog.create_product(
            session,
            now,
            {
                "code": "BENCH-ROBE",
                "brand": "lavande",
                "category": "robes",
                "vat_rate": "20",
                "name_fr": "Robe de banc",
                "variants": [{"sku": sku} for sku in (*SKUS, SCARCE)],
            },
        )
        for sku in (*SKUS, SCARCE):
            catalog.set_price(session, now, sku, "web", 4990)
        stores.add_stores(
            session,
            now,
            [
                {
                    "code": "WH-BENCH",
                    "name": "Entrepôt",
                    "kind": "warehouse",
                    "address": "1 rue du Dépôt",
                    "postcode": "45770",
                    "city": "Saran",
                    "lat": 47.95,
                    "lon": 1.876,
                }
            ],
        )
        warehouse = stores.get_store_by_code(session, "WH-BENCH").id
        moves = [inventory.MovementInput(sku, warehouse, "receipt", plenty) for sku in SKUS]
        moves.append(inventory.MovementInput(SCARCE, warehouse, "receipt", units))
        inventory.record_movements(session, now, moves)
        key = auth.create_api_key(
            session, now, CLI_ACTOR, "bench", "secret", ["commerce:read", "commerce:write"]
        ).secret
    return Shop(warehouse, key)


class StatementCounter:
    """Counts the statements sent to the database while inside."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.total = 0

    def _count(self, *_: Any) -> None:
        self.total += 1

    def __enter__(self) -> StatementCounter:
        event.listen(self.db.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._count)


async def _api_checkouts(db: Database, shop: Shop, folder: Path, n: int) -> tuple[float, int, int]:
    """(seconds, checkouts, statements) of `n` API checkouts."""
    settings = load_settings(
        database_url=db.engine.url.render_as_string(hide_password=False),
        data_dir=folder,
        log_level="WARNING",
    )
    app = create_app(settings, db)
    headers = {"Authorization": f"Bearer {shop.key}"}
    lines = [{"sku": sku, "quantity": 1 + i % 2} for i, sku in enumerate(SKUS)]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        cart_ids = []
        for i in range(n + 1):  # one untimed warm-up checkout first
            answer = await client.post(
                "/v1/carts",
                json={"channel": "web", "anonymous_id": f"bench-{i}", "lines": lines},
                headers=headers,
            )
            if answer.status_code != 201:
                raise BenchmarkError(f"POST /v1/carts answered {answer.status_code}: {answer.text}")
            cart_ids.append(answer.json()["id"])

        async def place(cart_id: str, i: int) -> None:
            body = {
                "cart_id": cart_id,
                "mode": "home_delivery",
                "address": ADDRESS,
                "email": f"client{i}@example.com",
            }
            answer = await client.post(
                "/v1/checkout", json=body, headers={**headers, "Idempotency-Key": f"k-{i}"}
            )
            if answer.status_code != 201:
                raise BenchmarkError(f"/v1/checkout answered {answer.status_code}: {answer.text}")

        await place(cart_ids[0], 0)
        with StatementCounter(db) as counter:
            started = time.perf_counter()
            for i, cart_id in enumerate(cart_ids[1:], start=1):
                await place(cart_id, i)
            elapsed = time.perf_counter() - started
    return elapsed, n, counter.total


def _service_statements(db: Database, now: datetime) -> int:
    """Statements of one service-level checkout (no HTTP, no API key, no idempotency)."""
    with db.transaction() as session:
        cart = carts.create_cart(session, now, "web", anonymous_id="bench-service")
        for sku in SKUS:
            carts.set_line(session, now, cart.id, sku, 1)
        cart_id = cart.id
    request = checkout.CheckoutRequest(
        cart_id, "home_delivery", address=ADDRESS, email="service@example.com"
    )
    with StatementCounter(db) as counter, db.transaction() as session:
        checkout.place_order(session, now, request, "bench")
    return counter.total


def race(db: Database, options: argparse.Namespace, now: datetime) -> dict[str, Any]:
    cart_ids = []
    with db.transaction() as session:
        for i in range(options.race):
            cart = carts.create_cart(session, now, "web", anonymous_id=f"racer-{i}")
            carts.set_line(session, now, cart.id, SCARCE, 1)
            cart_ids.append(cart.id)
    start = threading.Barrier(min(options.threads, options.race))
    wrong_refusals = Counter[str]()

    def attempt(index: int) -> str:
        if index < start.parties:
            start.wait()
        request = checkout.CheckoutRequest(
            cart_ids[index], "home_delivery", address=ADDRESS, email=f"r{index}@example.com"
        )
        try:
            with db.transaction() as session:
                checkout.place_order(session, now, request, "bench")
        except Conflict as refused:
            if refused.extensions.get("sku") != SCARCE:
                wrong_refusals[refused.detail[:80]] += 1
            return "conflict"
        except Exception as exc:  # counted and reported: a benchmark must not hide failures
            note(f"attempt {index} failed: {type(exc).__name__}: {exc}")
            return "error"
        return "placed"

    note(f"{options.race} checkouts racing for {options.units} units, {options.threads} threads")
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=options.threads) as pool:
        outcomes = Counter(pool.map(attempt, range(options.race)))
    elapsed = time.perf_counter() - began
    with db.transaction() as session:
        sold = session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(OrderLine.sku == SCARCE)
        )
        [level] = inventory.stock_for_sku(session, SCARCE)
    return {
        "placed": outcomes["placed"],
        "conflicts": outcomes["conflict"],
        "errors": outcomes["error"],
        "unclear_refusals": sum(wrong_refusals.values()),
        "sold": int(sold or 0),
        "reserved": level.reserved,
        "seconds": elapsed,
    }


def run(argv: list[str]) -> Report:
    options = parse(argv)
    now = datetime.now(UTC) - timedelta(seconds=5)
    with (
        TemporaryDirectory(prefix="parcours-bench-") as folder,
        database(options, Path(folder)) as db,
    ):
        where = db.dialect
        note(f"database: {safe_url(str(db.engine.url))}")
        shop = build_shop(db, now, options.units, plenty=10 * (options.checkouts + 10))
        service_total = _service_statements(db, now)
        note(f"{options.checkouts} API checkouts")
        elapsed, n, total = asyncio.run(_api_checkouts(db, shop, Path(folder), options.checkouts))
        raced = race(db, options, now)
    return _report(options, where, (elapsed, n, total), service_total, raced)


def _report(
    options: argparse.Namespace,
    where: str,
    api: tuple[float, int, int],
    own_service: int,
    raced: dict[str, Any],
) -> Report:
    elapsed, n, total = api
    per_checkout = total / n
    expected = min(options.units, options.race)
    oversold = max(0, raced["sold"] - options.units)
    clear = raced["errors"] == 0 and raced["unclear_refusals"] == 0
    exact = raced["placed"] == expected and raced["sold"] == expected == raced["reserved"]
    figures: dict[str, float | int | str | bool] = {
        "database": where,
        "checkouts": n,
        "seconds": round(elapsed, 3),
        "checkouts_per_s": round(n / elapsed, 1),
        "statements_per_api_checkout": round(per_checkout, 1),
        "statements_per_service_checkout": own_service,
        "race_attempts": options.race,
        "race_units": options.units,
        "race_threads": options.threads,
        "race_placed": raced["placed"],
        "race_conflicts": raced["conflicts"],
        "race_errors": raced["errors"],
        "race_oversold": oversold,
        "race_seconds": round(raced["seconds"], 3),
        "race_checkouts_per_s": round(options.race / raced["seconds"], 1),
        "every_loser_a_clear_409": clear,
        "exactly_units_sold": exact,
    }
    throughput = [
        ("checkouts", count(n)),
        ("seconds", seconds(elapsed)),
        ("checkouts/s", f"{n / elapsed:,.1f}"),
        ("SQL statements per API checkout (key, idempotency, checkout)", f"{per_checkout:.1f}"),
        ("SQL statements per checkout (pricing to outbox event)", str(own_service)),
    ]
    race_rows = [
        ("attempts", count(options.race)),
        ("placed", count(raced["placed"])),
        ("409 conflicts", count(raced["conflicts"])),
        ("errors", count(raced["errors"])),
        ("units sold", count(raced["sold"])),
        ("seconds", seconds(raced["seconds"])),
    ]
    checks = [
        ("checkout statements <= 25", str(own_service), verdict(own_service <= 25)),
        (f"exactly {expected} orders", str(raced["placed"]), verdict(exact)),
        ("zero oversell", str(oversold), verdict(oversold == 0)),
        ("every loser a 409 naming the SKU", str(raced["conflicts"]), verdict(clear)),
    ]
    title = (
        f"Checkout on {where}: {n:,} API checkouts, {options.race:,} racing for "
        f"{options.units:,} units"
    )
    return Report(
        title,
        figures,
        [
            Table("Throughput (in-process ASGI)", ("what", "value"), throughput),
            Table("Race", ("what", "value"), race_rows),
            Table("Verdict", ("what", "value", ""), checks),
        ],
    )
