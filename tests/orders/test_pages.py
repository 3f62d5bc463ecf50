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
    from tests.orders.order_builders import delivered_order

    placed = delivered_order(shop)
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


FRENCH = {**HTML, "Accept-Language": "fr"}


async def _french_post(
    client: httpx.AsyncClient, url: str, page: str, **data: str
) -> httpx.Response:
    from tests.web.test_console import csrf_in

    form = await client.get(page, headers=FRENCH)
    return await client.post(url, data={"csrf_token": csrf_in(form.text), **data}, headers=FRENCH)


async def test_the_order_page_says_its_refusals_in_french(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    from parcours.orders import lifecycle
    from tests.orders.order_builders import place_order

    placed = place_order(shop, [("ROBE-LIN-S", 1)], mode="home_delivery", at="WH-1")
    builders.user(shop.db, clock)
    await log_in(client)
    page = f"/console/commerce/orders/{placed.number}"
    step = f"{page}/fulfilments/{placed.fulfilment_id}/status"
    skipped = await _french_post(client, step, page, to="delivered")
    assert skipped.status_code == 422
    assert (
        "Cette étape n’est pas proposée par la page pour cette préparation ; rechargez la page."
        in skipped.text
    )
    with shop.db.transaction() as session:
        for status in ("picking", "shipped", "delivered"):
            lifecycle.transition(session, clock.now(), placed.fulfilment_id, status, "test")
    late = await _french_post(client, f"{page}/cancel", page, reason="trop tard")
    assert late.status_code == 409
    assert (
        f"La commande {placed.number} ne peut pas être annulée : 1 préparation(s) déjà "
        "dans l’état : livrée. Reprenez les articles par un retour." in late.text
    )
    listing = await client.get("/console/commerce/orders", params={"cursor": "x"}, headers=FRENCH)
    assert listing.status_code == 422
    assert "Ce curseur de page ne vient pas de cette liste." in listing.text


async def test_the_pickup_counter_says_its_refusals_in_french(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    from parcours.orders import lifecycle
    from tests.orders.order_builders import place_order

    placed = place_order(shop, [("ROBE-LIN-S", 1)], at="LYO-1")
    assert placed.code is not None
    wrong = "ZZZZZZ" if placed.code != "ZZZZZZ" else "YYYYYY"
    builders.user(shop.db, clock)
    await log_in(client)
    counter = "/console/commerce/pickups"
    number = placed.number

    async def hand_over(store: str, order: str, code: str) -> httpx.Response:
        return await _french_post(client, counter, counter, store=store, order=order, code=code)

    empty = await hand_over("LYO-1", "", "")
    assert empty.status_code == 422
    assert "Saisissez le numéro de la commande et son code de retrait, ou scannez son QR code." in (
        empty.text
    )
    unknown = await hand_over("LYO-1", "W1999-000001", wrong)
    assert unknown.status_code == 404
    assert "Aucune commande n’a le numéro &#39;W1999-000001&#39;." in unknown.text
    early = await hand_over("LYO-1", number, placed.code)
    assert early.status_code == 409
    assert f"La commande {number} ne peut pas être retirée : elle n’est pas encore prête." in (
        early.text
    )
    with shop.db.transaction() as session:
        for status in ("picking", "ready_for_pickup"):
            lifecycle.transition(session, clock.now(), placed.fulfilment_id, status, "test")
    elsewhere = await hand_over("PAR-1", number, placed.code)
    assert f"La commande {number} se retire dans un autre magasin, pas dans celui-ci." in (
        elsewhere.text
    )
    mistyped = await hand_over("LYO-1", number, wrong)
    assert mistyped.status_code == 422
    assert (
        f"Ce n’est pas le code de retrait de la commande {number} : 4 essai(s) restant(s)."
        in mistyped.text
    )
    assert (await hand_over("LYO-1", number, placed.code)).status_code == 200
    again = await hand_over("LYO-1", number, placed.code)
    assert f"La commande {number} ne peut pas être retirée : elle l’a déjà été." in again.text


async def test_the_pickup_counter_keeps_its_refusals_in_english_for_an_english_reader(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    from tests.orders.order_builders import place_order

    placed = place_order(shop, [("ROBE-LIN-S", 1)], at="LYO-1")
    builders.user(shop.db, clock)
    await log_in(client)
    counter = "/console/commerce/pickups"
    early = await _form_post(
        client, counter, counter, store="LYO-1", order=placed.number, code="ZZZZZZ"
    )
    assert early.status_code == 409
    assert f"Order {placed.number} cannot be collected: it is not ready for pickup yet." in (
        early.text
    )


async def test_the_returns_desk_says_its_refusals_in_french(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    from tests.orders.order_builders import delivered_order

    placed = delivered_order(shop)
    builders.user(shop.db, clock)
    await log_in(client)
    desk = "/console/commerce/returns"
    unknown = await client.get(desk, params={"order": "W1999-000001"}, headers=FRENCH)
    assert unknown.status_code == 404
    assert "Aucune commande n’a le numéro &#39;W1999-000001&#39;." in unknown.text
    found = f"{desk}?order={placed.number}"
    nothing = await _french_post(
        client, desk, found, order=placed.number, store="LYO-2", quantity_1="0"
    )
    assert nothing.status_code == 422
    assert "Choisissez au moins une unité à reprendre." in nothing.text
    too_many = await _french_post(
        client, desk, found, order=placed.number, store="LYO-2",
        quantity_1="3", reason_1="too_small", condition_1="resaleable",
    )  # fmt: skip
    assert too_many.status_code == 400
    said = (
        "Ligne 1 (ROBE-LIN-S) : 3 unité(s) rapportée(s) mais 2 seulement peuvent l’être "
        "(2 achetée(s), 0 déjà retournée(s), et seuls les articles remis comptent)."
    )
    assert f"<p>{said}</p>" in too_many.text
    assert f"<code>#/lines/0/quantity</code> {said}" in too_many.text


async def test_store_staff_are_refused_other_stores_in_french(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    in_lyon = stored_order(shop, "LYO-1")
    builders.user(shop.db, clock, "hugo", role="staff", store_ids=["PAR-1"])
    await log_in(client, "hugo")
    page = await client.get(f"/console/commerce/orders/{in_lyon}", headers=FRENCH)
    assert page.status_code == 403
    assert "Cette commande n’a été ni vendue ni retirée dans l’un de vos magasins." in page.text
    counter = "/console/commerce/pickups"
    elsewhere = await _french_post(client, counter, counter, store="LYO-1", order=in_lyon, code="Z")
    assert elsewhere.status_code == 403
    assert "Vous ne tenez pas le comptoir de retrait de ce magasin." in elsewhere.text
    desk = "/console/commerce/returns"
    other_desk = await _french_post(client, desk, desk, order=in_lyon, store="LYO-2")
    assert other_desk.status_code == 403
    assert "Vous ne tenez pas le comptoir des retours de ce magasin." in other_desk.text


async def test_store_staff_refusals_keep_their_english_detail_for_api_clients(
    client: httpx.AsyncClient, shop: Shop, clock: ManualClock
) -> None:
    in_lyon = stored_order(shop, "LYO-1")
    builders.user(shop.db, clock, "hugo", role="staff", store_ids=["PAR-1"])
    await log_in(client, "hugo")
    answer = await client.get(
        f"/console/commerce/orders/{in_lyon}",
        headers={"Accept": "application/json", "Accept-Language": "fr"},
    )
    assert answer.status_code == 403
    assert answer.json()["detail"] == (
        "This order was neither sold at nor collected from one of your stores."
    )
