"""The demo's stock: every location stocked from the catalogue's SKUs, deterministically."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from parcours import inventory
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput
from parcours.core.migrate import upgrade
from parcours.demo.generator import SIZES, DemoRun, generate_stores
from parcours.demo.inventory import generate_inventory
from parcours.inventory.models import StockLevel, StockMovement

SKUS = [f"DEMO-{n:05d}" for n in range(2_000)]
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def demo_stock(tmp_path: Path, name: str) -> tuple[Database, DemoRun, float]:
    db = Database.connect(f"sqlite:///{tmp_path / name}")
    upgrade(db)
    run = DemoRun(db, 7, SIZES["small"], NOW, lambda *_: None)
    generate_stores(run)
    run.skus = SKUS
    with db.transaction() as session:  # what the catalogue step does for its variants
        inventory.track_skus(session, NOW, SKUS)
    started = time.perf_counter()
    generate_inventory(run)
    return db, run, time.perf_counter() - started


@pytest.fixture(scope="module")
def stocked_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Database, DemoRun, float]]:
    """The small demo's stores stocked once, for the tests that only read the stock (or
    see a write refused)."""
    db, run, seconds = demo_stock(tmp_path_factory.mktemp("stocked"), "a.db")
    yield db, run, seconds
    db.dispose()


def snapshot(db: Database) -> list[tuple[str, str, int]]:
    with db.transaction() as session:
        rows = session.execute(
            select(StockLevel.sku, StockLevel.location_id, StockLevel.on_hand).order_by(
                StockLevel.sku, StockLevel.location_id
            )
        )
        return [(sku, str(location), units) for sku, location, units in rows]


def test_every_location_holds_stock_and_some_stores_are_sold_out(
    stocked_demo: tuple[Database, DemoRun, float],
) -> None:
    db, run, seconds = stocked_demo
    assert seconds < 10
    with db.transaction() as session:
        locations = session.scalar(select(func.count(func.distinct(StockLevel.location_id))))
        ledger = session.scalar(select(func.sum(StockMovement.quantity))) or 0
        total = session.scalar(select(func.sum(StockLevel.on_hand))) or 0
        sold_out = session.scalar(
            select(func.count()).select_from(StockLevel).where(StockLevel.on_hand == 0)
        )
        kinds = set(session.scalars(select(StockMovement.kind).distinct()))
        web = inventory.available_to_promise(session, SKUS[:50], "web")
    assert locations == len(run.stores)
    assert ledger == total
    assert sold_out
    assert kinds == {"receipt", "sale"}
    assert all(units >= 0 for units in web.values())
    assert run.counts["stock_levels"] > len(SKUS)


def test_the_same_seed_gives_the_same_stock(
    stocked_demo: tuple[Database, DemoRun, float], tmp_path: Path
) -> None:
    second, _, _ = demo_stock(tmp_path, "b.db")
    assert snapshot(stocked_demo[0]) == snapshot(second)
    second.dispose()


def test_without_catalogue_skus_the_step_stocks_nothing(tmp_path: Path) -> None:
    db = Database.connect(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(db)
    run = DemoRun(db, 7, SIZES["small"], NOW, lambda *_: None)
    generate_stores(run)
    generate_inventory(run)
    assert run.counts["stock_levels"] == 0
    db.dispose()


def test_an_opening_ledger_loads_only_into_empty_locations(
    stocked_demo: tuple[Database, DemoRun, float],
) -> None:
    db, run, _ = stocked_demo
    location = run.stores[0]["id"]
    with pytest.raises(Conflict), db.transaction() as session:
        inventory.load_opening_ledger(
            session, NOW, [inventory.MovementInput(run.skus[0], location, "receipt", 1)]
        )


def test_an_opening_ledger_refuses_skus_the_catalogue_never_declared(
    stocked_demo: tuple[Database, DemoRun, float],
) -> None:
    db, run, _ = stocked_demo
    location = run.stores[0]["id"]
    with pytest.raises(InvalidInput) as caught, db.transaction() as session:
        inventory.load_opening_ledger(
            session, NOW, [inventory.MovementInput("NOT-IN-CATALOGUE", location, "receipt", 1)]
        )
    assert caught.value.errors[0].pointer == "#/0/sku"
