"""`/v1/carts` and `/v1/checkout` over HTTP: a cart to an order, replays and refusals."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from parcours.orders import delivery
from parcours.orders.models import Order
from tests import builders
from tests.orders.conftest import Shop

pytestmark = pytest.mark.anyio
ADDRESS = {"name": "Léa Martin", "line1": "3 rue Mercière", "postcode": "69002", "city": "Lyon"}


def bearer(shop: Shop, *scopes: str) -> dict[str, str]:
    scopes = scopes or ("commerce:read", "commerce:write")
    return {"Authorization": f"Bearer {builders.api_key(shop.db, shop.clock, *scopes)}"}


async def new_cart(client: httpx.AsyncClient, auth: dict[str, str], **lines: int) -> dict[str, Any]:
    body = {
        "channel": "web",
        "anonymous_id": "visitor-42",
        "lines": [{"sku": s.replace("_", "-"), "quantity": q} for s, q in lines.items()],
    }
    response = await client.post("/v1/carts", json=body, headers=auth)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def orders_count(shop: Shop) -> int:
    with shop.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Order)) or 0


def started_events(shop: Shop) -> list[str]:
    from sqlalchemy import text

    with shop.db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT properties FROM events WHERE event = 'Checkout Started' ORDER BY seq")
        ).all()
    out = []
    for (properties,) in rows:
        if isinstance(properties, str):
            import json

            properties = json.loads(properties)
        out.append(properties["cart_id"])
    return out


async def test_a_cart_becomes_an_order_and_a_replayed_key_places_it_once(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    auth = bearer(shop)
    cart = await new_cart(client, auth, ROBE_LIN_S=1)
    changed = await client.put(
        f"/v1/carts/{cart['id']}/lines/BOUGIE-S", json={"quantity": 2}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["total"] == 8990 + 2 * 1990
    options = await client.get(
        f"/v1/carts/{cart['id']}/delivery-options", params={"postcode": "69002"}, headers=auth
    )
    assert options.status_code == 200, options.text
    by_mode = {(o["mode"], o["store_code"]): o for o in options.json()["options"]}
    assert by_mode[("home_delivery", None)]["available"] is True
    assert by_mode[("click_and_collect", "LYO-2")]["available"] is True
    # Reaching the delivery step is the cart's `Checkout Started`, recorded once.
    await client.get(f"/v1/carts/{cart['id']}/delivery-options", headers=auth)
    assert started_events(shop) == [cart["id"]]
    assert by_mode[("click_and_collect", "LYO-1")]["why_not"] == (
        "not enough stock of BOUGIE-S at LYO-1: 0 of 2"
    )
    body = {
        "cart_id": cart["id"],
        "mode": "click_and_collect",
        "store_id": str(shop.locations["LYO-2"]),
        "email": "lea@example.com",
    }
    headers = {**auth, "Idempotency-Key": "checkout-1"}
    first = await client.post("/v1/checkout", json=body, headers=headers)
    assert first.status_code == 201, first.text
    order = first.json()
    assert order["number"] == "W2026-000001"
    [fulfilment] = order["fulfilments"]
    assert len(fulfilment["pickup_code"]) == 6
    assert fulfilment["pickup_qr_svg"].startswith("<svg")  # the counter scans it
    assert fulfilment["skus"] == {"ROBE-LIN-S": 1, "BOUGIE-S": 2}
    again = await client.post("/v1/checkout", json=body, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == order["id"]
    other = await client.post(
        "/v1/checkout", json={**body, "email": "someone@else.fr"}, headers=headers
    )
    assert other.status_code == 409  # the key already placed a different request's order
    assert orders_count(shop) == 1
    assert shop.available("ROBE-LIN-S", "LYO-2") == 0
    after = await client.get(f"/v1/carts/{cart['id']}", headers=auth)
    assert (after.json()["status"], after.json()["order_id"]) == ("converted", order["id"])


async def test_a_shortage_is_a_409_problem_naming_the_sku_and_nothing_is_held(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    auth = bearer(shop)
    cart = await new_cart(client, auth, ROBE_LIN_M=2)
    response = await client.post(
        "/v1/checkout",
        json={
            "cart_id": cart["id"],
            "mode": "home_delivery",
            "address": ADDRESS,
            "email": "a@b.fr",
        },
        headers={**auth, "Idempotency-Key": "short-1"},
    )
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["sku"], problem["requested"], problem["available"]) == ("ROBE-LIN-M", 2, 1)
    assert orders_count(shop) == 0
    assert shop.available("ROBE-LIN-M", "LYO-1") == 1
    # The key was not used up by the refusal: the same request may be retried.
    with shop.db.transaction() as session:
        delivery.configure_store(
            session, shop.clock.now(), shop.locations["LYO-1"], daily_ship_capacity=3
        )
    await client.put(f"/v1/carts/{cart['id']}/lines/ROBE-LIN-M", json={"quantity": 1}, headers=auth)
    retried = await client.post(
        "/v1/checkout",
        json={
            "cart_id": cart["id"],
            "mode": "home_delivery",
            "address": ADDRESS,
            "email": "a@b.fr",
        },
        headers={**auth, "Idempotency-Key": "short-1"},
    )
    assert retried.status_code == 201, retried.text


async def test_bad_cart_input_is_a_422_with_pointers(client: httpx.AsyncClient, shop: Shop) -> None:
    auth = bearer(shop)
    cart = await new_cart(client, auth)
    too_many = await client.put(
        f"/v1/carts/{cart['id']}/lines/ROBE-LIN-S", json={"quantity": 100}, headers=auth
    )
    assert too_many.status_code == 422
    unknown = await client.put(
        f"/v1/carts/{cart['id']}/lines/NOPE", json={"quantity": 1}, headers=auth
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["pointer"] == "#/sku"
    missing = await client.get(f"/v1/carts/{uuid.uuid4()}", headers=auth)
    assert missing.status_code == 404
    no_store = await client.post(
        "/v1/checkout",
        json={"cart_id": cart["id"], "mode": "drive", "email": "a@b.fr"},
        headers=auth,
    )
    assert no_store.status_code == 422
    pointers = {e["pointer"] for e in no_store.json()["errors"]}
    assert pointers == {"#/store_id", "#/slot_id"}


async def test_checkout_needs_the_write_scope(client: httpx.AsyncClient, shop: Shop) -> None:
    cart = await new_cart(client, bearer(shop), BOUGIE_S=1)
    reader = bearer(shop, "commerce:read")
    response = await client.post(
        "/v1/checkout",
        json={
            "cart_id": cart["id"],
            "mode": "home_delivery",
            "address": ADDRESS,
            "email": "a@b.fr",
        },
        headers=reader,
    )
    assert response.status_code == 403
    assert (await client.get(f"/v1/carts/{cart['id']}", headers=reader)).status_code == 200


async def test_logging_in_merges_carts_over_http(client: httpx.AsyncClient, shop: Shop) -> None:
    auth = bearer(shop)
    customer = str(shop.customer_id)
    mine = await client.post(
        "/v1/carts",
        json={
            "channel": "web",
            "customer_id": customer,
            "lines": [{"sku": "BOUGIE-S", "quantity": 1}],
        },
        headers=auth,
    )
    visitor = await new_cart(client, auth, BOUGIE_S=2)
    merged = await client.post(
        f"/v1/carts/{visitor['id']}/customer", json={"customer_id": customer}, headers=auth
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["id"] == mine.json()["id"]
    assert [(x["sku"], x["quantity"]) for x in merged.json()["lines"]] == [("BOUGIE-S", 3)]
    unknown = await client.post(
        f"/v1/carts/{mine.json()['id']}/customer",
        json={"customer_id": str(uuid.uuid4())},
        headers=auth,
    )
    assert unknown.status_code == 404
