"""The segments API: create once per idempotency key, preview, members, problems."""

from __future__ import annotations

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests.builders import add_customer, api_key

pytestmark = pytest.mark.anyio
LYON = {"kind": "trait", "field": "email", "operator": "exists"}


async def test_create_preview_refresh_and_page_members(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = add_customer(db, clock)
    auth = {"Authorization": f"Bearer {api_key(db, clock, 'activation:write')}"}
    body = {"key": "all", "name": "Everyone", "definition": LYON}
    headers = {**auth, "Idempotency-Key": "k1"}
    first = await client.post("/v1/segments", json=body, headers=headers)
    again = await client.post("/v1/segments", json=body, headers=headers)
    assert first.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    preview = await client.post("/v1/segments/preview", json={"definition": LYON}, headers=auth)
    assert preview.json()["count"] == 1
    refreshed = await client.post("/v1/segments/all/refresh", headers=auth)
    assert refreshed.json()["entered"] == 1
    reader = {"Authorization": f"Bearer {api_key(db, clock, 'customers:read')}"}
    members = await client.get("/v1/segments/all/members", headers=reader)
    assert members.json() == {"items": [str(lea)], "next_cursor": None}
    exported = await client.get("/v1/segments/all/export?format=audience", headers=auth)
    assert exported.text.splitlines()[0] == "Email,Phone"


async def test_a_bad_definition_is_a_problem_naming_the_part(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    auth = {"Authorization": f"Bearer {api_key(db, clock, 'activation:write')}"}
    bad = {"all": [LYON, {"kind": "event", "name": "Product Viewed", "operator": "often"}]}
    answer = await client.post(
        "/v1/segments", json={"key": "bad", "name": "Bad", "definition": bad}, headers=auth
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    [error] = answer.json()["errors"]
    assert error["pointer"] == "#/definition/all/1/operator"
    assert "at_least" in error["detail"]
