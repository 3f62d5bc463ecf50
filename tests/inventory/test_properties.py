"""Under any sequence of receipts, sales, adjustments, reservations, releases,
consumptions and expiries, the ledger, the levels and availability agree with a model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from parcours import inventory
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict
from parcours.inventory.models import Reservation, StockLevel, StockMovement
from tests import builders

units = st.integers(min_value=1, max_value=5)


@dataclass
class Held:
    id: uuid.UUID
    location: int
    quantity: int
    expires_at: datetime
    status: str = "active"


class StockMachine(RuleBasedStateMachine):
    """One fresh SKU per run, two locations; the model is plain integers."""

    reservations = Bundle("reservations")

    def __init__(self, db: Database, clock: ManualClock, locations: list[uuid.UUID]) -> None:
        super().__init__()
        self.db, self.clock, self.locations = db, clock, locations
        self.sku = f"P-{uuid.uuid4().hex[:12]}"
        with db.transaction() as session:  # the catalogue declares it: stock may move
            inventory.track_skus(session, clock.now(), [self.sku])
        self.on_hand = [0, 0]
        self.safety = [0, 0]
        self.held: list[Held] = []

    def reserved(self, location: int) -> int:
        return sum(h.quantity for h in self.held if h.location == location and h.status == "active")

    def available(self, location: int) -> int:
        return max(0, self.on_hand[location] - self.reserved(location) - self.safety[location])

    def record(self, location: int, kind: str, quantity: int) -> bool:
        try:
            with self.db.transaction() as session:
                inventory.record_movements(
                    session,
                    self.clock.now(),
                    [inventory.MovementInput(self.sku, self.locations[location], kind, quantity)],
                )
        except Conflict:
            return False
        return True

    @rule(location=st.integers(0, 1), quantity=units)
    def receive(self, location: int, quantity: int) -> None:
        assert self.record(location, "receipt", quantity)
        self.on_hand[location] += quantity

    @rule(location=st.integers(0, 1), quantity=units)
    def sell(self, location: int, quantity: int) -> None:
        allowed = self.on_hand[location] - self.reserved(location) >= quantity
        assert self.record(location, "sale", quantity) == allowed
        if allowed:
            self.on_hand[location] -= quantity

    @rule(location=st.integers(0, 1), quantity=st.integers(-5, 5).filter(bool))
    def adjust(self, location: int, quantity: int) -> None:
        allowed = self.on_hand[location] + quantity >= 0
        assert self.record(location, "adjustment", quantity) == allowed
        if allowed:
            self.on_hand[location] += quantity

    @rule(location=st.integers(0, 1), units=st.integers(0, 3))
    def set_safety_stock(self, location: int, units: int) -> None:
        with self.db.transaction() as session:
            inventory.set_stock_policy(
                session, self.clock.now(), self.sku, self.locations[location], safety_stock=units
            )
        self.safety[location] = units

    @rule(
        target=reservations,
        location=st.integers(0, 1),
        quantity=units,
        kind=st.sampled_from(["cart", "click_and_collect"]),
    )
    def reserve(self, location: int, quantity: int, kind: str) -> Held | None:
        expected = self.available(location) >= quantity
        try:
            with self.db.transaction() as session:
                made = inventory.reserve(
                    session, self.clock.now(), self.sku, self.locations[location], quantity, kind
                ).reservation
        except Conflict as refused:
            left = refused.extensions["available"]
        else:
            left = None
        if left is not None:
            assert not expected
            assert left == self.available(location)
            return None
        assert expected
        held = Held(made.id, location, quantity, made.expires_at)
        self.held.append(held)
        assert self.reserved(location) <= self.on_hand[location] - self.safety[location]
        return held

    @rule(held=consumes(reservations))
    def release(self, held: Held | None) -> None:
        if held is None:
            return
        live = held.status == "active" and held.expires_at > self.clock.now()
        try:
            with self.db.transaction() as session:
                inventory.release(session, self.clock.now(), held.id)
        except Conflict:
            assert not live
            assert held.status != "released"
            return
        assert live or held.status == "released"
        held.status = "released"

    @rule(held=consumes(reservations))
    def consume(self, held: Held | None) -> None:
        if held is None:
            return
        live = held.status == "active" and held.expires_at > self.clock.now()
        try:
            with self.db.transaction() as session:
                inventory.consume(session, self.clock.now(), held.id)
        except Conflict:
            # Refused when it ended otherwise, or when a count took the units away.
            assert not live or self.on_hand[held.location] < held.quantity
            return
        assert live
        held.status = "consumed"
        self.on_hand[held.location] -= held.quantity

    @rule(minutes=st.integers(0, 90))
    def time_passes_and_expiry_runs(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        with self.db.transaction() as session:
            inventory.release_expired_reservations(session, self.clock.now(), 1000)
        for held in self.held:
            if held.status == "active" and held.expires_at <= self.clock.now():
                held.status = "expired"

    @invariant()
    def ledger_levels_and_availability_agree(self) -> None:
        with self.db.transaction() as session:
            ledger = dict(
                session.execute(
                    select(StockMovement.location_id, func.sum(StockMovement.quantity))
                    .where(StockMovement.sku == self.sku)
                    .group_by(StockMovement.location_id)
                ).all()
            )
            levels = {
                lvl.location_id: lvl
                for lvl in session.scalars(select(StockLevel).where(StockLevel.sku == self.sku))
            }
            active = dict(
                session.execute(
                    select(Reservation.location_id, func.sum(Reservation.quantity))
                    .where(Reservation.sku == self.sku, Reservation.status == "active")
                    .group_by(Reservation.location_id)
                ).all()
            )
            atp = inventory.available_by_location(session, self.sku, self.locations)
        for index, location in enumerate(self.locations):
            on_hand = levels[location].on_hand if location in levels else 0
            reserved = levels[location].reserved if location in levels else 0
            assert on_hand == ledger.get(location, 0) == self.on_hand[index]
            assert reserved == active.get(location, 0) == self.reserved(index)
            assert reserved >= 0
            assert atp[location] == self.available(index)


def test_ledger_levels_and_availability_stay_consistent(db: Database, clock: ManualClock) -> None:
    locations = [builders.location(db, clock, "LYO-1"), builders.location(db, clock, "PAR-1")]
    run_state_machine_as_test(
        lambda: StockMachine(db, clock, locations),
        settings=settings(max_examples=25, stateful_step_count=25, deadline=None),
    )
