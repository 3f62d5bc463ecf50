"""`/v1/orders`, pickup verification and payment webhooks over HTTP: happy paths and
problem+json errors."""

from __future__ import annotations

import uuid

import httpx
import pytest

from parcours.orders import lifecycle, payments
from parcours.orders.models import Payment
from tests import builders
from tests.orders.conftest import Shop
from tests.orders.order_builders import Placed, place_order

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


def bearer(shop: Shop, *scopes: str) -> dict[str, str]:
    scopes = scopes or ("commerce:read", "commerce:write")
    return {"Authorization": f"Bearer {builders.api_key(shop.db, shop.clock, *scopes)}"}


def advance(shop: Shop, placed: Placed, *steps: str) -> None:
    for step in steps:
        with shop.db.transaction() as session:
            lifecycle.transition(session, shop.clock.now(), placed.fulfilment_id, step, "staff")


async def test_orders_are_listed_with_filters_and_read_in_detail(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    first = place_order(shop, [("ROBE-LIN-S", 1)])
    second = place_order(shop, [("BOUGIE-S", 2)], mode="home_delivery", at="WH-1")
    advance(shop, second, "picking")
    auth = bearer(shop, "commerce:read")
    page = (await client.get("/v1/orders", params={"limit": 1}, headers=auth)).json()
    assert [o["number"] for o in page["items"]] == [first.number]
    rest = await client.get(
        "/v1/orders", params={"limit": 1, "cursor": page["next_cursor"]}, headers=auth
    )
    assert [o["number"] for o in rest.json()["items"]] == [second.number]
    picking = await client.get("/v1/orders", params={"status": "picking"}, headers=auth)
    assert [o["number"] for o in picking.json()["items"]] == [second.number]
    mine = await client.get("/v1/orders", params={"customer": str(uuid.uuid4())}, headers=auth)
    assert mine.json()["items"] == []
    detail = (await client.get(f"/v1/orders/{first.number.lower()}", headers=auth)).json()
    assert detail["id"] == str(first.id)
    [fulfilment] = detail["fulfilments"]
    assert fulfilment["allowed_next"] == ["picking", "cancelled"]
    assert fulfilment["reason"] == "stock at LYO-1"
    assert [line["sku"] for line in detail["lines"]] == ["ROBE-LIN-S"]
    assert detail["payments"][0]["status"] == "pending"
    assert detail["timeline"][0]["kind"] == "placed"
    by_id = await client.get(f"/v1/orders/{second.id}", headers=auth)
    assert by_id.json()["status"] == "picking"
    missing = await client.get("/v1/orders/W2026-999999", headers=auth)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM


async def test_transitions_move_fulfilments_and_refuse_with_the_allowed_ones(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)])
    url = f"/v1/orders/{placed.number}/fulfilments/{placed.fulfilment_id}/transitions"
    auth = bearer(shop)
    moved = await client.post(url, json={"to": "picking"}, headers=auth)
    assert moved.status_code == 200, moved.text
    assert moved.json()["allowed_next"] == ["ready_for_pickup", "cancelled"]
    refused = await client.post(url, json={"to": "collected"}, headers=auth)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["allowed"] == ["ready_for_pickup", "cancelled"]
    unknown = await client.post(url, json={"to": "lost"}, headers=auth)
    assert unknown.status_code == 422
    other = f"/v1/orders/{placed.number}/fulfilments/{uuid.uuid4()}/transitions"
    assert (await client.post(other, json={"to": "picking"}, headers=auth)).status_code == 404
    read_only = await client.post(
        url, json={"to": "cancelled"}, headers=bearer(shop, "commerce:read")
    )
    assert read_only.status_code == 403


async def test_cancel_over_http_releases_stock_and_refuses_once_shipped(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)])
    auth = bearer(shop)
    done = await client.post(
        f"/v1/orders/{placed.id}/cancel", json={"reason": "changed mind"}, headers=auth
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "cancelled"
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3
    shipped = place_order(shop, [("BOUGIE-S", 1)], mode="home_delivery", at="WH-1")
    advance(shop, shipped, "picking", "shipped")
    late = await client.post(
        f"/v1/orders/{shipped.number}/cancel", json={"reason": "too late"}, headers=auth
    )
    assert late.status_code == 409
    assert "already shipped" in late.json()["detail"]
    empty = await client.post(f"/v1/orders/{shipped.number}/cancel", json={}, headers=auth)
    assert empty.status_code == 422


async def test_the_pickup_desk_verifies_codes_and_keeps_count_of_wrong_ones(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)], mode="reserve_in_store")
    advance(shop, placed, "picking", "ready_for_pickup")
    assert placed.code is not None
    auth = bearer(shop)
    desk = f"/v1/stores/{shop.locations['LYO-1']}/pickups/verify"
    wrong = "ZZZZZZ" if placed.code != "ZZZZZZ" else "YYYYYY"
    for left in (4, 3):
        refused = await client.post(
            desk, json={"order": placed.number, "code": wrong}, headers=auth
        )
        assert refused.status_code == 422
        assert refused.json()["attempts_left"] == left
    elsewhere = await client.post(
        f"/v1/stores/{shop.locations['PAR-1']}/pickups/verify",
        json={"order": placed.number, "code": placed.code},
        headers=auth,
    )
    assert elsewhere.status_code == 409
    ok = await client.post(desk, json={"order": placed.number, "code": placed.code}, headers=auth)
    assert ok.status_code == 200, ok.text
    assert ok.json()["fulfilment"]["status"] == "collected"
    assert ok.json()["payment_status"] == "captured"
    again = await client.post(
        desk, json={"order": placed.number, "code": placed.code}, headers=auth
    )
    assert again.status_code == 409
    assert "already collected" in again.json()["detail"]


async def test_a_return_is_created_once_per_idempotency_key(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)], provider="simulator", captured=True)
    advance(shop, placed, "picking", "ready_for_pickup", "collected")
    auth = {**bearer(shop), "Idempotency-Key": "return-1"}
    body = {
        "location_id": str(shop.locations["LYO-2"]),
        "lines": [{"line_no": 1, "quantity": 1, "reason": "too_small", "condition": "resaleable"}],
    }
    created = await client.post(f"/v1/orders/{placed.number}/returns", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["refund_amount"] == 8990
    assert created.json()["lines"][0]["restocked"] is True
    replay = await client.post(f"/v1/orders/{placed.number}/returns", json=body, headers=auth)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["number"] == created.json()["number"]
    too_many = {**body, "lines": [{**body["lines"][0], "quantity": 2}]}  # type: ignore[dict-item]
    refused = await client.post(
        f"/v1/orders/{placed.number}/returns", json=too_many, headers=bearer(shop)
    )
    assert refused.status_code == 400
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["errors"][0]["pointer"] == "#/lines/0/quantity"
    bad = {**body, "lines": [{**body["lines"][0], "reason": "bored"}]}  # type: ignore[dict-item]
    invalid = await client.post(
        f"/v1/orders/{placed.number}/returns", json=bad, headers=bearer(shop)
    )
    assert invalid.status_code == 422
    detail = (await client.get(f"/v1/orders/{placed.number}", headers=bearer(shop))).json()
    assert len(detail["returns"]) == 1
    assert detail["lines"][0]["returned_quantity"] == 1


async def test_payment_webhooks_are_authenticated_by_their_signature(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)], provider="simulator")
    with shop.db.transaction() as session:
        payment = session.query(Payment).filter_by(order_id=placed.id).one()
        raw, signature = payments.simulated_webhook(
            session, shop.clock.now(), payment, "payment.captured"
        )
    url = "/v1/payments/simulator/webhooks"
    headers = {"Parcours-Signature": signature, "Content-Type": "application/json"}
    first = await client.post(url, content=raw, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["replayed"] is False
    replay = await client.post(url, content=raw, headers=headers)
    assert replay.json()["replayed"] is True
    forged = await client.post(url, content=raw.replace(b"captured", b"failed"), headers=headers)
    assert forged.status_code == 400
    assert forged.headers["content-type"] == PROBLEM
    unsigned = await client.post(url, content=raw)
    assert unsigned.status_code == 400
    unknown = await client.post("/v1/payments/paypal/webhooks", content=raw, headers=headers)
    assert unknown.status_code == 404
    detail = (await client.get(f"/v1/orders/{placed.id}", headers=bearer(shop))).json()
    assert (detail["status"], detail["payment_status"]) == ("paid", "captured")


async def test_refusals_keep_their_english_detail_for_api_clients(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    auth = {**bearer(shop), "Accept-Language": "fr"}
    missing = await client.get("/v1/orders/W2026-999999", headers=auth)
    assert missing.json()["detail"] == "No order has the number 'W2026-999999'."
    placed = place_order(shop, [("ROBE-LIN-S", 2)], captured=True)
    url = f"/v1/orders/{placed.number}/fulfilments/{placed.fulfilment_id}/transitions"
    refused = await client.post(url, json={"to": "collected"}, headers=auth)
    assert refused.json()["detail"] == (
        "A click_and_collect fulfilment cannot go from allocated to collected; "
        "allowed next: picking, cancelled."
    )
    assert (refused.json()["current"], refused.json()["requested"]) == ("allocated", "collected")
    desk = f"/v1/stores/{shop.locations['LYO-1']}/pickups/verify"
    early = await client.post(desk, json={"order": placed.number, "code": "ZZZZZZ"}, headers=auth)
    assert early.json()["detail"] == (
        f"Order {placed.number} cannot be collected: it is not ready for pickup yet."
    )
    assert early.json()["fulfilment_status"] == "allocated"
    advance(shop, placed, "picking", "ready_for_pickup")
    wrong = "ZZZZZZ" if placed.code != "ZZZZZZ" else "YYYYYY"
    mistyped = await client.post(desk, json={"order": placed.number, "code": wrong}, headers=auth)
    assert mistyped.json()["detail"] == (
        f"This is not the pickup code of order {placed.number}: 4 attempt(s) left."
    )
    assert mistyped.json()["errors"] == [{"detail": "wrong pickup code", "pointer": "#/code"}]
    advance(shop, placed, "collected")
    late = await client.post(
        f"/v1/orders/{placed.number}/cancel", json={"reason": "too late"}, headers=auth
    )
    assert late.json()["detail"] == (
        f"Order {placed.number} cannot be cancelled: 1 fulfilment(s) already collected. "
        "Take the goods back as a return."
    )
    assert late.json()["handed_over"] == [str(placed.fulfilment_id)]
    line = {"line_no": 1, "quantity": 3, "reason": "too_small", "condition": "resaleable"}
    too_many = {"location_id": str(shop.locations["LYO-2"]), "lines": [line]}
    over = await client.post(f"/v1/orders/{placed.number}/returns", json=too_many, headers=auth)
    detail = (
        "Line 1 (ROBE-LIN-S): 3 unit(s) brought back but only 2 can be (bought 2, "
        "already returned 0, and only goods handed over count)."
    )
    assert over.json()["detail"] == detail
    assert over.json()["errors"] == [{"detail": detail, "pointer": "#/lines/0/quantity"}]
