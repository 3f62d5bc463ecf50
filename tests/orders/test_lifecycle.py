"""The fulfilment state machine, its effects on stock and payments, cancellation and
the expiry of uncollected pickups."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from parcours import inventory
from parcours.core.clock import ManualClock
from parcours.core.errors import Conflict, InvalidInput
from parcours.orders import lifecycle
from parcours.orders.models import Fulfilment, FulfilmentSettings, Order, Payment
from parcours.orders.service import (
    FULFILMENT_COLLECTED,
    FULFILMENT_READY,
    FULFILMENT_SHIPPED,
    ORDER_CANCELLED,
    ORDER_REFUNDED,
    PICKUP_EXPIRED,
    get_order,
    timeline_of,
)
from tests.orders.conftest import Shop
from tests.orders.order_builders import event_types, outbox_payloads, place_order


def move(shop: Shop, fulfilment_id: uuid.UUID, *steps: str, **extra: str) -> Fulfilment:
    fulfilment = None
    for step in steps:
        with shop.db.transaction() as session:
            fulfilment = lifecycle.transition(
                session, shop.clock.now(), fulfilment_id, step, "staff:camille", **extra
            )
    assert fulfilment is not None
    return fulfilment


def order_of(shop: Shop, order_id: uuid.UUID) -> Order:
    with shop.db.transaction() as session:
        order = get_order(session, order_id)
        session.expunge(order)
        return order


@pytest.mark.parametrize(
    ("mode", "status", "allowed"),
    [
        ("click_and_collect", "allocated", ("picking", "cancelled")),
        ("drive", "picking", ("ready_for_pickup", "cancelled")),
        ("reserve_in_store", "ready_for_pickup", ("collected", "expired", "cancelled")),
        ("home_delivery", "picking", ("shipped", "cancelled")),
        ("ship_from_store", "shipped", ("delivered",)),
        ("click_and_collect", "collected", ()),
        ("home_delivery", "delivered", ()),
        ("home_delivery", "ready_for_pickup", ()),
        ("carry_out", "collected", ()),
    ],
)
def test_each_mode_allows_only_its_next_steps(
    mode: str, status: str, allowed: tuple[str, ...]
) -> None:
    assert lifecycle.allowed_next(mode, status) == allowed


@pytest.mark.parametrize(
    ("statuses", "modes", "paid", "expected"),
    [
        (["allocated"], ["home_delivery"], "pending", "placed"),
        (["allocated"], ["home_delivery"], "captured", "paid"),
        (["picking", "ready_for_pickup"], ["home_delivery", "drive"], "captured", "picking"),
        (["ready_for_pickup", "shipped"], ["drive", "home_delivery"], "paid", "ready_for_pickup"),
        (["shipped", "delivered"], ["home_delivery", "ship_from_store"], "captured", "shipped"),
        (["collected", "allocated"], ["drive", "home_delivery"], "captured", "allocated"),
        (["collected", "cancelled"], ["drive", "home_delivery"], "captured", "collected"),
        (["delivered"], ["home_delivery"], "captured", "delivered"),
        (["collected", "delivered"], ["drive", "home_delivery"], "captured", "completed"),
        (["collected"], ["carry_out"], "captured", "completed"),
        (["cancelled", "expired"], ["drive", "click_and_collect"], "refunded", "cancelled"),
    ],
)  # fmt: skip
def test_the_order_status_follows_from_its_fulfilments(
    statuses: list[str], modes: list[str], paid: str, expected: str
) -> None:
    assert lifecycle.derive_status(statuses, modes, paid) == expected


def test_a_click_and_collect_goes_from_picking_to_collected_and_sells_the_stock(
    shop: Shop,
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)])
    assert shop.available("ROBE-LIN-S", "LYO-1") == 1
    move(shop, placed.fulfilment_id, "picking")
    assert order_of(shop, placed.id).status == "picking"
    ready = move(shop, placed.fulfilment_id, "ready_for_pickup")
    assert ready.hold_until == shop.clock.now() + timedelta(days=10)
    assert order_of(shop, placed.id).status == "ready_for_pickup"
    move(shop, placed.fulfilment_id, "collected")
    assert order_of(shop, placed.id).status == "collected"
    with shop.db.transaction() as session:
        [level] = [
            lvl
            for lvl in inventory.stock_for_sku(session, "ROBE-LIN-S")
            if lvl.location_id == shop.locations["LYO-1"]
        ]
        assert (level.on_hand, level.reserved) == (1, 0)
        steps = [(e.from_status, e.to_status) for e in timeline_of(session, placed.id)]
    assert ("ready_for_pickup", "collected") in steps
    types = event_types(shop)
    assert FULFILMENT_READY in types
    assert FULFILMENT_COLLECTED in types
    [ready_event] = outbox_payloads(shop, FULFILMENT_READY)
    assert ready_event["properties"]["fulfilment_id"] == str(placed.fulfilment_id)


def test_a_home_delivery_is_shipped_with_its_tracking_then_delivered(shop: Shop) -> None:
    placed = place_order(shop, [("BOUGIE-S", 5)], mode="home_delivery", at="WH-1")
    move(shop, placed.fulfilment_id, "picking")
    shipped = move(
        shop, placed.fulfilment_id, "shipped", carrier="colissimo", tracking_number="6A123"
    )
    assert (shipped.carrier, shipped.tracking_number) == ("colissimo", "6A123")
    assert order_of(shop, placed.id).status == "shipped"
    assert shop.available("BOUGIE-S", "WH-1") == 45
    move(shop, placed.fulfilment_id, "delivered")
    assert order_of(shop, placed.id).status == "delivered"
    assert FULFILMENT_SHIPPED in event_types(shop)


def test_an_invalid_transition_is_409_listing_the_allowed_ones_and_changes_nothing(
    shop: Shop,
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)])
    with pytest.raises(Conflict) as refused:
        move(shop, placed.fulfilment_id, "collected")
    assert refused.value.extensions["allowed"] == ["picking", "cancelled"]
    assert "allocated to collected" in refused.value.detail
    shipped = place_order(shop, [("BOUGIE-S", 1)], mode="home_delivery", at="WH-1")
    move(shop, shipped.fulfilment_id, "picking", "shipped")
    with pytest.raises(Conflict) as late:
        move(shop, shipped.fulfilment_id, "cancelled")
    assert late.value.extensions["allowed"] == ["delivered"]
    with pytest.raises(InvalidInput):
        move(shop, placed.fulfilment_id, "teleported")
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2
    assert order_of(shop, placed.id).status == "placed"


def test_cancelling_releases_the_stock_refunds_and_is_announced(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 3)], provider="simulator", captured=True)
    assert shop.available("ROBE-LIN-S", "LYO-1") == 0
    move(shop, placed.fulfilment_id, "picking")
    with shop.db.transaction() as session:
        lifecycle.cancel_order(session, shop.clock.now(), placed.id, "agent:zoe", "customer asked")
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3
    order = order_of(shop, placed.id)
    assert (order.status, order.payment_status) == ("cancelled", "refunded")
    with shop.db.transaction() as session:
        payment = session.query(Payment).filter_by(order_id=placed.id).one()
        assert (payment.status, payment.refunded_amount) == ("refunded", 3 * 8990)
        # Cancelling again is harmless: nothing is released or refunded twice.
        lifecycle.cancel_order(session, shop.clock.now(), placed.id, "agent:zoe", "again")
    types = event_types(shop)
    assert types.count(ORDER_CANCELLED) == 1
    assert types.count(ORDER_REFUNDED) == 1
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3


def test_an_unpaid_order_cancelled_closes_its_pending_payment(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)], mode="reserve_in_store")
    with shop.db.transaction() as session:
        lifecycle.cancel_order(session, shop.clock.now(), placed.id, "agent:zoe", "no longer")
    order = order_of(shop, placed.id)
    assert (order.status, order.payment_status) == ("cancelled", "cancelled")
    assert ORDER_REFUNDED not in event_types(shop)


def test_a_shipped_order_cannot_be_cancelled_and_says_why(shop: Shop) -> None:
    placed = place_order(shop, [("BOUGIE-S", 1)], mode="home_delivery", at="WH-1")
    move(shop, placed.fulfilment_id, "picking", "shipped")
    with pytest.raises(Conflict) as refused, shop.db.transaction() as session:
        lifecycle.cancel_order(session, shop.clock.now(), placed.id, "agent:zoe", "too late")
    assert "already shipped" in refused.value.detail
    assert "return" in refused.value.detail
    assert order_of(shop, placed.id).status == "shipped"


def test_uncollected_pickups_expire_and_their_stock_returns(shop: Shop, clock: ManualClock) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)])
    kept = place_order(shop, [("ROBE-LIN-S", 1)], at="PAR-1")
    move(shop, placed.fulfilment_id, "picking", "ready_for_pickup")
    clock.advance(timedelta(days=5))
    move(shop, kept.fulfilment_id, "picking", "ready_for_pickup")
    clock.advance(timedelta(days=4, hours=23))
    assert lifecycle.expire_pickups_every_batch(shop.db, clock) == 0
    clock.advance(timedelta(hours=1))
    job = lifecycle.expire_pickups_job()
    assert job.name == lifecycle.EXPIRE_PICKUPS_JOB
    assert job.run(shop.db, clock) == 1
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3
    assert shop.available("ROBE-LIN-S", "PAR-1") == 4
    order = order_of(shop, placed.id)
    assert (order.status, order.payment_status) == ("cancelled", "cancelled")
    assert event_types(shop).count(PICKUP_EXPIRED) == 1
    assert order_of(shop, kept.id).status == "ready_for_pickup"


def test_reserve_in_store_is_held_for_the_stores_reserve_days(shop: Shop) -> None:
    now = shop.clock.now()
    with shop.db.transaction() as session:
        session.add(
            FulfilmentSettings(
                store_id=shop.locations["LYO-2"], reserve_hold_days=5, updated_at=now
            )
        )
    placed = place_order(shop, [("BOUGIE-S", 1)], mode="reserve_in_store", at="LYO-2")
    ready = move(shop, placed.fulfilment_id, "picking", "ready_for_pickup")
    assert ready.hold_until == now + timedelta(days=5)
    other = place_order(shop, [("ROBE-LIN-S", 1)], mode="reserve_in_store", at="LYO-1")
    assert move(shop, other.fulfilment_id, "picking", "ready_for_pickup").hold_until == (
        now + timedelta(days=3)
    )


def test_goods_handed_over_after_their_reservation_lapsed_are_still_sold(
    shop: Shop, clock: ManualClock
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)])
    move(shop, placed.fulfilment_id, "picking", "ready_for_pickup")
    clock.advance(timedelta(days=31))  # the reservation lapsed; no pickup expiry ran
    inventory.expire_reservations_job().run(shop.db, clock)
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3
    move(shop, placed.fulfilment_id, "collected")
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2
