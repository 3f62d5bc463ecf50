"""The stock ledger, reservations and availability as the service layer promises them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from parcours import inventory
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput, NotFound
from parcours.core.models import OutboxEvent
from parcours.inventory.models import Reservation, StockLevel, StockMovement
from parcours.inventory.service import stock_for_sku
from tests import builders

SKU = "LAV-001-M"
Move = inventory.MovementInput


def level(db: Database, sku: str, location_id: uuid.UUID) -> tuple[int, int]:
    with db.transaction() as session:
        row = session.scalar(
            select(StockLevel).where(StockLevel.sku == sku, StockLevel.location_id == location_id)
        )
        return (row.on_hand, row.reserved) if row else (0, 0)


def ledger_sum(db: Database, sku: str, location_id: uuid.UUID) -> int:
    with db.transaction() as session:
        return (
            session.scalar(
                select(func.coalesce(func.sum(StockMovement.quantity), 0)).where(
                    StockMovement.sku == sku, StockMovement.location_id == location_id
                )
            )
            or 0
        )


def events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.transaction() as session:
        return [
            (e.type, e.payload)
            for e in session.scalars(select(OutboxEvent).order_by(OutboxEvent.position))
        ]


def reserve(db: Database, clock: ManualClock, location_id: uuid.UUID, qty: int, **kw: Any) -> Any:
    with db.transaction() as session:
        return inventory.reserve(session, clock.now(), kw.pop("sku", SKU), location_id, qty, **kw)


@contextmanager
def counted_statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE", "COMMIT")):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


# ------------------------------------------------------------------ movements


def test_receipts_and_sales_move_on_hand_and_stay_in_the_ledger(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, SKU)
    with db.transaction() as session:
        inventory.record_movements(
            session,
            clock.now(),
            [Move(SKU, lyon, "receipt", 10, reference="PO-1"), Move(SKU, lyon, "sale", 3)],
        )
    with db.transaction() as session:
        inventory.record_movements(session, clock.now(), [Move(SKU, lyon, "return", 1)])
    assert level(db, SKU, lyon) == (8, 0)
    assert ledger_sum(db, SKU, lyon) == 8
    with db.transaction() as session:
        kinds = [
            (m.kind, m.quantity)
            for m in session.scalars(select(StockMovement).order_by(StockMovement.id))
        ]
    assert kinds == [("receipt", 10), ("sale", -3), ("return", 1)]


def test_adjustments_and_counts_are_signed(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    with db.transaction() as session:
        inventory.record_movements(
            session,
            clock.now(),
            [Move(SKU, lyon, "adjustment", -2, reason="damaged"), Move(SKU, lyon, "count", 1)],
        )
    assert level(db, SKU, lyon) == (4, 0)


@pytest.mark.parametrize(
    ("kind", "quantity", "pointer"),
    [
        ("receipt", -3, "#/movements/0/quantity"),
        ("sale", 0, "#/movements/0/quantity"),
        ("adjustment", 0, "#/movements/0/quantity"),
        ("receipt", 1.5, "#/movements/0/quantity"),
        ("theft", 1, "#/movements/0/kind"),
    ],
)
def test_a_bad_quantity_or_kind_is_refused_with_a_pointer(
    db: Database, clock: ManualClock, kind: str, quantity: Any, pointer: str
) -> None:
    lyon = builders.location(db, clock)
    with pytest.raises(InvalidInput) as raised, db.transaction() as session:
        inventory.record_movements(session, clock.now(), [Move(SKU, lyon, kind, quantity)])
    assert [e.pointer for e in raised.value.errors] == [pointer]


def test_an_unknown_location_is_refused_and_nothing_of_the_batch_is_applied(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    nowhere = uuid.uuid4()
    with pytest.raises(InvalidInput) as raised, db.transaction() as session:
        inventory.record_movements(
            session, clock.now(), [Move(SKU, lyon, "receipt", 4), Move(SKU, nowhere, "receipt", 4)]
        )
    assert raised.value.errors[0].pointer == "#/movements/1/location_id"
    assert str(nowhere) in raised.value.errors[0].detail
    assert level(db, SKU, lyon) == (0, 0)
    assert ledger_sum(db, SKU, lyon) == 0


def test_a_sale_beyond_unreserved_stock_is_a_conflict_and_the_batch_rolls_back(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 3)
    builders.track(db, clock, "OTHER")
    reserve(db, clock, lyon, 2)
    with pytest.raises(Conflict) as raised, db.transaction() as session:
        inventory.record_movements(
            session,
            clock.now(),
            [Move("OTHER", lyon, "receipt", 9), Move(SKU, lyon, "sale", 2)],
        )
    assert raised.value.extensions["available"] == 1
    assert "only 1 is on hand and not reserved" in raised.value.detail
    assert level(db, SKU, lyon) == (3, 2)
    assert level(db, "OTHER", lyon) == (0, 0)


def test_a_batch_is_judged_on_its_end_state(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, SKU)
    with db.transaction() as session:
        inventory.record_movements(
            session, clock.now(), [Move(SKU, lyon, "sale", 2), Move(SKU, lyon, "receipt", 2)]
        )
    assert level(db, SKU, lyon) == (0, 0)


def test_an_adjustment_cannot_take_on_hand_below_zero(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 1)
    with pytest.raises(Conflict, match="only 1 is on hand"), db.transaction() as session:
        inventory.record_movements(session, clock.now(), [Move(SKU, lyon, "adjustment", -2)])


def test_a_transfer_is_two_movements_in_one_transaction(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    depot = builders.location(db, clock, "WH-01", kind="warehouse")
    builders.receive(db, clock, SKU, depot, 10)
    with db.transaction() as session:
        moved = inventory.transfer(session, clock.now(), SKU, depot, lyon, 4)
    assert [(m.kind, m.quantity) for m in moved] == [("transfer_out", -4), ("transfer_in", 4)]
    assert moved[0].reference == moved[1].reference
    assert level(db, SKU, depot) == (6, 0)
    assert level(db, SKU, lyon) == (4, 0)
    with pytest.raises(Conflict), db.transaction() as session:
        inventory.transfer(session, clock.now(), SKU, lyon, depot, 5)
    assert level(db, SKU, depot) == (6, 0)
    with pytest.raises(InvalidInput, match="two different"), db.transaction() as session:
        inventory.transfer(session, clock.now(), SKU, lyon, lyon, 1)


def test_recording_a_batch_costs_one_statement_per_sku_and_location(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, *(f"SKU-{i}" for i in range(20)))
    moves = [Move(f"SKU-{i}", lyon, "receipt", 5) for i in range(20)] * 3
    with counted_statements(db) as statements, db.transaction() as session:
        inventory.record_movements(session, clock.now(), moves)
    # one location check, one SKU check, 20 level upserts, one bulk insert of the 60
    # movements, the Back In Stock events of 20 new levels (one insert per event).
    assert len(statements) <= 1 + 1 + 20 + 1 + 20


# ------------------------------------------------------------------ reservations


def test_a_reservation_holds_units_until_released(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    result = reserve(db, clock, lyon, 2, kind="click_and_collect", reference="cart-9")
    assert result.created
    assert result.reservation.expires_at == clock.now() + timedelta(days=3)
    assert level(db, SKU, lyon) == (5, 2)
    with db.transaction() as session:
        assert inventory.available_by_location(session, SKU) == {lyon: 3}
        released = inventory.release(session, clock.now(), result.reservation.id)
    assert released.status == "released"
    assert level(db, SKU, lyon) == (5, 0)


def test_reserving_more_than_available_is_a_conflict_that_says_how_many_are_left(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    with db.transaction() as session:
        inventory.set_stock_policy(session, clock.now(), SKU, lyon, safety_stock=1)
    reserve(db, clock, lyon, 2)
    with pytest.raises(Conflict) as raised:
        reserve(db, clock, lyon, 3)
    assert raised.value.status == 409
    assert raised.value.extensions["available"] == 2
    assert "2 available to promise" in raised.value.detail
    assert level(db, SKU, lyon) == (5, 2)


def test_reserving_a_sku_never_stocked_is_a_conflict_with_zero_available(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, "NEVER")  # in the catalogue, never stocked
    with pytest.raises(Conflict) as raised:
        reserve(db, clock, lyon, 1, sku="NEVER")
    assert raised.value.extensions["available"] == 0


def test_reserving_at_an_unknown_location_is_invalid_input(
    db: Database, clock: ManualClock
) -> None:
    builders.track(db, clock, SKU)
    with pytest.raises(InvalidInput) as raised:
        reserve(db, clock, uuid.uuid4(), 1)
    assert raised.value.errors[0].pointer == "#/location_id"


@pytest.mark.parametrize(
    ("quantity", "kind", "pointer"),
    [(0, "cart", "#/quantity"), (-1, "cart", "#/quantity"), (2, "wishlist", "#/kind")],
)
def test_a_bad_reservation_is_refused_with_a_pointer(
    db: Database, clock: ManualClock, quantity: int, kind: str, pointer: str
) -> None:
    lyon = builders.location(db, clock)
    with pytest.raises(InvalidInput) as raised:
        reserve(db, clock, lyon, quantity, kind=kind)
    assert raised.value.errors[0].pointer == pointer


def test_an_expiry_in_the_past_is_refused(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    with pytest.raises(InvalidInput, match="reservation is invalid"):
        reserve(db, clock, lyon, 1, expires_at=clock.now())


def test_reserving_again_with_the_same_id_returns_the_same_reservation(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    chosen = uuid.uuid4()
    first = reserve(db, clock, lyon, 2, reservation_id=chosen)
    again = reserve(db, clock, lyon, 2, reservation_id=chosen)
    assert (first.created, again.created) == (True, False)
    assert again.reservation.id == chosen
    assert level(db, SKU, lyon) == (5, 2)
    with pytest.raises(Conflict, match="already exists"):
        reserve(db, clock, lyon, 3, reservation_id=chosen)


def test_releasing_twice_is_harmless(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    held = reserve(db, clock, lyon, 2).reservation
    for _ in range(2):
        with db.transaction() as session:
            assert inventory.release(session, clock.now(), held.id).status == "released"
    assert level(db, SKU, lyon) == (5, 0)


def test_releasing_an_unknown_reservation_is_not_found(db: Database, clock: ManualClock) -> None:
    with pytest.raises(NotFound), db.transaction() as session:
        inventory.release(session, clock.now(), uuid.uuid4())


def test_releasing_an_expired_reservation_is_a_conflict_naming_its_status(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    held = reserve(db, clock, lyon, 2, kind="cart").reservation
    clock.advance(timedelta(hours=1))
    with pytest.raises(Conflict, match="already expired") as overdue, db.transaction() as session:
        inventory.release(session, clock.now(), held.id)
    assert overdue.value.extensions["reservation_status"] == "expired"
    with db.transaction() as session:
        assert inventory.release_expired_reservations(session, clock.now(), 100) == 1
    with pytest.raises(Conflict, match="already expired"), db.transaction() as session:
        inventory.release(session, clock.now(), held.id)
    assert level(db, SKU, lyon) == (5, 0)


def test_consuming_a_reservation_records_a_sale_and_frees_the_hold(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    held = reserve(db, clock, lyon, 2, reference="order-77").reservation
    for _ in range(2):  # consuming twice is harmless too
        with db.transaction() as session:
            assert inventory.consume(session, clock.now(), held.id).status == "consumed"
    assert level(db, SKU, lyon) == (3, 0)
    assert ledger_sum(db, SKU, lyon) == 3
    with db.transaction() as session:
        sale = session.scalars(select(StockMovement).where(StockMovement.kind == "sale")).one()
    assert (sale.quantity, sale.reference) == (-2, str(held.id))
    with pytest.raises(Conflict, match="already consumed"), db.transaction() as session:
        inventory.release(session, clock.now(), held.id)


def test_a_released_reservation_cannot_be_consumed(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)
    held = reserve(db, clock, lyon, 2).reservation
    with db.transaction() as session:
        inventory.release(session, clock.now(), held.id)
    with pytest.raises(Conflict, match="already released"), db.transaction() as session:
        inventory.consume(session, clock.now(), held.id)


def test_expiry_releases_only_overdue_reservations_in_batches(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 10)
    for _ in range(3):
        reserve(db, clock, lyon, 1, kind="cart")
    keep = reserve(db, clock, lyon, 2, kind="order_allocation").reservation
    clock.advance(timedelta(hours=1))
    with db.transaction() as session:
        assert inventory.release_expired_reservations(session, clock.now(), 2) == 2
    with db.transaction() as session:
        assert inventory.release_expired_reservations(session, clock.now(), 2) == 1
        assert inventory.release_expired_reservations(session, clock.now(), 2) == 0
    assert level(db, SKU, lyon) == (10, 2)
    with db.transaction() as session:
        assert session.get(Reservation, keep.id).status == "active"  # type: ignore[union-attr]


def test_the_worker_job_expires_every_overdue_reservation(db: Database, clock: ManualClock) -> None:
    from parcours import registry

    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 10)
    reserve(db, clock, lyon, 4, kind="cart")
    clock.advance(timedelta(days=1))
    [job] = [j for j in registry.periodic_jobs() if j.name == inventory.EXPIRE_RESERVATIONS_JOB]
    assert job.run(db, clock) == 1
    assert level(db, SKU, lyon) == (10, 0)


def test_reserving_is_two_statements(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 50)
    with counted_statements(db) as statements, db.transaction() as session:
        inventory.reserve(session, clock.now(), SKU, lyon, 1)
    assert len(statements) == 2  # the conditional UPDATE and the reservation INSERT


# ------------------------------------------------------------------ availability


def test_availability_never_goes_below_zero(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 3)
    reserve(db, clock, lyon, 3)
    with db.transaction() as session:
        # A count finds one unit missing: on hand 2, still 3 reserved.
        inventory.record_movements(session, clock.now(), [Move(SKU, lyon, "count", -1)])
        assert inventory.available_by_location(session, SKU) == {lyon: 0}
        unknown = uuid.uuid4()
        assert inventory.available_by_location(session, SKU, [lyon, unknown]) == {
            lyon: 0,
            unknown: 0,
        }


def test_channel_rules_choose_which_locations_a_channel_may_promise(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    paris = builders.location(db, clock, "PAR-1")
    depot = builders.location(db, clock, "WH-01", kind="warehouse")
    builders.receive(db, clock, SKU, lyon, 2)
    builders.receive(db, clock, SKU, paris, 5)
    builders.receive(db, clock, SKU, depot, 10)
    with db.transaction() as session:
        inventory.set_channel_rule(
            session, clock.now(), inventory.ChannelRule("web", store_shown_above=2)
        )
        inventory.set_channel_rule(
            session, clock.now(), inventory.ChannelRule("store", include_warehouses=False)
        )
        inventory.set_channel_rule(
            session, clock.now(), inventory.ChannelRule("marketplace", include_stores=False)
        )
    with db.transaction() as session:
        atp = inventory.available_to_promise
        assert atp(session, [SKU, "NONE"], "web") == {SKU: 15, "NONE": 0}
        assert atp(session, [SKU], "store") == {SKU: 7}
        assert atp(session, [SKU], "marketplace") == {SKU: 10}
        assert atp(session, [SKU], "social") == {SKU: 17}  # no rule: every location
        assert atp(session, [], "web") == {}


def test_a_bad_channel_rule_is_refused(db: Database, clock: ManualClock) -> None:
    with pytest.raises(InvalidInput) as raised, db.transaction() as session:
        inventory.set_channel_rule(
            session, clock.now(), inventory.ChannelRule("web", store_shown_above=-1)
        )
    assert raised.value.errors[0].pointer == "#/store_shown_above"


def test_a_bad_stock_policy_is_refused(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    with pytest.raises(InvalidInput) as raised, db.transaction() as session:
        inventory.set_stock_policy(session, clock.now(), SKU, lyon, safety_stock=-1)
    assert raised.value.errors[0].pointer == "#/safety_stock"


# ------------------------------------------------------------------ events


def test_low_stock_and_back_in_stock_events_go_to_the_outbox(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 5)  # 0 -> 5: back in stock
    reserve(db, clock, lyon, 2)  # 5 -> 3: above the threshold of 2, nothing
    held = reserve(db, clock, lyon, 1).reservation  # 3 -> 2: low
    reserve(db, clock, lyon, 2)  # 2 -> 0: already low, nothing
    with db.transaction() as session:
        inventory.release(session, clock.now(), held.id)  # 0 -> 1: back in stock
    published = events(db)
    assert [kind for kind, _ in published] == ["Back In Stock", "Stock Low", "Back In Stock"]
    assert published[1][1] == {
        "sku": SKU,
        "location_id": str(lyon),
        "available": 2,
        "on_hand": 5,
        "reserved": 3,
        "low_stock_threshold": 2,
    }


def test_a_refused_reservation_publishes_nothing(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, SKU)
    with pytest.raises(Conflict):
        reserve(db, clock, lyon, 1)
    assert events(db) == []


def test_stock_for_sku_lists_each_location(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    paris = builders.location(db, clock, "PAR-1")
    builders.receive(db, clock, SKU, lyon, 1)
    builders.receive(db, clock, SKU, paris, 2)
    with db.transaction() as session:
        assert {(lvl.location_id, lvl.on_hand) for lvl in stock_for_sku(session, SKU)} == {
            (lyon, 1),
            (paris, 2),
        }


def test_one_locations_stock_of_many_skus_comes_in_one_query(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock, "LYO-1")
    builders.receive(db, clock, "SKU-1", lyon, 5)
    builders.receive(db, clock, "SKU-2", lyon, 3)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.transaction() as session:
        stock = inventory.available_at_location(session, lyon, ["SKU-1", "SKU-2", "SKU-9"])
    assert stock == {"SKU-1": 5, "SKU-2": 3, "SKU-9": 0}
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


# ------------------------------------------------------------------ unknown SKUs


def test_a_batch_with_one_sku_not_in_the_catalogue_records_nothing(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, SKU, "OTHER")
    moves = [
        Move(SKU, lyon, "receipt", 5),
        Move("OTHER", lyon, "receipt", 2),
        Move(SKU, lyon, "receipt", 1),
        Move("GHOST-1", lyon, "receipt", 4),
    ]
    with pytest.raises(InvalidInput) as raised, db.transaction() as session:
        inventory.record_movements(session, clock.now(), moves)
    assert [e.pointer for e in raised.value.errors] == ["#/movements/3/sku"]
    assert "not in the catalogue" in raised.value.errors[0].detail
    assert "GHOST-1" in raised.value.errors[0].detail
    assert level(db, SKU, lyon) == (0, 0)
    assert level(db, "OTHER", lyon) == (0, 0)
    assert ledger_sum(db, SKU, lyon) == 0
    assert events(db) == []


def test_the_sku_check_of_a_batch_is_one_query(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    moves = [Move(f"GHOST-{i}", lyon, "receipt", 1) for i in range(30)]
    with (
        counted_statements(db) as statements,
        pytest.raises(InvalidInput) as raised,
        db.transaction() as session,
    ):
        inventory.record_movements(session, clock.now(), moves)
    assert len(raised.value.errors) == 30
    assert len([s for s in statements if "stock_items" in s]) == 1


def test_reserving_a_sku_not_in_the_catalogue_is_invalid_input(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    with pytest.raises(InvalidInput) as raised:
        reserve(db, clock, lyon, 1, sku="GHOST")
    assert [e.pointer for e in raised.value.errors] == ["#/sku"]
    assert "not in the catalogue" in raised.value.errors[0].detail
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Reservation)) == 0


def test_transferring_a_sku_not_in_the_catalogue_is_invalid_input(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    depot = builders.location(db, clock, "DEP-1")
    with pytest.raises(InvalidInput) as raised, db.transaction() as session:
        inventory.transfer(session, clock.now(), "GHOST", lyon, depot, 1)
    assert [e.pointer for e in raised.value.errors] == ["#/sku"]
    assert level(db, "GHOST", depot) == (0, 0)


def test_a_stock_policy_for_a_sku_not_in_the_catalogue_is_invalid_input(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    with pytest.raises(InvalidInput) as raised, db.transaction() as session:
        inventory.set_stock_policy(session, clock.now(), "GHOST", lyon, safety_stock=1)
    assert [e.pointer for e in raised.value.errors] == ["#/sku"]


def test_tracking_skus_is_idempotent_and_counts_the_new_ones(
    db: Database, clock: ManualClock
) -> None:
    with db.transaction() as session:
        assert inventory.track_skus(session, clock.now(), ["A-1", "A-2", "A-1"]) == 2
    with db.transaction() as session:
        assert inventory.track_skus(session, clock.now(), ["A-2", "A-3"]) == 1
        assert inventory.track_skus(session, clock.now(), []) == 0
