"""The REST API's contract: probes, problem+json errors, keys, scopes, paging, audit."""

import logging
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from parcours.app import create_app
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from tests import builders
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_health_and_ready_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json()["status"] == "ok"
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_ready_says_why_when_the_database_is_down(
    tmp_path: Path, sqlite_db: Database
) -> None:
    down = Database.connect(f"postgresql+psycopg://x:pw@/nowhere?host={tmp_path}")
    app = create_app(make_settings(tmp_path, sqlite_db), down)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert "cannot reach the database" in response.json()["detail"]


async def test_ready_says_when_migrations_are_pending(tmp_path: Path, sqlite_db: Database) -> None:
    empty = Database.connect(f"sqlite:///{tmp_path}/empty.db")
    app = create_app(make_settings(tmp_path, sqlite_db), empty)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.get("/ready")
    assert response.status_code == 503
    assert "parcours init" in response.json()["detail"]


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    mine = await client.get("/health", headers={"X-Request-ID": "till-42.abc"})
    assert mine.headers["x-request-id"] == "till-42.abc"
    forged = await client.get("/health", headers={"X-Request-ID": "bad id with spaces\n"})
    assert len(forged.headers["x-request-id"]) == 32


async def test_unknown_routes_are_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].startswith("urn:parcours:problem:")
    assert body["status"] == 404
    assert (await client.delete("/health")).status_code == 405


async def test_missing_and_wrong_keys_are_401_with_a_hint(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/stores")
    assert missing.status_code == 401
    assert "parcours keys create" in missing.json()["detail"]
    assert "Bearer" in missing.headers["www-authenticate"]
    wrong = await client.get("/v1/stores", headers=bearer("sk_0123456789ab_not-the-secret"))
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == PROBLEM


async def test_a_key_without_the_scope_is_403(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    tracking = builders.api_key(db, clock, kind="write")
    response = await client.get("/v1/customers", headers=bearer(tracking))
    assert response.status_code == 403
    assert "customers:read" in response.json()["detail"]


async def test_segment_style_basic_auth_carries_the_key(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    secret = builders.api_key(db, clock, "commerce:read")
    response = await client.get("/v1/stores", auth=(secret, ""))
    assert response.status_code == 200
    garbled = await client.get("/v1/stores", headers={"Authorization": "Basic %%%"})
    assert garbled.status_code == 401


async def test_validation_errors_point_at_each_bad_field(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    admin = builders.api_key(db, clock, "admin")
    response = await client.post(
        "/v1/admin/keys", json={"kind": "weird", "scopes": "x"}, headers=bearer(admin)
    )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"#/name", "#/kind", "#/scopes"}
    bad_query = await client.get("/v1/stores?limit=0", headers=bearer(admin))
    assert bad_query.status_code == 422
    assert bad_query.json()["errors"][0]["parameter"] == "limit"


async def test_malformed_json_is_400(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    admin = builders.api_key(db, clock, "admin")
    response = await client.post(
        "/v1/admin/keys",
        content=b'{"name": ',
        headers={**bearer(admin), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["detail"]


async def test_oversized_bodies_are_413_whether_declared_or_streamed(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    admin = builders.api_key(db, clock, "admin")
    big = b'{"name": "' + b"x" * 2_000_000 + b'"}'
    declared = await client.post("/v1/admin/keys", content=big, headers=bearer(admin))
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM

    async def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 65536

    streamed = await client.post("/v1/admin/keys", content=chunks(), headers=bearer(admin))
    assert streamed.status_code == 413


async def test_keys_are_managed_through_the_admin_api(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    admin = builders.api_key(db, clock, "admin")
    created = await client.post(
        "/v1/admin/keys",
        json={"name": "POS Lyon", "kind": "secret", "scopes": ["commerce:write"]},
        headers=bearer(admin),
    )
    assert created.status_code == 201
    issued = created.json()
    assert issued["secret"].startswith(issued["prefix"])
    listed = (await client.get("/v1/admin/keys", headers=bearer(admin))).json()
    assert all("secret" not in k for k in listed)
    assert len(listed) == 2
    revoked = await client.delete(f"/v1/admin/keys/{issued['prefix']}", headers=bearer(admin))
    assert revoked.json()["revoked_at"] is not None
    refused = await client.get("/v1/stores", headers=bearer(issued["secret"]))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    unknown = await client.delete("/v1/admin/keys/sk_nothing", headers=bearer(admin))
    assert unknown.status_code == 404


async def test_lists_page_with_an_opaque_cursor(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "commerce:read")
    for i in range(5):
        builders.add_store(db, clock, f"S-{i}")
    codes: list[str] = []
    url = "/v1/stores?limit=2"
    while url:
        page = (await client.get(url, headers=bearer(key))).json()
        codes += [s["code"] for s in page["items"]]
        url = f"/v1/stores?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert codes == [f"S-{i}" for i in range(5)]
    bad = await client.get("/v1/stores?cursor=%%%%", headers=bearer(key))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["parameter"] == "cursor"


async def test_reading_a_customer_is_audited(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, "customers:read")
    customer_id = builders.add_customer(db, clock)
    response = await client.get(f"/v1/customers/{customer_id}", headers=bearer(key))
    assert response.json()["email"] == "lea.martin@example.com"
    assert (
        await client.get("/v1/customers/00000000-0000-7000-8000-000000000000", headers=bearer(key))
    ).status_code == 404
    with db.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.viewed")
        ).one()
    assert entry.target_id == str(customer_id)
    assert entry.actor.startswith("api_key:sk_")
    assert "lea" not in str(entry.detail).lower()


async def test_logs_carry_no_personal_data(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    from parcours.core.logs import ScrubPersonalData

    key = builders.api_key(db, clock, "customers:read")
    customer_id = builders.add_customer(db, clock)
    caplog.handler.addFilter(ScrubPersonalData())
    with caplog.at_level(logging.INFO):
        await client.get(
            f"/v1/customers/{customer_id}?email=lea.martin@example.com", headers=bearer(key)
        )
        logging.getLogger("parcours.test").info(
            "contact lea.martin@example.com or +33 6 12 34 56 78"
        )
    text = caplog.text
    assert "route=/v1/customers/{customer_id}" in text or "/v1/customers/{customer_id}" in str(
        [r.__dict__ for r in caplog.records]
    )
    assert "lea.martin" not in text
    assert "12 34 56 78" not in text
    assert "<email>" in text
    assert "<phone>" in text


async def test_the_openapi_document_describes_the_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/stores" in spec["paths"]
    assert "/v1/admin/keys" in spec["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    # Offline: every asset of the docs page is served by Parcours itself.
    assert re.findall(r'(?:src|href)="(?!/)', docs.text) == []
    assert "https://" not in docs.text.split("<script>")[0]
    assert (await client.get("/static/swagger/swagger-ui-bundle.js")).status_code == 200
