"""The profiles API: search, the whole profile, the timeline; scoped and audited."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from parcours.core.audit import SYSTEM_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from parcours.customers import identity
from parcours.customers.profile_timeline import TimelineEntry, TimelineQuery
from tests import builders
from tests.builders import event_row, order_row, utc

pytestmark = pytest.mark.anyio


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def lea(db: Database, clock: ManualClock) -> uuid.UUID:
    lyon = builders.location(db, clock, "LYO-1")
    profile_id = builders.known_person(
        db,
        clock,
        source="store",
        traits={"first_name": "Léa", "last_name": "Martin", "shoe_size": 38},
        user_id="u-lea",
        anonymous_id="a-lea",
        email="lea.martin@example.com",
        loyalty_card="LC-0001",
    )
    builders.log_events(
        db,
        event_row(utc(2026, 1, 5), type="page", event="Robes", anonymous_id="a-lea"),
        order_row(utc(2026, 1, 6), 59.5, ("R-1", "Robes"), user_id="u-lea"),
        order_row(
            utc(2026, 2, 6),
            40,
            ("C-1", "Chaussures"),
            channel="store",
            store_id=lyon,
            user_id="u-lea",
        ),
    )
    return profile_id  # type: ignore[no-any-return]


async def test_a_profile_answers_with_traits_identifiers_and_computed_traits(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "customers:read")
    profile_id = lea(db, clock)
    response = await client.get(f"/v1/customers/{profile_id}", headers=bearer(key))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(profile_id)
    assert body["merged_from"] is None
    assert body["first_name"] == "Léa"
    assert body["traits"]["shoe_size"]["value"] == 38
    assert body["traits"]["shoe_size"]["source"] == "store"
    assert {(i["kind"], i["value"]) for i in body["identifiers"]} >= {
        ("email", "lea.martin@example.com"),
        ("loyalty_card", "LC-0001"),
        ("user_id", "u-lea"),
    }
    computed = body["computed"]
    assert computed["orders_count"] == 2
    assert computed["revenue"] == {"amount": 9950, "currency": "EUR"}
    assert computed["average_basket"] == {"amount": 4975, "currency": "EUR"}
    assert computed["channels"] == ["web", "store"]
    assert computed["preferred_store"]["name"] == "Store LYO-1"
    assert computed["last_purchase"]["amount"] == {"amount": 4000, "currency": "EUR"}
    assert computed["last_purchase"]["channel"] == "store"
    assert computed["rfm"] == {"recency": 3, "frequency": 3, "monetary": 3}
    with db.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.viewed")
        ).one()
    assert entry.target_id == str(profile_id)


async def test_a_merged_id_answers_with_the_surviving_profile(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "customers:read")
    profile_id = lea(db, clock)
    other = builders.known_person(db, clock, email="l.martin@example.org")
    with db.transaction() as session:
        identity.merge_profiles(session, clock.now(), SYSTEM_ACTOR, profile_id, other, "same")
    body = (await client.get(f"/v1/customers/{other}", headers=bearer(key))).json()
    assert (body["id"], body["merged_from"]) == (str(profile_id), str(other))
    timeline = await client.get(f"/v1/customers/{other}/timeline", headers=bearer(key))
    assert timeline.json()["items"][0]["kind"] == "merge"


async def test_search_by_identifier_or_name_through_the_api(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "customers:read")
    profile_id = lea(db, clock)
    builders.known_person(db, clock, email="paul@example.com", traits={"last_name": "Dupont"})
    for q in ("LEA.MARTIN@EXAMPLE.COM", "LC-0001", "mart", "Léa"):
        found = await client.get("/v1/customers", params={"q": q}, headers=bearer(key))
        assert [c["id"] for c in found.json()["items"]] == [str(profile_id)], q
    everyone = await client.get("/v1/customers?limit=1", headers=bearer(key))
    assert everyone.json()["next_cursor"]
    with db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("customer.searched") == 4
    assert "customer.listed" in actions


async def test_the_timeline_pages_through_every_channel_with_store_names(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "customers:read")
    profile_id = lea(db, clock)
    first = await client.get(f"/v1/customers/{profile_id}/timeline?limit=2", headers=bearer(key))
    assert first.status_code == 200
    page = first.json()
    assert [e["at"][:10] for e in page["items"]] == ["2026-02-06", "2026-01-06"]
    purchase = page["items"][0]
    assert purchase["store"]["name"] == "Store LYO-1"
    assert purchase["amount"] == {"amount": 4000, "currency": "EUR"}
    assert purchase["channel"] == "store"
    assert purchase["detail"]["properties"]["products"][0]["sku"] == "C-1"
    rest = await client.get(
        f"/v1/customers/{profile_id}/timeline",
        params={"cursor": page["next_cursor"]},
        headers=bearer(key),
    )
    assert [e["kind"] for e in rest.json()["items"]] == ["page"]
    assert rest.json()["next_cursor"] is None


async def test_sources_wired_by_the_registry_join_the_timeline(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "customers:read")
    profile_id = lea(db, clock)
    asked: list[TimelineQuery] = []

    def returns(session: Any, query: TimelineQuery) -> list[TimelineEntry]:
        asked.append(query)
        return [TimelineEntry(utc(2026, 3, 1), "return:R-9", "return", "R-9", channel="store")]

    app = client._transport.app  # type: ignore[attr-defined]
    app.state.timeline_sources = [returns]
    items = (await client.get(f"/v1/customers/{profile_id}/timeline", headers=bearer(key))).json()[
        "items"
    ]
    assert items[0]["key"] == "return:R-9"
    assert asked[0].profile_id == profile_id
    assert ("user_id", "u-lea") in asked[0].identifiers


async def test_profile_reads_need_the_customers_read_scope(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "commerce:read")
    profile_id = lea(db, clock)
    for url in (
        "/v1/customers?q=lea",
        f"/v1/customers/{profile_id}",
        f"/v1/customers/{profile_id}/timeline",
    ):
        response = await client.get(url, headers=bearer(key))
        assert response.status_code == 403, url
        assert "customers:read" in response.json()["detail"]


async def test_bad_profile_requests_get_problems_that_say_what_is_wrong(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "customers:read")
    profile_id = lea(db, clock)
    unknown = await client.get(f"/v1/customers/{uuid.uuid4()}/timeline", headers=bearer(key))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    cursor = await client.get(
        f"/v1/customers/{profile_id}/timeline?cursor=nope", headers=bearer(key)
    )
    assert cursor.status_code == 422
    assert cursor.json()["errors"][0]["parameter"] == "cursor"
    limit = await client.get(f"/v1/customers/{profile_id}/timeline?limit=0", headers=bearer(key))
    assert limit.status_code == 422
