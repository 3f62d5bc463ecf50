"""No oversell, ever: many checkouts racing for the last units, on a real database."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from parcours import inventory
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict
from tests import builders

SKU = "LAST-UNITS"


def test_twenty_checkouts_racing_for_five_units_get_exactly_five(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    start = threading.Barrier(20)

    def checkout(_: int) -> int | None:
        """None when granted, else the availability the refusal reported."""
        start.wait()
        try:
            with db.transaction() as session:
                inventory.reserve(session, clock.now(), SKU, lyon, 1)
        except Conflict as refused:
            return int(refused.extensions["available"])
        return None

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(checkout, range(20)))
    assert outcomes.count(None) == 5
    assert set(outcomes) == {None, 0}
    with db.transaction() as session:
        assert inventory.available_by_location(session, SKU) == {lyon: 0}


def test_sales_and_reservations_racing_never_take_reserved_units(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 6)
    start = threading.Barrier(12)

    def act(index: int) -> str | None:
        start.wait()
        try:
            with db.transaction() as session:
                if index % 2:
                    inventory.reserve(session, clock.now(), SKU, lyon, 1)
                else:
                    inventory.record_movements(
                        session, clock.now(), [inventory.MovementInput(SKU, lyon, "sale", 1)]
                    )
        except Conflict:
            return None
        return "reserve" if index % 2 else "sale"

    with ThreadPoolExecutor(max_workers=12) as pool:
        done = [kind for kind in pool.map(act, range(12)) if kind]
    assert len(done) == 6
    with db.transaction() as session:
        assert inventory.available_by_location(session, SKU) == {lyon: 0}
