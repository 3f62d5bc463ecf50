"""The customer's own order page, reached by the signed link of their emails."""

from __future__ import annotations

import httpx
import pytest

from parcours.orders import service
from tests.orders.conftest import Shop
from tests.orders.order_builders import delivered_order, place_order

pytestmark = pytest.mark.anyio
HTML = {"Accept": "text/html"}


def link_of(shop: Shop, number: str) -> str:
    with shop.db.transaction() as session:
        order = service.get_order_by_number(session, number)
        return service.order_link_path(session, shop.clock.now(), order)


async def test_the_customer_follows_and_cancels_their_order(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)])
    link = link_of(shop, placed.number)
    page = await client.get(link, headers=HTML)
    assert page.status_code == 200
    assert f"Commande {placed.number}" in page.text  # the order's language: French
    assert "Annuler ma commande" in page.text
    english = await client.get(link, params={"lang": "en"}, headers=HTML)
    assert "Cancel my order" in english.text
    assert shop.available("ROBE-LIN-S", "LYO-1") == 1
    cancelled = await client.post(f"{link}/cancel", headers=HTML)
    assert cancelled.status_code == 303
    after = await client.get(link, headers=HTML)
    assert "annulée" in after.text
    assert "Annuler ma commande" not in after.text
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3  # the stock is back


async def test_a_forged_or_altered_link_shows_nothing(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)])
    link = link_of(shop, placed.number)
    altered = await client.get(link[:-3] + "AAA", headers=HTML)
    assert altered.status_code == 422
    assert placed.number not in altered.text
    refused = await client.post(link[:-3] + "AAA" + "/cancel", headers=HTML)
    assert refused.status_code == 422
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2  # still reserved


async def test_the_customer_starts_a_return_and_the_store_receives_it_as_announced(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    from sqlalchemy import select

    from parcours.orders.models import Return
    from tests import builders
    from tests.web.test_console import csrf_in, log_in

    placed = delivered_order(shop)
    link = link_of(shop, placed.number)
    page = await client.get(link, params={"lang": "en"}, headers=HTML)
    assert 'id="return-form"' in page.text
    lyon_2 = f"store:{shop.locations['LYO-2']}"
    too_many = await client.post(
        f"{link}/return",
        data={"quantity_1": "3", "reason_1": "too_small", "where": lyon_2},
        headers=HTML,
    )
    assert too_many.status_code == 422
    elsewhere = await client.post(
        f"{link}/return",
        data={
            "quantity_1": "1",
            "reason_1": "too_small",
            "where": f"store:{shop.locations['WH-1']}",
        },
        headers=HTML,
    )
    assert elsewhere.status_code == 422  # a warehouse is not a store desk
    started = await client.post(
        f"{link}/return", data={"quantity_1": "1", "reason_1": "too_small", "where": lyon_2},
        headers=HTML,
    )  # fmt: skip
    assert started.status_code == 303
    shown = await client.get(link, params={"lang": "en"}, headers=HTML)
    assert "Return R2026-000001 requested" in shown.text
    assert "Bring the items to" in shown.text
    assert 'id="return-form"' not in shown.text  # one open request at a time
    assert shop.available("ROBE-LIN-S", "LYO-2") == 1  # nothing moved yet

    builders.user(shop.db, shop.clock, "hugo", role="staff", store_ids=["LYO-2"])
    await log_in(client, "hugo")
    desk = await client.get(
        "/console/commerce/returns", params={"order": placed.number}, headers=HTML
    )
    assert "R2026-000001" in desk.text
    assert 'name="quantity_1" min="0" max="2" value="1"' in desk.text
    taken = await client.post(
        "/console/commerce/returns",
        data={"csrf_token": csrf_in(desk.text), "order": placed.number, "store": "LYO-2",
              "quantity_1": "1", "reason_1": "too_small", "condition_1": "resaleable"},
        headers=HTML,
    )  # fmt: skip
    assert taken.status_code == 303
    assert shop.available("ROBE-LIN-S", "LYO-2") == 2
    with shop.db.transaction() as session:
        statuses = sorted(session.scalars(select(Return.status)))
    assert statuses == ["received", "refunded"]  # the request closed, the return refunded


async def test_the_customer_reads_the_refusals_of_their_page_in_french(
    client: httpx.AsyncClient, shop: Shop
) -> None:

    placed = delivered_order(shop)
    link = link_of(shop, placed.number)
    french = {**HTML, "Accept-Language": "fr"}
    line = {"quantity_1": "1", "reason_1": "too_small"}
    nowhere = await client.post(f"{link}/return", data=line, headers=french)
    assert nowhere.status_code == 422
    assert "Choisissez où vous déposerez ou enverrez les articles." in nowhere.text
    warehouse = {**line, "quantity_1": "3", "where": f"store:{shop.locations['WH-1']}"}
    refused = await client.post(f"{link}/return", data=warehouse, headers=french)
    assert refused.status_code == 422
    assert "La demande de retour n’est pas valide ; rien n’a été enregistré." in refused.text
    assert "<li>WH-1 ne prend pas les retours</li>" in refused.text
    assert "<li>2 unité(s) au plus peuvent être retournées</li>" in refused.text
    lyon_2 = {**line, "where": f"store:{shop.locations['LYO-2']}"}
    assert (await client.post(f"{link}/return", data=lyon_2, headers=french)).status_code == 303
    twice = await client.post(f"{link}/return", data=lyon_2, headers=french)
    assert twice.status_code == 409
    assert (
        f"Le retour R2026-000001 est déjà demandé pour la commande {placed.number} : "
        "déposez ou envoyez d’abord ces articles." in twice.text
    )
    late = await client.post(f"{link}/cancel", headers=french)
    assert late.status_code == 409
    assert (
        f"La commande {placed.number} ne peut pas être annulée : 1 préparation(s) déjà "
        "dans l’état : livrée. Reprenez les articles par un retour." in late.text
    )


async def test_an_altered_or_expired_link_is_said_in_the_reader_s_language(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    from datetime import timedelta

    from parcours.orders.service import LINK_VALIDITY

    placed = place_order(shop, [("ROBE-LIN-S", 1)])
    link = link_of(shop, placed.number)
    french = {**HTML, "Accept-Language": "fr"}
    altered = await client.get(link[:-3] + "AAA", headers=french)
    assert altered.status_code == 422
    assert "Ce lien n’est pas valide : il a été modifié ou tronqué." in altered.text
    english = await client.get(link[:-3] + "AAA", params={"lang": "en"}, headers=HTML)
    assert "This link is not valid: it was altered or cut." in english.text
    shop.clock.advance(LINK_VALIDITY + timedelta(days=1))
    expired = await client.get(link, headers=french)
    assert expired.status_code == 422
    assert "Ce lien a expiré : demandez-en un nouveau." in expired.text
