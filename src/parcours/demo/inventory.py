"""Demo stock: every warehouse holds the whole range, each store a part of it; receipts
then three years of sales, some SKUs sold out in some stores; channel allocation rules."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from parcours import inventory

if TYPE_CHECKING:
    from parcours.demo.generator import DemoRun

# How much of the range a store carries, by demo size (SKUs per store at most).
STORE_RANGE = {"tiny": 120, "small": 400, "medium": 1_500, "large": 3_000}
SOLD_OUT_SHARE = 0.08
CHANNEL_RULES = (
    inventory.ChannelRule("web", store_shown_above=2),
    inventory.ChannelRule("app", store_shown_above=2),
    inventory.ChannelRule("marketplace", include_stores=False),
    inventory.ChannelRule("store", include_warehouses=False),
)


def _history(
    run: DemoRun, sku: str, location: uuid.UUID, warehouse: bool
) -> list[inventory.MovementInput]:
    """A receipt, sales, sometimes a restock; about 8% of store lines end sold out."""
    rng = run.rng
    received_at = run.history_start + timedelta(days=rng.randrange(0, 365))
    units = rng.randint(40, 240) if warehouse else rng.randint(3, 24)
    moves = [
        inventory.MovementInput(
            sku,
            location,
            "receipt",
            units,
            reference=f"PO-{rng.randrange(10**6):06d}",
            occurred_at=received_at,
        )
    ]
    on_hand = units
    sold_out = not warehouse and rng.random() < SOLD_OUT_SHARE
    sales = rng.randint(1, 4)
    span = (run.now - received_at).total_seconds()
    for index in range(sales):
        at = received_at + timedelta(seconds=span * (index + rng.random()) / (sales + 1))
        take = on_hand if sold_out and index == sales - 1 else rng.randint(0, on_hand // 2)
        if take <= 0:
            continue
        moves.append(inventory.MovementInput(sku, location, "sale", take, occurred_at=at))
        on_hand -= take
    if not sold_out and on_hand < 3:
        restock = rng.randint(5, 20)
        moves.append(
            inventory.MovementInput(
                sku, location, "receipt", restock, occurred_at=run.now - timedelta(days=2)
            )
        )
    return moves


def generate_inventory(run: DemoRun) -> None:
    """Stock for the catalogue's SKUs (`run.skus`) in every store and warehouse."""
    skus: list[str] = list(getattr(run, "skus", []))
    movements: list[inventory.MovementInput] = []
    carried = min(len(skus), STORE_RANGE[run.size_name])
    locations: list[tuple[uuid.UUID, bool]] = [
        (location["id"], location["kind"] == "warehouse") for location in run.stores
    ]
    for index, (location, warehouse) in enumerate(locations):
        assortment = skus if warehouse else run.rng.sample(skus, carried)
        for sku in assortment:
            movements.extend(_history(run, sku, location, warehouse))
        run.progress("inventory", index + 1, len(locations))
    now: datetime = run.now
    warehouses = {location for location, warehouse in locations if warehouse}
    with run.db.transaction() as session:
        loaded = inventory.load_opening_ledger(
            session,
            now,
            movements,
            id_at=run.id_at,
            safety_stock=lambda _sku, location: 2 if location in warehouses else 0,
        )
        for rule in CHANNEL_RULES:
            inventory.set_channel_rule(session, now, rule)
    with run.db.transaction() as session:
        run.counts["stock_levels"] = inventory.count_stock_levels(session)
    run.counts["stock_movements"] = loaded
