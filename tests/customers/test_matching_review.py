"""The review queue through the API (secret keys) and the console (admin, marketer)."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from sqlalchemy import select

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from parcours.customers import identity
from tests import builders
from tests.customers.test_matching_profiles import two_sources
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio
RUN = {"source_a": "import:pos", "source_b": "web", "lower": 0.5, "upper": 1.0}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_run_and_its_decisions_through_the_api(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    shop = two_sources(db, clock)
    key = bearer(builders.api_key(db, clock, "customers:read", "customers:write"))
    created = await client.post(
        "/v1/customers/matching/runs", json=RUN, headers={**key, "Idempotency-Key": "run-1"}
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["profiles_a"], run["profiles_b"], run["queued"]) == (3, 4, 3)
    replay = await client.post(
        "/v1/customers/matching/runs", json=RUN, headers={**key, "Idempotency-Key": "run-1"}
    )
    assert replay.json()["id"] == run["id"]  # acted on once

    pairs = (await client.get("/v1/customers/matching/pairs", headers=key)).json()["items"]
    assert len(pairs) == 3
    karim = next(p for p in pairs if p["profile_b"]["id"] == str(shop["karim_web"]))
    assert karim["profile_a"]["first_name"] == "Karim"
    assert karim["agreement"]["birth_date"] == "exact"

    accepted = await client.post(f"/v1/customers/matching/pairs/{karim['id']}/accept", headers=key)
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["merge_id"]
    with db.transaction() as session:
        assert identity.canonical_profile_id(session, shop["karim_web"]) == shop["karim_pos"]

    other = next(p for p in pairs if p["id"] != karim["id"])
    rejected = await client.post(f"/v1/customers/matching/pairs/{other['id']}/reject", headers=key)
    assert rejected.json()["status"] == "rejected"
    again = await client.post(f"/v1/customers/matching/pairs/{other['id']}/accept", headers=key)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")

    listed = await client.get("/v1/customers/matching/pairs?status=rejected", headers=key)
    assert [p["id"] for p in listed.json()["items"]] == [other["id"]]
    runs = (await client.get("/v1/customers/matching/runs", headers=key)).json()["items"]
    assert [r["id"] for r in runs] == [run["id"]]
    one = await client.get(f"/v1/customers/matching/runs/{run['id']}", headers=key)
    assert one.json()["pairs_found"] == 3


async def test_the_api_needs_the_right_scopes(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    reader = bearer(builders.api_key(db, clock, "customers:read"))
    refused = await client.post("/v1/customers/matching/runs", json=RUN, headers=reader)
    assert refused.status_code == 403
    assert (await client.get("/v1/customers/matching/pairs")).status_code == 401
    unknown = await client.post(f"/v1/customers/matching/pairs/{uuid.uuid4()}/reject")
    assert unknown.status_code == 401


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"lower": 0.9, "upper": 0.5}, "#/lower"),
        ({"lower": 0}, "lower"),
        ({"blocking": [["shoe_size"]]}, "blocking"),
        ({"engine": "oracle"}, "engine"),
        ({"source_a": "web"}, None),
    ],
)
async def test_bad_runs_are_refused_with_what_and_where(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, body: dict, where: str | None
) -> None:
    key = bearer(builders.api_key(db, clock, "customers:write"))
    response = await client.post("/v1/customers/matching/runs", json=body, headers=key)
    assert response.status_code == 422
    problem = response.json()
    pointers = " ".join(str(e.get("pointer", "")) for e in problem.get("errors", []))
    assert where is None or where in pointers


async def test_a_marketer_reviews_pairs_side_by_side_in_the_console(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    two_sources(db, clock)
    builders.user(db, clock, "margot", role="marketer")
    await log_in(client, "margot")
    page = await client.get("/console/matching", headers=HTML)
    csrf = csrf_in(page.text)
    assert "Nothing to review." in page.text
    ran = await client.post(
        "/console/matching/runs",
        data={"csrf_token": csrf, "source_a": "import:pos", "source_b": "web", "lower": "0.5",
              "upper": "1"},
        headers=HTML,
    )  # fmt: skip
    assert ran.status_code == 303
    page = await client.get(ran.headers["location"], headers=HTML)
    assert "3 to review" in page.text
    pairs = re.findall(r'data-pair="([0-9a-f-]+)"', page.text)
    assert len(pairs) == 3
    # Agreeing fields are highlighted: the same date of birth on both sides.
    assert re.search(r'data-field="birth_date" data-agreement="exact">.*?<mark class="exact">',
                     page.text, re.S)  # fmt: skip
    accept = await client.post(
        f"/console/matching/pairs/{pairs[0]}/accept",
        data={"csrf_token": csrf, "back": "/console/matching?status=pending"},
        headers=HTML,
    )
    assert accept.status_code == 303
    assert accept.headers["location"] == "/console/matching?status=pending"
    reject = await client.post(
        f"/console/matching/pairs/{pairs[1]}/reject",
        data={"csrf_token": csrf, "back": "https://elsewhere.example/"},
        headers=HTML,
    )
    assert reject.headers["location"] == "/console/matching"
    page = await client.get("/console/matching", headers=HTML)
    assert re.findall(r'data-pair="([0-9a-f-]+)"', page.text) == [pairs[2]]
    with db.transaction() as session:
        actions = list(session.scalars(select(AuditEntry.action)))
    assert {"matching.accepted", "matching.rejected", "matching.queue_viewed"} <= set(actions)


async def test_a_decision_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    response = await client.post(
        f"/console/matching/pairs/{uuid.uuid4()}/reject", data={"csrf_token": "forged"},
        headers=HTML,
    )  # fmt: skip
    assert response.status_code == 403


async def test_store_staff_cannot_see_the_queue(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "sam", role="staff")
    await log_in(client, "sam")
    assert (await client.get("/console/matching", headers=HTML)).status_code == 403


async def test_the_queue_speaks_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    page = await client.get("/console/matching", headers={**HTML, "Accept-Language": "fr"})
    assert "Rien à examiner." in page.text
    assert "Lancer un rapprochement" in page.text
