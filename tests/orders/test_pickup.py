"""Pickup codes: issued once, stored hashed, verified at the right store only, locked
after five wrong tries."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from parcours.core.clock import ManualClock
from parcours.core.errors import Conflict, NotFound
from parcours.orders import lifecycle, pickup
from parcours.orders.models import Fulfilment, Order, Payment
from parcours.orders.service import PAYMENT_CAPTURED
from tests.orders.conftest import Shop
from tests.orders.order_builders import Placed, event_types, place_order


def ready_pickup(shop: Shop, **options: object) -> Placed:
    placed = place_order(shop, [("ROBE-LIN-S", 1)], **options)  # type: ignore[arg-type]
    for step in ("picking", "ready_for_pickup"):
        with shop.db.transaction() as session:
            lifecycle.transition(session, shop.clock.now(), placed.fulfilment_id, step, "staff")
    return placed


def verify(shop: Shop, placed: Placed, code: str, store: str = "LYO-1") -> Fulfilment:
    """As the API and the counter page call it: a wrong code is answered, not rolled back,
    so the counted attempt commits."""
    refused: pickup.WrongCode | None = None
    with shop.db.transaction() as session:
        try:
            return pickup.verify_pickup(
                session, shop.clock.now(), shop.locations[store], placed.number, code, "staff:ines"
            )
        except pickup.WrongCode as exc:
            refused = exc
    raise refused


def test_a_code_is_six_unambiguous_characters_and_only_its_hash_is_kept(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)])
    assert placed.code is not None
    assert len(placed.code) == 6
    assert not set(placed.code) & set("0O1I")
    assert set(pickup.ALPHABET).isdisjoint("0O1I")
    with shop.db.transaction() as session:
        fulfilment = session.get(Fulfilment, placed.fulfilment_id)
        assert fulfilment is not None
        assert fulfilment.pickup_code_hash is not None
        assert placed.code not in fulfilment.pickup_code_hash
        assert len(fulfilment.pickup_code_hash) == 64
        before = fulfilment.pickup_code_hash
        pickup.issue_code(session, fulfilment)
        assert fulfilment.pickup_code_hash != before


def test_the_right_code_hands_over_the_goods_and_takes_the_in_store_payment(
    shop: Shop,
) -> None:
    placed = ready_pickup(shop, mode="reserve_in_store")
    assert placed.code is not None
    typed = f" {placed.code[:3].lower()} {placed.code[3:]} "
    collected = verify(shop, placed, typed)
    assert collected.status == "collected"
    with shop.db.transaction() as session:
        order = session.get(Order, placed.id)
        assert order is not None
        assert (order.status, order.payment_status) == ("collected", "captured")
        [payment] = session.query(Payment).filter_by(order_id=placed.id).all()
        assert payment.status == "captured"
    assert PAYMENT_CAPTURED in event_types(shop)
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2


def test_wrong_codes_count_and_lock_the_pickup_after_five(shop: Shop) -> None:
    placed = ready_pickup(shop)
    assert placed.code is not None
    wrong = "ZZZZZZ" if placed.code != "ZZZZZZ" else "YYYYYY"
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(pickup.WrongCode) as refused:
            verify(shop, placed, wrong)
        assert refused.value.extensions["attempts_left"] == left
        assert refused.value.errors[0].pointer == "#/code"
    with pytest.raises(Conflict) as locked:
        verify(shop, placed, placed.code)
    assert "locked" in locked.value.detail
    with shop.db.transaction() as session:
        fulfilment = session.get(Fulfilment, placed.fulfilment_id)
        assert fulfilment is not None
        assert (fulfilment.status, fulfilment.pickup_attempts) == ("ready_for_pickup", 5)
        # Staff check an identity document and issue a new code: the lock is lifted.
        fresh = pickup.issue_code(session, fulfilment)
    assert verify(shop, placed, fresh).status == "collected"


def test_a_code_for_another_store_is_refused_and_says_so(shop: Shop) -> None:
    placed = ready_pickup(shop)
    assert placed.code is not None
    with pytest.raises(Conflict) as refused:
        verify(shop, placed, placed.code, store="PAR-1")
    assert "another store" in refused.value.detail
    assert refused.value.extensions["pickup_store_id"] == str(shop.locations["LYO-1"])


def test_an_expired_or_unready_pickup_cannot_be_collected(shop: Shop, clock: ManualClock) -> None:
    early = place_order(shop, [("ROBE-LIN-S", 1)])
    assert early.code is not None
    with pytest.raises(Conflict) as not_ready:
        verify(shop, early, early.code)
    assert "not ready" in not_ready.value.detail
    placed = ready_pickup(shop)
    assert placed.code is not None
    clock.advance(timedelta(days=10, minutes=1))
    with pytest.raises(Conflict) as overdue:
        verify(shop, placed, placed.code)
    assert "hold has ended" in overdue.value.detail
    lifecycle.expire_pickups_every_batch(shop.db, clock)
    with pytest.raises(Conflict) as expired:
        verify(shop, placed, placed.code)
    assert expired.value.extensions["fulfilment_status"] == "expired"
    with pytest.raises(NotFound):
        verify(shop, placed.__class__(uuid.uuid4(), "W2026-999999", uuid.uuid4(), [], "", ""), "X")


def test_a_home_delivery_has_nothing_to_collect(sqlite_shop: Shop) -> None:
    placed = place_order(sqlite_shop, [("BOUGIE-S", 1)], mode="home_delivery", at="WH-1")
    with pytest.raises(Conflict) as refused:
        verify(sqlite_shop, placed, "ABCDEF", store="LYO-2")
    assert "nothing to collect" in refused.value.detail


def test_the_qr_payload_reads_back_as_order_and_code() -> None:
    payload = pickup.qr_payload("W2026-000042", "ab cd-ef")
    assert payload == "PARCOURS-PICKUP:W2026-000042:ABCDEF"
    assert pickup.parse_scan(payload) == ("W2026-000042", "ABCDEF")
    assert pickup.parse_scan("https://example.com") is None


def test_the_qr_code_carries_what_the_counter_reads_back() -> None:
    svg = pickup.qr_svg("W2026-000042", "abcdef")
    assert svg.startswith("<svg")
    assert "<path" in svg
    assert pickup.parse_scan(pickup.qr_payload("W2026-000042", "abcdef")) == (
        "W2026-000042",
        "ABCDEF",
    )
    assert pickup.parse_scan("https://example.com/") is None
