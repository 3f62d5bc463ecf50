"""The customer's own order page, reached by the signed link of their emails."""

from __future__ import annotations

import httpx
import pytest

from parcours.orders import service
from tests.orders.conftest import Shop
from tests.orders.order_builders import place_order

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
