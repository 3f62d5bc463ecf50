"""The identity REST API: resolve, identifiers, merge history, merge, unmerge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from parcours.customers import identity
from parcours.customers.identity import Observation
from tests import builders

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def headers(db: Database, clock: ManualClock, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {builders.api_key(db, clock, *scopes)}"}


def two_profiles(db: Database, clock: ManualClock) -> tuple[uuid.UUID, uuid.UUID]:
    with db.transaction() as session:
        a, b = identity.observe(
            session,
            clock.now(),
            [
                Observation({"email": "lea@example.com", "user_id": "u-1"}, "web", T0),
                Observation({"customer_number": "C-1"}, "store", T0, reference="till-9"),
            ],
        )
    assert a is not None
    assert b is not None
    return a, b


async def test_an_identifier_resolves_to_its_profile_and_the_read_is_audited(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea, _ = two_profiles(db, clock)
    auth = headers(db, clock, "customers:read")
    response = await client.get(
        "/v1/identity/resolve", params={"kind": "email", "value": " LEA@example.com"}, headers=auth
    )
    assert response.status_code == 200
    assert response.json() == {"kind": "email", "value": "lea@example.com", "profile_id": str(lea)}
    with db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "identity.resolved" in actions
    missing = await client.get(
        "/v1/identity/resolve",
        params={"kind": "email", "value": "nobody@example.com"},
        headers=auth,
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("kind", "value", "parameter"),
    [("passport", "X1", "kind"), ("email", "not-an-email", "value"), ("phone", "12", "value")],
)
async def test_bad_identifiers_are_problems_pointing_at_the_parameter(
    client: httpx.AsyncClient,
    db: Database,
    clock: ManualClock,
    kind: str,
    value: str,
    parameter: str,
) -> None:
    response = await client.get(
        "/v1/identity/resolve",
        params={"kind": kind, "value": value},
        headers=headers(db, clock, "customers:read"),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["parameter"] == parameter


async def test_identifiers_and_merge_history_of_a_profile(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea, _ = two_profiles(db, clock)
    auth = headers(db, clock, "customers:read")
    listed = (await client.get(f"/v1/identity/profiles/{lea}/identifiers", headers=auth)).json()
    assert listed["profile_id"] == str(lea)
    assert [(i["kind"], i["value"]) for i in listed["items"]] == [
        ("user_id", "u-1"),
        ("email", "lea@example.com"),
    ]
    history = (await client.get(f"/v1/identity/profiles/{lea}/merges", headers=auth)).json()
    assert history == {"profile_id": str(lea), "items": []}
    unknown = await client.get(f"/v1/identity/profiles/{uuid.uuid4()}/merges", headers=auth)
    assert unknown.status_code == 404


async def test_a_manual_merge_then_its_unmerge(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea, till = two_profiles(db, clock)
    auth = headers(db, clock, "customers:read", "customers:write")
    body = {"keep": str(lea), "other": str(till), "reason": "same person, seen at the till"}
    retry = {**auth, "Idempotency-Key": "merge-1"}
    merged = await client.post("/v1/identity/merges", json=body, headers=retry)
    assert merged.status_code == 201, merged.text
    record = merged.json()
    assert (record["kept_id"], record["absorbed_id"], record["rule"]) == (
        str(lea),
        str(till),
        "manual",
    )
    replayed = await client.post("/v1/identity/merges", json=body, headers=retry)
    assert replayed.json()["id"] == record["id"]
    assert replayed.headers["idempotent-replayed"] == "true"
    listed = (await client.get(f"/v1/identity/profiles/{till}/identifiers", headers=auth)).json()
    assert listed["profile_id"] == str(lea)
    assert len(listed["items"]) == 3

    undone = await client.post(f"/v1/identity/merges/{record['id']}/unmerge", headers=auth)
    assert undone.status_code == 200
    assert undone.json()["undone_reason"] == "unmerge"
    again = await client.post(f"/v1/identity/merges/{record['id']}/unmerge", headers=auth)
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    restored = (await client.get(f"/v1/identity/profiles/{till}/identifiers", headers=auth)).json()
    assert restored["profile_id"] == str(till)


async def test_merging_a_profile_with_itself_points_at_the_other_field(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea, _ = two_profiles(db, clock)
    response = await client.post(
        "/v1/identity/merges",
        json={"keep": str(lea), "other": str(lea), "reason": "oops"},
        headers=headers(db, clock, "customers:write"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "#/other"


async def test_merging_needs_the_write_scope(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea, till = two_profiles(db, clock)
    response = await client.post(
        "/v1/identity/merges",
        json={"keep": str(lea), "other": str(till), "reason": "x"},
        headers=headers(db, clock, "customers:read"),
    )
    assert response.status_code == 403
