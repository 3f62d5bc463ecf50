"""Checkout: an order from a cart in one transaction, or a 409 and nothing held."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from parcours import customers, inventory, orders
from parcours.core.errors import Conflict, InvalidInput
from parcours.core.models import OutboxEvent
from parcours.orders import carts, checkout, delivery
from parcours.orders.checkout import CheckoutRequest
from parcours.orders.models import Cart, Order, OrderLine
from parcours.orders.service import fulfilments_of, lines_of, timeline_of
from tests.builders import utc
from tests.orders.conftest import Shop

ADDRESS = {"name": "Léa Martin", "line1": "3 rue Mercière", "postcode": "69002", "city": "Lyon"}


def cart_of(shop: Shop, channel: str = "web", **lines: int) -> uuid.UUID:
    with shop.db.transaction() as session:
        cart = carts.create_cart(
            session, shop.clock.now(), channel, anonymous_id=f"v-{uuid.uuid4().hex[:8]}"
        )
        for sku, quantity in lines.items():
            carts.set_line(session, shop.clock.now(), cart.id, sku.replace("_", "-"), quantity)
        return cart.id


def home(cart_id: uuid.UUID, **kw: Any) -> CheckoutRequest:
    return CheckoutRequest(cart_id, "home_delivery", address=ADDRESS, email="lea@example.com", **kw)


def pickup(cart_id: uuid.UUID, mode: str, store: uuid.UUID, **kw: Any) -> CheckoutRequest:
    return CheckoutRequest(cart_id, mode, store_id=store, email="lea@example.com", **kw)


def place(shop: Shop, request: CheckoutRequest) -> checkout.PlacedOrder:
    with shop.db.transaction() as session:
        placed = checkout.place_order(session, shop.clock.now(), request, "api_key:test")
        session.flush()
        return placed


def test_a_web_checkout_places_the_order_holds_the_stock_and_converts_the_cart(shop: Shop) -> None:
    cart_id = cart_of(shop, ROBE_LIN_S=2, BOUGIE_S=1)
    placed = place(shop, home(cart_id))
    with shop.db.transaction() as session:
        order = session.get(Order, placed.order.id)
        assert order is not None
        assert order.number == "W2026-000001"
        assert (order.status, order.channel, order.source) == ("placed", "web", "checkout")
        assert (order.subtotal, order.delivery_total, order.total) == (19970, 0, 19970)
        assert order.vat_total == carts.vat_part(17980, 2000) + carts.vat_part(1990, 550)
        [fulfilment] = fulfilments_of(session, order.id)
        assert fulfilment.status == "allocated"
        assert fulfilment.location_id == shop.locations["WH-1"]
        assert "warehouse" in fulfilment.reason
        assert fulfilment.promised_at == utc(2026, 3, 17, 18)  # Tuesday 19:00 in Paris
        lines = lines_of(session, order.id)
        assert all(line.reservation_id for line in lines)
        assert [e.kind for e in timeline_of(session, order.id)] == ["placed"]
        assert session.get(Cart, cart_id).status == "converted"  # type: ignore[union-attr]
        assert (
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.type == "Order Completed")
            )
            == 1
        )
    assert shop.available("ROBE-LIN-S", "WH-1") == 18


def test_a_small_order_pays_the_delivery_fee(sqlite_shop: Shop) -> None:
    placed = place(sqlite_shop, home(cart_of(sqlite_shop, BOUGIE_S=1)))
    assert placed.order.delivery_total == delivery.HOME_DELIVERY_FEE
    assert placed.order.total == 1990 + delivery.HOME_DELIVERY_FEE
    assert placed.fulfilments[0].delivery_fee == delivery.HOME_DELIVERY_FEE


def test_a_shortage_is_a_409_naming_sku_store_and_units_and_nothing_is_held(shop: Shop) -> None:
    cart_id = cart_of(shop, BOUGIE_S=1, ROBE_LIN_S=2)
    request = pickup(cart_id, "click_and_collect", shop.locations["LYO-2"])
    with pytest.raises(Conflict) as refused:
        place(shop, request)
    assert "ROBE-LIN-S at LYO-2: 1 of 2" in refused.value.detail
    assert refused.value.extensions["available"] == 1
    assert shop.available("BOUGIE-S", "LYO-2") == 4
    with shop.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0
        assert carts.get_cart(session, cart_id).status == "open"


def test_stock_taken_after_routing_fails_the_whole_checkout(sqlite_shop: Shop) -> None:
    """The first line is reserved, the second refused: the first is given back too."""
    cart_id = cart_of(sqlite_shop, BOUGIE_S=2, ROBE_LIN_S=1)
    request = pickup(cart_id, "click_and_collect", sqlite_shop.locations["LYO-2"])
    real_reserve = inventory.reserve

    def reserve_after_a_rival(session: Any, now: Any, sku: str, *args: Any, **kw: Any) -> Any:
        if sku == "ROBE-LIN-S":  # a rival took the last dress between routing and now
            real_reserve(session, now, sku, args[0], 1, "cart")
        return real_reserve(session, now, sku, *args, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(inventory, "reserve", reserve_after_a_rival)
        with pytest.raises(Conflict) as refused:
            place(sqlite_shop, request)
    assert refused.value.extensions["location"] == "LYO-2"
    assert sqlite_shop.available("BOUGIE-S", "LYO-2") == 4
    assert sqlite_shop.available("ROBE-LIN-S", "LYO-2") == 1


def test_a_cart_converts_once(sqlite_shop: Shop) -> None:
    cart_id = cart_of(sqlite_shop, BOUGIE_S=1)
    place(sqlite_shop, home(cart_id))
    with pytest.raises(Conflict) as refused:
        place(sqlite_shop, home(cart_id))
    assert refused.value.extensions["cart_status"] == "converted"


def test_click_and_collect_issues_a_pickup_code_and_a_ready_time(shop: Shop) -> None:
    lyon = shop.locations["LYO-1"]
    placed = place(shop, pickup(cart_of(shop, ROBE_LIN_S=1), "click_and_collect", lyon))
    [fulfilment] = placed.fulfilments
    assert fulfilment.pickup_store_id == lyon
    assert fulfilment.promised_at == shop.clock.now() + timedelta(minutes=120)
    assert fulfilment.hold_until == fulfilment.promised_at + timedelta(days=10)
    assert len(placed.pickup_codes[fulfilment.id]) == 6
    assert fulfilment.pickup_code_hash
    assert placed.order.store_id == lyon
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2


def test_reserve_in_store_is_held_the_store_hold_days(sqlite_shop: Shop) -> None:
    lyon = sqlite_shop.locations["LYO-1"]
    with sqlite_shop.db.transaction() as session:
        delivery.configure_store(session, sqlite_shop.clock.now(), lyon, reserve_hold_days=2)
    placed = place(
        sqlite_shop, pickup(cart_of(sqlite_shop, ROBE_LIN_M=1), "reserve_in_store", lyon)
    )
    [fulfilment] = placed.fulfilments
    assert fulfilment.hold_until == fulfilment.promised_at + timedelta(days=2)  # type: ignore[operator]


def test_a_drive_order_books_its_slot_and_a_full_slot_is_a_409(shop: Shop) -> None:
    lyon = shop.locations["LYO-1"]
    now = shop.clock.now()
    with shop.db.transaction() as session:
        delivery.configure_store(session, now, lyon, drive_slot_capacity=1)
        settings = delivery.store_settings(session, [lyon])[lyon]
        schedule = delivery._schedule(session, lyon, now)
        slots = delivery.ensure_slots(
            session, now, lyon, schedule, settings, now + timedelta(hours=2)
        )
    slot = slots[0]
    assert slot.starts_at == utc(2026, 3, 14, 11, 30)
    placed = place(shop, pickup(cart_of(shop, ROBE_LIN_S=1), "drive", lyon, slot_id=slot.id))
    assert placed.fulfilments[0].slot_id == slot.id
    assert placed.fulfilments[0].promised_at == slot.starts_at
    with pytest.raises(Conflict) as refused:
        place(shop, pickup(cart_of(shop, ROBE_LIN_S=1), "drive", lyon, slot_id=slot.id))
    assert "full" in refused.value.detail
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2


def test_ship_from_store_counts_against_the_store_daily_capacity(sqlite_shop: Shop) -> None:
    lyon = sqlite_shop.locations["LYO-1"]
    with sqlite_shop.db.transaction() as session:
        delivery.configure_store(session, sqlite_shop.clock.now(), lyon, daily_ship_capacity=1)
    request = CheckoutRequest(
        cart_of(sqlite_shop, ROBE_LIN_M=1), "ship_from_store", address=ADDRESS, email="a@b.fr"
    )
    placed = place(sqlite_shop, request)
    assert placed.fulfilments[0].location_id == lyon
    assert "only store with stock" in placed.fulfilments[0].reason
    again = CheckoutRequest(
        cart_of(sqlite_shop, ROBE_LIN_S=1), "ship_from_store", address=ADDRESS, email="a@b.fr"
    )
    with pytest.raises(Conflict):
        place(sqlite_shop, again)


def test_a_call_centre_order_names_the_agent(sqlite_shop: Shop) -> None:
    cart_id = cart_of(sqlite_shop, "call_centre", BOUGIE_S=1)
    placed = place(sqlite_shop, home(cart_id, placed_by="agent:sophie"))
    assert placed.order.number.startswith("C2026-")
    assert (placed.order.source, placed.order.placed_by) == ("call_centre", "agent:sophie")


def test_a_home_delivery_no_location_can_send_whole_is_split(sqlite_shop: Shop) -> None:
    lyon, paris = sqlite_shop.locations["LYO-1"], sqlite_shop.locations["PAR-1"]
    with sqlite_shop.db.transaction() as session:
        for store in (lyon, paris):
            delivery.configure_store(session, sqlite_shop.clock.now(), store, daily_ship_capacity=5)
    placed = place(sqlite_shop, home(cart_of(sqlite_shop, ROBE_LIN_M=1, BOUGIE_M=1)))
    where = {f.id: f.location_id for f in placed.fulfilments}
    assert {line.sku: where[line.fulfilment_id] for line in placed.lines} == {  # type: ignore[index]
        "ROBE-LIN-M": lyon,
        "BOUGIE-M": paris,
    }
    assert [f.delivery_fee for f in placed.fulfilments] == [0, 0]  # 114.80 EUR ships free
    assert all("parcel" in f.reason for f in placed.fulfilments)
    assert placed.fulfilments[1].reason_data["split"] == {"part": 2, "of": 2}


def test_bad_checkout_input_names_each_field(sqlite_shop: Shop) -> None:
    cart_id = cart_of(sqlite_shop, BOUGIE_S=1)
    with pytest.raises(InvalidInput) as refused:
        place(sqlite_shop, CheckoutRequest(cart_id, "click_and_collect", locale="de"))
    pointers = {e.pointer for e in refused.value.errors}
    assert pointers == {"#/store_id", "#/email", "#/locale"}


# ------------------------------------------------------------------ statements


@contextmanager
def counted(shop: Shop) -> Iterator[list[str]]:
    """Every statement sent to the database while inside."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(shop.db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(shop.db.engine, "before_cursor_execute", count)


def test_a_web_checkout_stays_within_25_statements(shop: Shop) -> None:
    """A three-line home delivery for a logged-in customer, everything included: pricing,
    routing, reservations, the order, its payment, its timeline and its outbox event (the
    tracking log is written afterwards by the `orders.tracking` consumer)."""
    with shop.db.transaction() as session:
        inventory.record_movements(
            session,
            shop.clock.now(),
            [inventory.MovementInput("BOUGIE-M", shop.locations["WH-1"], "receipt", 10)],
        )
    place(shop, home(cart_of(shop, BOUGIE_S=1)))  # the year's counter exists from now on
    cart_id = cart_of(shop, ROBE_LIN_S=1, BOUGIE_S=2, BOUGIE_M=1)
    with shop.db.transaction() as session:
        assert shop.customer_id is not None
        carts.attach_customer(session, shop.clock.now(), cart_id, shop.customer_id)
    with counted(shop) as statements:
        placed = place(shop, home(cart_id))
    assert len(placed.lines) == 3
    assert len(statements) <= 25, "\n".join(statements)


def test_the_tracking_consumer_puts_the_order_in_the_customer_log(shop: Shop) -> None:
    from sqlalchemy import text

    from parcours.core.clock import ManualClock
    from parcours.core.events import drain

    cart_id = cart_of(shop, ROBE_LIN_S=1)
    with shop.db.transaction() as session:
        assert shop.customer_id is not None
        carts.attach_customer(session, shop.clock.now(), cart_id, shop.customer_id)
    placed = place(shop, home(cart_id))
    assert isinstance(shop.clock, ManualClock)
    consumer = orders.tracking_consumer()
    drain(shop.db, [consumer], shop.clock)
    drain(shop.db, [consumer], shop.clock)  # a second pass stores nothing twice
    with shop.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT type, event, channel, anonymous_id, properties FROM events ORDER BY seq")
        ).all()
    tracked = [r for r in rows if r.event == "Order Completed"]
    assert len(tracked) == 1
    assert tracked[0].channel == "web"
    properties = tracked[0].properties
    if isinstance(properties, str):
        import json

        properties = json.loads(properties)
    assert properties["order_id"] == placed.order.number
    # The buyer is identified by email, so the purchase lands on their profile once
    # identity has read the log.
    assert any(r.type == "identify" for r in rows)
    with shop.db.transaction() as session:
        customers.resolve_logged_events(session, shop.clock.now())
        found = customers.resolve(session, "anonymous_id", tracked[0].anonymous_id)
        assert found == shop.customer_id


# ------------------------------------------------------------------ concurrency


def test_many_checkouts_racing_for_the_last_units_never_oversell(shop: Shop) -> None:
    """Twelve customers, three dresses in Villeurbanne... one each for three of them."""
    lyon2 = shop.locations["LYO-2"]
    with shop.db.transaction() as session:
        inventory.record_movements(
            session, shop.clock.now(), [inventory.MovementInput("ROBE-LIN-S", lyon2, "receipt", 2)]
        )
    place(shop, home(cart_of(shop, BOUGIE_S=1)))
    cart_ids = [cart_of(shop, ROBE_LIN_S=1) for _ in range(12)]
    start = threading.Barrier(len(cart_ids))

    def attempt(cart_id: uuid.UUID) -> tuple[str, int] | None:
        start.wait()
        try:
            place(shop, pickup(cart_id, "click_and_collect", lyon2))
        except Conflict as refused:
            return refused.extensions["sku"], int(refused.extensions["available"])
        return None

    with ThreadPoolExecutor(max_workers=len(cart_ids)) as pool:
        outcomes = list(pool.map(attempt, cart_ids))
    assert outcomes.count(None) == 3
    assert set(outcomes) == {None, ("ROBE-LIN-S", 0)}
    assert shop.available("ROBE-LIN-S", "LYO-2") == 0
    with shop.db.transaction() as session:
        sold = session.scalar(
            select(func.sum(OrderLine.quantity)).where(OrderLine.sku == "ROBE-LIN-S")
        )
        assert sold == 3


def test_an_empty_cart_cannot_be_checked_out(sqlite_shop: Shop) -> None:
    with pytest.raises(Conflict) as refused:
        place(sqlite_shop, home(cart_of(sqlite_shop)))
    assert "empty" in refused.value.detail


def test_an_unknown_payment_provider_is_refused_before_anything_is_held(sqlite_shop: Shop) -> None:
    request = home(cart_of(sqlite_shop, BOUGIE_S=1), payment_provider="bitcoin")
    with pytest.raises(InvalidInput) as refused:
        place(sqlite_shop, request)
    assert refused.value.errors[0].pointer == "#/payment_provider"
    assert sqlite_shop.available("BOUGIE-S", "WH-1") == 50


def test_a_pickup_at_an_unknown_store_or_a_warehouse_is_refused(sqlite_shop: Shop) -> None:
    for store in (uuid.uuid4(), sqlite_shop.locations["WH-1"]):
        request = pickup(cart_of(sqlite_shop, BOUGIE_S=1), "click_and_collect", store)
        with pytest.raises(InvalidInput) as refused:
            place(sqlite_shop, request)
        assert refused.value.errors[0].pointer == "#/store_id"
