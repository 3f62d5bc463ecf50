"""A small shop for order tests: products priced on every channel, stores around Lyon and
in Paris, a warehouse, stock, and a known customer.

The clock reads Saturday 14 March 2026, 09:30 UTC (10:30 in Lyon).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from parcours import catalog, inventory, stores
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders

WEEK = {day: [["10:00", "19:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
STORES = [
    # code, city, postcode, lat, lon, kind, services
    ("LYO-1", "Lyon", "69002", 45.7578, 4.8320, "store",
     ["click_and_collect", "reserve_in_store", "drive", "ship_from_store", "returns"]),
    ("LYO-2", "Villeurbanne", "69100", 45.7719, 4.8902, "store",
     ["click_and_collect", "reserve_in_store", "returns"]),
    ("PAR-1", "Paris", "75001", 48.8606, 2.3376, "store",
     ["click_and_collect", "reserve_in_store", "ship_from_store", "returns"]),
    ("WH-1", "Saran", "45770", 47.9500, 1.8760, "warehouse", []),
]  # fmt: skip
# sku -> (price in cents VAT included on web/app/store, vat rate)
PRICES = {"ROBE-LIN-S": 8990, "ROBE-LIN-M": 8990, "BOUGIE-S": 1990, "BOUGIE-M": 2490}
STOCK = {
    # sku -> {location code: units}
    "ROBE-LIN-S": {"LYO-1": 3, "LYO-2": 1, "PAR-1": 5, "WH-1": 20},
    "ROBE-LIN-M": {"LYO-1": 1, "WH-1": 0},
    "BOUGIE-S": {"LYO-2": 4, "WH-1": 50},
    "BOUGIE-M": {"PAR-1": 2},
}


@dataclass
class Shop:
    db: Database
    clock: ManualClock
    locations: dict[str, uuid.UUID] = field(default_factory=dict)
    customer_id: uuid.UUID | None = None

    def available(self, sku: str, code: str) -> int:
        with self.db.transaction() as session:
            return inventory.available_by_location(session, sku, [self.locations[code]])[
                self.locations[code]
            ]


def build_shop(db: Database, clock: ManualClock) -> Shop:
    builders.catalog_basics(db, clock)
    now = clock.now()
    with db.transaction() as session:
        catalog.add_channel(session, now, {"code": "app", "kind": "app"})
        catalog.add_channel(session, now, {"code": "call_centre", "kind": "call_centre"})
    builders.add_product(db, clock, "ROBE-LIN")
    builders.add_product(
        db, clock, "BOUGIE", category="maison", vat_rate="5.5", name_fr="Bougie parfumée",
        name_en="Scented candle",
    )  # fmt: skip
    with db.transaction() as session:
        for sku, amount in PRICES.items():
            for channel in ("web", "app", "store", "call_centre"):
                catalog.set_price(session, now, sku, channel, amount)
            catalog.set_price(session, now, sku, "marketplace", amount * 100 // 120)
        rows = [
            {
                **builders.store_row(
                    code, city=city, postcode=postcode, lat=lat, lon=lon, kind=kind,
                    services=services, name=f"Maison Lavande {city}",
                ),
                "opening_hours": WEEK if kind == "store" else {},
            }
            for code, city, postcode, lat, lon, kind, services in STORES
        ]  # fmt: skip
        stores.add_stores(session, now, rows)
    shop = Shop(db, clock)
    with db.transaction() as session:
        for code, *_ in STORES:
            shop.locations[code] = stores.get_store_by_code(session, code).id
        moves = [
            inventory.MovementInput(sku, shop.locations[code], "receipt", units)
            for sku, where in STOCK.items()
            for code, units in where.items()
            if units
        ]
        inventory.record_movements(session, now, moves)
    shop.customer_id = builders.add_customer(db, clock)
    return shop


@pytest.fixture
def shop(db: Database, clock: ManualClock) -> Shop:
    """The shop on each backend (SQLite and PostgreSQL)."""
    return build_shop(db, clock)


@pytest.fixture
def sqlite_shop(sqlite_db: Database, clock: ManualClock) -> Shop:
    """The shop on SQLite only, for tests that are not about the database."""
    return build_shop(sqlite_db, clock)
