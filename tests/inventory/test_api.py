"""`/v1/inventory`: movements, stock, history, reservations and availability over HTTP."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders

pytestmark = pytest.mark.anyio
SKU = "LAV-042-S"


def bearer(db: Database, clock: ManualClock, *scopes: str) -> dict[str, str]:
    scopes = scopes or ("commerce:read", "commerce:write")
    return {"Authorization": f"Bearer {builders.api_key(db, clock, *scopes)}"}


async def test_movements_are_recorded_and_shown_per_location(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, SKU)
    auth = bearer(db, clock)
    response = await client.post(
        "/v1/inventory/movements",
        json={
            "movements": [
                {"sku": SKU, "location_id": str(lyon), "kind": "receipt", "quantity": 7},
                {"sku": SKU, "location_id": str(lyon), "kind": "sale", "quantity": 2},
            ]
        },
        headers=auth,
    )
    assert response.status_code == 201, response.text
    assert [m["quantity"] for m in response.json()["movements"]] == [7, -2]
    stock = (await client.get("/v1/inventory/stock", params={"sku": SKU}, headers=auth)).json()
    [where] = stock["locations"]
    assert (where["on_hand"], where["reserved"], where["available"]) == (5, 0, 5)
    at = await client.get(f"/v1/inventory/locations/{lyon}/stock", headers=auth)
    assert [item["sku"] for item in at.json()["items"]] == [SKU]
    missing = await client.get(f"/v1/inventory/locations/{uuid.uuid4()}/stock", headers=auth)
    assert missing.status_code == 404


async def test_a_bad_movement_is_422_with_a_pointer_and_nothing_is_recorded(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    auth = bearer(db, clock)
    good = {"sku": SKU, "location_id": str(lyon), "kind": "receipt", "quantity": 3}
    for bad, pointer in [
        ({**good, "quantity": -3}, "#/movements/1/quantity"),
        ({**good, "quantity": 1.5}, "#/movements/1/quantity"),
        ({**good, "location_id": str(uuid.uuid4())}, "#/movements/1/location_id"),
    ]:
        response = await client.post(
            "/v1/inventory/movements", json={"movements": [good, bad]}, headers=auth
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert pointer in [e["pointer"] for e in response.json()["errors"]]
    stock = (await client.get("/v1/inventory/stock", params={"sku": SKU}, headers=auth)).json()
    assert stock["locations"] == []


async def test_movement_history_pages_with_a_cursor(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    for _ in range(3):
        builders.receive(db, clock, SKU, lyon, 1)
    auth = bearer(db, clock)
    first = (
        await client.get("/v1/inventory/movements", params={"sku": SKU, "limit": 2}, headers=auth)
    ).json()
    assert len(first["items"]) == 2
    rest = (
        await client.get(
            "/v1/inventory/movements",
            params={"sku": SKU, "limit": 2, "cursor": first["next_cursor"]},
            headers=auth,
        )
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None


async def test_a_reservation_lifecycle_over_http(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 3)
    auth = bearer(db, clock)
    body = {"sku": SKU, "location_id": str(lyon), "quantity": 2, "kind": "click_and_collect"}
    made = await client.post("/v1/inventory/reservations", json=body, headers=auth)
    assert made.status_code == 201, made.text
    held = made.json()
    assert held["status"] == "active"
    refused = await client.post("/v1/inventory/reservations", json=body, headers=auth)
    assert refused.status_code == 409
    assert refused.json()["available"] == 1
    assert "1 available to promise" in refused.json()["detail"]
    released = await client.post(f"/v1/inventory/reservations/{held['id']}/release", headers=auth)
    assert released.json()["status"] == "released"
    again = await client.post(f"/v1/inventory/reservations/{held['id']}/release", headers=auth)
    assert again.status_code == 200
    consumed = await client.post(f"/v1/inventory/reservations/{held['id']}/consume", headers=auth)
    assert consumed.status_code == 409
    assert "already released" in consumed.json()["detail"]
    unknown = await client.post(f"/v1/inventory/reservations/{uuid.uuid4()}/release", headers=auth)
    assert unknown.status_code == 404


async def test_consuming_a_reservation_over_http_records_the_sale(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 3)
    auth = bearer(db, clock)
    body = {"sku": SKU, "location_id": str(lyon), "quantity": 1}
    held = (await client.post("/v1/inventory/reservations", json=body, headers=auth)).json()
    consumed = await client.post(
        f"/v1/inventory/reservations/{held['id']}/consume",
        json={"reference": "order-1"},
        headers=auth,
    )
    assert consumed.json()["status"] == "consumed"
    got = (await client.get(f"/v1/inventory/reservations/{held['id']}", headers=auth)).json()
    assert got["status"] == "consumed"
    history = (
        await client.get("/v1/inventory/movements", params={"sku": SKU}, headers=auth)
    ).json()
    assert history["items"][-1]["reference"] == "order-1"


async def test_releasing_an_expired_reservation_is_409_with_its_status(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 3)
    auth = bearer(db, clock)
    body = {"sku": SKU, "location_id": str(lyon), "quantity": 1, "kind": "cart"}
    held = (await client.post("/v1/inventory/reservations", json=body, headers=auth)).json()
    clock.advance(timedelta(hours=2))
    response = await client.post(f"/v1/inventory/reservations/{held['id']}/release", headers=auth)
    assert response.status_code == 409
    assert response.json()["reservation_status"] == "expired"


async def test_a_reservation_id_or_an_idempotency_key_reserves_once(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.receive(db, clock, SKU, lyon, 10)
    auth = bearer(db, clock)
    chosen = str(uuid.uuid4())
    body = {"id": chosen, "sku": SKU, "location_id": str(lyon), "quantity": 2}
    first = await client.post("/v1/inventory/reservations", json=body, headers=auth)
    again = await client.post("/v1/inventory/reservations", json=body, headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == chosen
    keyed = {**auth, "Idempotency-Key": "checkout-7"}
    plain = {"sku": SKU, "location_id": str(lyon), "quantity": 1}
    one = await client.post("/v1/inventory/reservations", json=plain, headers=keyed)
    two = await client.post("/v1/inventory/reservations", json=plain, headers=keyed)
    assert two.headers["idempotent-replayed"] == "true"
    assert one.json()["id"] == two.json()["id"]
    reused = await client.post(
        "/v1/inventory/reservations", json={**plain, "quantity": 2}, headers=keyed
    )
    assert reused.status_code == 409
    stock = (await client.get("/v1/inventory/stock", params={"sku": SKU}, headers=auth)).json()
    assert stock["locations"][0]["reserved"] == 3


async def test_a_movement_of_a_sku_not_in_the_catalogue_is_422_with_its_pointer(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, SKU)
    auth = bearer(db, clock)
    movements = [
        {"sku": SKU, "location_id": str(lyon), "kind": "receipt", "quantity": 3},
        {"sku": "GHOST", "location_id": str(lyon), "kind": "receipt", "quantity": 1},
    ]
    response = await client.post(
        "/v1/inventory/movements", json={"movements": movements}, headers=auth
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["pointer"] == "#/movements/1/sku"
    assert "not in the catalogue" in error["detail"]
    stock = (await client.get("/v1/inventory/stock", params={"sku": SKU}, headers=auth)).json()
    assert stock["locations"] == []


async def test_a_replayed_movement_batch_is_recorded_once(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, SKU)
    auth = {**bearer(db, clock), "Idempotency-Key": "delivery-12"}
    batch = {
        "movements": [{"sku": SKU, "location_id": str(lyon), "kind": "receipt", "quantity": 4}]
    }
    for _ in range(2):
        assert (
            await client.post("/v1/inventory/movements", json=batch, headers=auth)
        ).status_code == 201
    stock = (await client.get("/v1/inventory/stock", params={"sku": SKU}, headers=auth)).json()
    assert stock["locations"][0]["on_hand"] == 4


async def test_transfers_over_http(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    depot = builders.location(db, clock, "WH-01", kind="warehouse")
    builders.receive(db, clock, SKU, depot, 5)
    auth = bearer(db, clock)
    body = {"sku": SKU, "from_location_id": str(depot), "to_location_id": str(lyon), "quantity": 2}
    moved = await client.post("/v1/inventory/transfers", json=body, headers=auth)
    assert [m["kind"] for m in moved.json()["movements"]] == ["transfer_out", "transfer_in"]
    too_many = await client.post(
        "/v1/inventory/transfers", json={**body, "quantity": 9}, headers=auth
    )
    assert too_many.status_code == 409


async def test_availability_per_channel_applies_the_channel_rules(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    depot = builders.location(db, clock, "WH-01", kind="warehouse")
    builders.receive(db, clock, SKU, lyon, 2)
    builders.receive(db, clock, SKU, depot, 4)
    auth = bearer(db, clock)
    rule = await client.put(
        "/v1/inventory/channel-rules/web", json={"store_shown_above": 2}, headers=auth
    )
    assert rule.json() == {
        "channel": "web",
        "include_stores": True,
        "include_warehouses": True,
        "store_shown_above": 2,
    }
    web = await client.get(
        "/v1/inventory/availability", params={"channel": "web", "sku": [SKU, "NONE"]}, headers=auth
    )
    assert web.json()["items"] == [{"sku": SKU, "available": 4}, {"sku": "NONE", "available": 0}]
    store = await client.get(
        "/v1/inventory/availability", params={"channel": "store", "sku": SKU}, headers=auth
    )
    assert store.json()["items"] == [{"sku": SKU, "available": 6}]
    rules = await client.get("/v1/inventory/channel-rules", headers=auth)
    assert [r["channel"] for r in rules.json()] == ["web"]


async def test_writing_needs_the_commerce_write_scope(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    reader = bearer(db, clock, "commerce:read")
    body = {"sku": SKU, "location_id": str(lyon), "quantity": 1}
    assert (
        await client.post("/v1/inventory/reservations", json=body, headers=reader)
    ).status_code == 403
    assert (
        await client.get("/v1/inventory/stock", params={"sku": SKU}, headers=reader)
    ).status_code == 200
