"""A small omnichannel shop whose KPIs are worked out by hand in the tests: six orders
(one cancelled) on web and in store, the web and app events around them, and door
counts of two stores. Built through the real paths: `orders.load_history`, tracking
ingestion, the identity graph and footfall recording."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from parcours import orders, stores
from parcours.analytics import engines
from parcours.analytics.export import export_parquet
from parcours.analytics.footfall import FootfallCount, record_footfall
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.customers import ingest_messages
from tests import builders

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


@contextmanager
def engine_on(db: Database, name: str, tmp_path: Path) -> Iterator[engines.Engine]:
    """An engine on `db`: `live` on the database itself, the others on a Parquet export
    of it written under `tmp_path`."""
    if name == "live":
        with engines.open_engine("live", database=db) as engine:
            yield engine
        return
    export_parquet(db, tmp_path / "parquet", now=NOW)
    with engines.open_engine(name, parquet=tmp_path / "parquet") as engine:
        yield engine


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Shop:
    lea: uuid.UUID  # user id u1: web and store buyer (omnichannel)
    marc: uuid.UUID  # user id u2: web only


def line(sku: str, category: str, qty: int, price: int, **extra: Any) -> orders.PastLine:
    return orders.PastLine(
        sku=sku, name=sku, quantity=qty, unit_price=price, category=category, **extra
    )


def build(db: Database) -> Shop:
    clock = ManualClock(NOW)
    for code, kind in (("LYO-1", "store"), ("PAR-1", "store"), ("WH-1", "warehouse")):
        builders.add_store(db, clock, code, kind=kind)
    lea = builders.known_person(db, clock, user_id="u1")
    marc = builders.known_person(db, clock, user_id="u2")
    with db.transaction() as session:
        ids = stores.store_ids_by_code(session, ["LYO-1", "PAR-1", "WH-1"])

    def past(
        ref: str,
        channel: str,
        mode: str,
        when: datetime,
        where: str,
        lines: list[orders.PastLine],
        **extra: Any,
    ) -> orders.PastOrder:
        return orders.PastOrder(
            source="test",
            external_ref=ref,
            channel=channel,
            mode=mode,
            placed_at=when,
            location_id=ids[where],
            lines=lines,
            **extra,
        )

    history = [
        past(
            "O1",
            "web",
            "click_and_collect",
            at(2, 10),
            "LYO-1",
            [line("ROBE-S", "Robes", 1, 5000), line("BOUGIE", "Maison", 2, 1000)],
            customer_id=lea,
        ),
        past(
            "O2",
            "store",
            "carry_out",
            at(3, 15),
            "LYO-1",
            [line("BOUGIE", "Maison", 1, 1000, returned=1)],
            customer_id=lea,
            store_id=ids["LYO-1"],
        ),
        past(
            "O3",
            "web",
            "home_delivery",
            at(2, 11),
            "WH-1",
            [line("ROBE-S", "Robes", 1, 5000)],
            customer_id=marc,
            delivery_fee=500,
        ),
        past(
            "O4",
            "web",
            "drive",
            at(10, 9),
            "PAR-1",
            [line("SAC", "Accessoires", 1, 8000, discount=1000)],
            customer_id=marc,
        ),
        past(
            "O5",
            "store",
            "carry_out",
            at(10, 12),
            "PAR-1",
            [line("BOUGIE", "Maison", 3, 1000)],
            store_id=ids["PAR-1"],
        ),
        past(
            "O6",
            "web",
            "home_delivery",
            at(10, 13),
            "WH-1",
            [line("ROBE-S", "Robes", 1, 5000)],
            customer_id=lea,
            cancelled=True,
        ),
    ]
    with db.transaction() as session:
        orders.load_history(session, history)
    with db.transaction() as session:
        result = ingest_messages(session, NOW, _messages())
        assert not result.rejected, result.rejected
    with db.transaction() as session:
        record_footfall(
            session,
            NOW,
            [
                FootfallCount("LYO-1", at(2, 10), 10),
                FootfallCount("LYO-1", at(3, 15), 40),
                FootfallCount("PAR-1", at(10, 12), 25),
            ],
        )
    return Shop(lea, marc)


def _messages() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(
        kind: str, when: datetime, ids: dict[str, str], channel: str = "web", **body: Any
    ) -> None:
        out.append(
            {
                "type": kind,
                "messageId": f"kpi-{len(out)}",
                "timestamp": when.isoformat().replace("+00:00", "Z"),
                "context": {"channel": channel},
                **ids,
                **body,
            }
        )

    lea, marc, anon = {"userId": "u1"}, {"userId": "u2"}, {"anonymousId": "anon-9"}
    robe, sac = {"sku": "ROBE-S", "category": "Robes"}, {"sku": "SAC", "category": "Accessoires"}
    # Léa's first session converts; her second is a bounce.
    add("identify", at(2, 9, 39), lea, traits={"firstName": "Léa"})
    add("page", at(2, 9, 40), lea, name="Home")
    add("track", at(2, 9, 45), lea, event="Product Viewed", properties=robe)
    add("track", at(2, 9, 50), lea, event="Product Added", properties=robe)
    add(
        "track",
        at(2, 10),
        lea,
        event="Order Completed",
        properties={"order_id": "O1", "revenue": 70.0},
    )
    add("page", at(2, 12), lea, name="Home")
    # Marc leaves a cart on the web, views the bag again in the app a week later.
    add("track", at(2, 10, 30), marc, event="Product Viewed", properties=sac)
    add("track", at(2, 10, 40), marc, event="Product Added", properties=sac)
    add("screen", at(10, 8, 30), marc, channel="app", name="Home")
    add("track", at(10, 8, 35), marc, channel="app", event="Product Viewed", properties=sac)
    # A visitor never identified bounces.
    add("page", at(3, 8), anon, name="Home")
    return out
