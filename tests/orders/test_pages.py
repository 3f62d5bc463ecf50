"""Console pages of orders: the list, an order with its routing reason and timeline, and
what store staff may see."""

from __future__ import annotations

import uuid

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.orders import service
from parcours.orders.models import Fulfilment, Order, OrderLine
from tests import builders
from tests.orders.conftest import Shop
from tests.web.test_console import HTML, log_in

pytestmark = pytest.mark.anyio


def stored_order(shop: Shop, store: str, *, mode: str = "click_and_collect") -> str:
    """An order of one dress collected at `store`, written straight to the tables."""
    now = shop.clock.now()
    with shop.db.transaction() as session:
        order = Order(
            id=uuid.uuid4(),
            number=service.order_number(session, "web", now),
            channel="web",
            source="checkout",
            currency="EUR",
            subtotal=8990,
            total=8990,
            vat_total=1498,
            status="allocated",
            email="lea.martin@example.com",
            placed_at=now,
            updated_at=now,
        )
        session.add(order)
        session.flush()
        fulfilment = Fulfilment(
            order_id=order.id,
            mode=mode,
            location_id=shop.locations[store],
            pickup_store_id=shop.locations[store],
            status="allocated",
            reason=f"collected at {store}: the store the customer chose, 3 in stock",
            created_at=now,
            updated_at=now,
        )
        session.add(fulfilment)
        session.flush()
        session.add(
            OrderLine(
                order_id=order.id,
                fulfilment_id=fulfilment.id,
                line_no=1,
                sku="ROBE-LIN-S",
                name="Robe en lin lavande",
                quantity=1,
                unit_price=8990,
                vat_rate_bp=2000,
                total=8990,
                vat=1498,
            )
        )
        service.add_event(session, now, order.id, "placed", "web shop", to_status="allocated")
        return order.number


async def test_the_order_list_and_page_show_the_routing_reason_and_timeline(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    number = stored_order(shop, "LYO-1")
    builders.user(shop.db, clock)
    await log_in(client)
    listing = await client.get("/console/commerce/orders", headers=HTML)
    assert listing.status_code == 200
    assert number in listing.text
    assert "89,90" in listing.text or "89.90" in listing.text
    searched = await client.get(
        "/console/commerce/orders", params={"q": "lea.martin@example.com"}, headers=HTML
    )
    assert number in searched.text
    other = await client.get("/console/commerce/orders", params={"q": "W1999-000001"}, headers=HTML)
    assert number not in other.text
    page = await client.get(f"/console/commerce/orders/{number}", headers=HTML)
    assert page.status_code == 200
    assert "collected at LYO-1: the store the customer chose" in page.text
    assert "ROBE-LIN-S" in page.text
    assert "placed" in page.text
    missing = await client.get("/console/commerce/orders/W1999-000001", headers=HTML)
    assert missing.status_code == 404


async def test_store_staff_see_only_the_orders_of_their_stores(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    in_lyon = stored_order(shop, "LYO-1")
    in_paris = stored_order(shop, "PAR-1")
    builders.user(shop.db, clock, "hugo", role="staff", store_ids=["PAR-1"])
    await log_in(client, "hugo")
    listing = await client.get("/console/commerce/orders", headers=HTML)
    assert in_paris in listing.text
    assert in_lyon not in listing.text
    refused = await client.get(f"/console/commerce/orders/{in_lyon}", headers=HTML)
    assert refused.status_code == 403


async def test_the_order_page_speaks_french(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    number = stored_order(shop, "LYO-1")
    builders.user(shop.db, clock, locale="fr")
    await log_in(client)
    page = await client.get(f"/console/commerce/orders/{number}", headers=HTML)
    assert f"Commande {number}" in page.text
    assert "Click & collect · stock attribué" in page.text
    assert "passée" in page.text


async def _form_post(client: httpx.AsyncClient, url: str, page: str, **data: str) -> httpx.Response:
    from tests.web.test_console import csrf_in

    form = await client.get(page, headers=HTML)
    return await client.post(url, data={"csrf_token": csrf_in(form.text), **data}, headers=HTML)


async def test_staff_prepare_a_pickup_and_hand_it_over_at_the_counter(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    from tests.orders.order_builders import place_order

    placed = place_order(shop, [("ROBE-LIN-S", 1)], at="LYO-1")
    builders.user(shop.db, clock, "hugo", role="staff", store_ids=["LYO-1"])
    await log_in(client, "hugo")
    page = f"/console/commerce/orders/{placed.number}"
    for step in ("picking", "ready_for_pickup"):
        moved = await _form_post(
            client, f"{page}/fulfilments/{placed.fulfilment_id}/status", page, to=step
        )
        assert moved.status_code == 303, moved.text
    # Collecting is not a button on the order page: it needs the customer's code.
    refused = await _form_post(
        client, f"{page}/fulfilments/{placed.fulfilment_id}/status", page, to="collected"
    )
    assert refused.status_code == 422
    counter = "/console/commerce/pickups"
    waiting = await client.get(counter, params={"store": "LYO-1"}, headers=HTML)
    assert placed.number in waiting.text
    wrong = await _form_post(
        client, counter, counter, store="LYO-1", order=placed.number, code="ZZZZZZ"
    )
    assert wrong.status_code == 422
    assert "4" in wrong.text  # attempts left
    assert placed.code is not None
    scanned = await _form_post(
        client,
        counter,
        counter,
        store="LYO-1",
        scan=f"PARCOURS-PICKUP:{placed.number}:{placed.code}",
    )
    assert scanned.status_code == 200
    assert f"Order {placed.number} handed over." in scanned.text
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2
    elsewhere = await _form_post(
        client, counter, counter, store="PAR-1", order=placed.number, code=placed.code
    )
    assert elsewhere.status_code == 403  # not this user's store


async def test_the_returns_desk_takes_goods_back_and_restocks_them(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    from parcours.orders import lifecycle
    from tests.orders.order_builders import place_order

    placed = place_order(shop, [("ROBE-LIN-S", 2)], mode="home_delivery", at="WH-1", captured=True)
    with shop.db.transaction() as session:
        for step in ("picking", "shipped", "delivered"):
            lifecycle.transition(session, clock.now(), placed.fulfilment_id, step, "test")
    builders.user(shop.db, clock)
    await log_in(client)
    desk = "/console/commerce/returns"
    found = await client.get(desk, params={"order": placed.number}, headers=HTML)
    assert 'name="quantity_1"' in found.text
    too_many = await _form_post(
        client, desk, f"{desk}?order={placed.number}", order=placed.number, store="LYO-2",
        quantity_1="3", reason_1="too_small", condition_1="resaleable",
    )  # fmt: skip
    assert too_many.status_code == 400
    taken = await _form_post(
        client, desk, f"{desk}?order={placed.number}", order=placed.number, store="LYO-2",
        quantity_1="1", reason_1="too_small", condition_1="resaleable",
    )  # fmt: skip
    assert taken.status_code == 303
    assert shop.available("ROBE-LIN-S", "LYO-2") == 2  # 1 before, 1 back on the shelf
    page = await client.get(f"/console/commerce/orders/{placed.number}", headers=HTML)
    assert "R2026-000001" in page.text
