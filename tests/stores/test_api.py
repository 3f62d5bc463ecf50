"""The store network over HTTP: /v1/stores writes, exceptions and the locator endpoint."""

import uuid
from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy.orm import Session

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


def bearer(secret: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **headers}


def writer(db: Database, clock: ManualClock) -> str:
    return builders.api_key(db, clock, "commerce:read", "commerce:write")


async def test_a_store_is_created_once_per_idempotency_key(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = writer(db, clock)
    body = builders.store_row("NCE-1", city="Nice", email="nice@maison-lavande.example")
    headers = bearer(key, **{"Idempotency-Key": "open-nice"})
    first = await client.post("/v1/stores", json=body, headers=headers)
    again = await client.post("/v1/stores", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json() == again.json()
    assert first.json()["email"] == "nice@maison-lavande.example"
    listed = await client.get("/v1/stores", headers=bearer(key))
    assert [s["code"] for s in listed.json()["items"]] == ["NCE-1"]
    reused = await client.post("/v1/stores", json={**body, "name": "Autre"}, headers=headers)
    assert reused.status_code == 409


async def test_overlapping_hours_are_a_422_pointing_at_the_day(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = writer(db, clock)
    body = builders.store_row(opening_hours={"fri": [["09:00", "13:00"], ["12:30", "19:00"]]})
    response = await client.post("/v1/stores", json=body, headers=bearer(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["pointer"] == "#/opening_hours/fri/1"
    assert (await client.get("/v1/stores", headers=bearer(key))).json()["items"] == []


async def test_writing_needs_the_commerce_write_scope(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    reader = builders.api_key(db, clock, "commerce:read")
    response = await client.post("/v1/stores", json=builders.store_row(), headers=bearer(reader))
    assert response.status_code == 403


async def test_a_store_is_changed_then_deactivated(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = writer(db, clock)
    created = (
        await client.post("/v1/stores", json=builders.store_row(), headers=bearer(key))
    ).json()
    url = f"/v1/stores/{created['id']}"
    changed = await client.patch(
        url, json={"phone": "+33 4 72 00 00 00", "services": ["drive"]}, headers=bearer(key)
    )
    assert changed.status_code == 200
    assert changed.json()["services"] == ["drive"]
    bad = await client.patch(url, json={"services": ["teleportation"]}, headers=bearer(key))
    assert bad.status_code == 422
    unknown_field = await client.patch(url, json={"active": True}, headers=bearer(key))
    assert unknown_field.status_code == 422
    gone = await client.post(f"{url}/deactivate", headers=bearer(key))
    assert gone.json()["active"] is False
    missing = await client.patch(f"/v1/stores/{uuid.uuid4()}", json={}, headers=bearer(key))
    assert missing.status_code == 404


async def test_exceptions_are_put_listed_and_deleted_by_date(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = writer(db, clock)
    created = (
        await client.post("/v1/stores", json=builders.store_row(), headers=bearer(key))
    ).json()
    url = f"/v1/stores/{created['id']}/exceptions"
    closed = await client.put(
        f"{url}/2027-01-01", json={"label": "Jour de l'an"}, headers=bearer(key)
    )
    assert closed.json() == {
        "day": "2027-01-01",
        "closed": True,
        "hours": [],
        "label": "Jour de l'an",
    }
    special = await client.put(
        f"{url}/2026-12-20", json={"hours": [["10:00", "18:00"]]}, headers=bearer(key)
    )
    assert special.json()["closed"] is False
    overlapping = await client.put(
        f"{url}/2026-12-13",
        json={"hours": [["10:00", "18:00"], ["17:00", "19:00"]]},
        headers=bearer(key),
    )
    assert overlapping.status_code == 422
    assert overlapping.json()["errors"][0]["pointer"] == "#/hours/1"
    listed = await client.get(url, headers=bearer(key))
    assert [e["day"] for e in listed.json()] == ["2026-12-20", "2027-01-01"]
    assert (await client.delete(f"{url}/2027-01-01", headers=bearer(key))).status_code == 204
    assert (await client.delete(f"{url}/2027-01-01", headers=bearer(key))).status_code == 404
    bad_day = await client.put(f"{url}/2027-02-30", json={}, headers=bearer(key))
    assert bad_day.status_code == 422


async def test_the_locator_finds_stores_near_a_postcode_with_their_stock(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.add_store(db, clock, "LYO-1", services=["click_and_collect", "drive"])
    builders.add_store(db, clock, "PAR-1", lat=48.8566, lon=2.3522, city="Paris", postcode="75001")
    key = builders.api_key(db, clock, "commerce:read")
    app = client._transport.app  # type: ignore[attr-defined]

    def lookup(session: Session, sku: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        return dict.fromkeys(ids, 3) if sku == "LAV-001" else {}

    app.state.stock_lookup = lookup
    response = await client.get(
        "/v1/stores/nearest?postcode=69005&sku=LAV-001&limit=2", headers=bearer(key)
    )
    assert response.status_code == 200
    body = response.json()
    assert [(s["code"], s["stock"]) for s in body["items"]] == [("LYO-1", 3), ("PAR-1", 3)]
    lyon = body["items"][0]
    assert lyon["distance_km"] < 2
    assert {"open_now", "next_opening", "next_opening_local", "services"} <= set(lyon)
    assert lyon["next_opening_local"].endswith("+01:00") or lyon["next_opening_local"].endswith(
        "+02:00"
    )
    by_city = await client.get("/v1/stores/nearest?city=paris&service=drive", headers=bearer(key))
    assert [s["code"] for s in by_city.json()["items"]] == ["LYO-1"]
    by_point = await client.get(
        "/v1/stores/nearest?lat=48.85&lon=2.35&limit=1", headers=bearer(key)
    )
    assert by_point.json()["items"][0]["code"] == "PAR-1"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 422),
        ("?lat=45", 422),
        ("?lat=95&lon=4", 422),
        ("?postcode=ABCDE", 422),
        ("?city=Atlantis", 404),
        ("?city=Lyon&service=teleport", 422),
        ("?city=Lyon&limit=0", 422),
    ],
)
async def test_the_locator_refuses_bad_searches_clearly(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, query: str, status: int
) -> None:
    key = builders.api_key(db, clock, "commerce:read")
    response = await client.get(f"/v1/stores/nearest{query}", headers=bearer(key))
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM


async def test_the_locator_needs_an_api_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/stores/nearest?city=Lyon")).status_code == 401


async def test_refusals_stay_in_english_for_api_clients(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = writer(db, clock)
    french = bearer(key, **{"Accept-Language": "fr"})
    store = (await client.post("/v1/stores", json=builders.store_row(), headers=french)).json()
    changed = await client.patch(
        f"/v1/stores/{store['id']}",
        json={"email": "nowhere", "opening_hours": {"mon": [["10:00", "09:00"], ["9h"]]}},
        headers=french,
    )
    assert changed.status_code == 422
    assert changed.json()["detail"] == f"The changes to store {store['code']!r} are invalid."
    assert [e["detail"] for e in changed.json()["errors"]] == [
        "is not an email address",
        "opens at 10:00 but closes at 09:00: the opening must come first "
        "(ranges cannot cross midnight; split them at 23:59 and 00:00)",
        'must be a ["HH:MM", "HH:MM"] pair',
    ]
    url = f"/v1/stores/{store['id']}/exceptions/2027-01-01"
    missing = await client.delete(url, headers=french)
    assert missing.json()["detail"] == "The store has no exception on 2027-01-01."
    postcode = await client.get("/v1/stores/nearest?postcode=ABCDE", headers=french)
    assert postcode.json()["detail"] == (
        "'ABCDE' is not a French postcode: give five digits, such as 69002."
    )
    assert postcode.json()["errors"] == [{"detail": "must be five digits", "parameter": "postcode"}]
    city = await client.get("/v1/stores/nearest?city=Atlantis", headers=french)
    assert city.json()["detail"] == (
        "No known city is called 'Atlantis'; check the spelling or search by postcode instead."
    )
    service = await client.get("/v1/stores/nearest?city=Lyon&service=teleport", headers=french)
    assert service.json()["detail"] == (
        "Unknown service 'teleport'; use one of click_and_collect, reserve_in_store, drive, "
        "ship_from_store, returns, after_sales."
    )
