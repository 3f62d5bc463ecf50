"""The journeys API (versions, activate/pause, stats, instances, problems) and console
pages (list, a journey's flow with counts, the editor showing errors)."""

from __future__ import annotations

import json

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.journeys.ready_made import JOURNEYS
from tests import builders
from tests.journeys.helpers import template
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio
DEFINITION = {
    "trigger": {"type": "event", "event": "Product Added"},
    "steps": [
        {"id": "wait", "type": "wait", "hours": 1, "next": "send"},
        {"id": "send", "type": "send", "template": "relance"},
    ],
    "exit": [{"event": "Order Completed"}],
}


async def test_create_change_activate_and_read_a_journey(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    auth = {"Authorization": f"Bearer {builders.api_key(db, clock, 'activation:write')}"}
    body = {"key": "relance", "name": "Relance", "definition": DEFINITION}
    headers = {**auth, "Idempotency-Key": "j1"}
    first = await client.post("/v1/journeys", json=body, headers=headers)
    again = await client.post("/v1/journeys", json=body, headers=headers)
    assert first.status_code == 201
    assert first.json()["status"] == "draft"
    assert again.headers.get("Idempotent-Replayed") == "true"
    changed = {**DEFINITION, "reentry": {"mode": "always"}}
    put = await client.put("/v1/journeys/relance", json={"definition": changed}, headers=auth)
    assert put.json()["version"] == 2
    active = await client.post("/v1/journeys/relance/activate", headers=auth)
    assert active.json()["status"] == "active"
    stats = await client.get("/v1/journeys/relance/stats", headers=auth)
    assert [s["step_id"] for s in stats.json()["steps"]] == ["wait", "send"]
    page = await client.get("/v1/journeys/relance/instances", headers=auth)
    assert page.json() == {"items": [], "next_cursor": None}
    paused = await client.post("/v1/journeys/relance/pause", headers=auth)
    assert paused.json()["status"] == "paused"
    listed = await client.get("/v1/journeys", headers=auth)
    assert [j["key"] for j in listed.json()["items"]] == ["relance"]


async def test_a_bad_definition_is_a_problem_naming_the_step(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    auth = {"Authorization": f"Bearer {builders.api_key(db, clock, 'activation:write')}"}
    bad = {**DEFINITION, "steps": [{**DEFINITION["steps"][0], "next": "nowhere"}]}  # type: ignore[dict-item]
    answer = await client.post(
        "/v1/journeys", json={"key": "bad", "name": "Bad", "definition": bad}, headers=auth
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    [error] = answer.json()["errors"]
    assert error["pointer"] == "#/definition/steps/0/next"


async def test_an_unknown_template_is_refused_at_save(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    auth = {"Authorization": f"Bearer {builders.api_key(db, clock, 'activation:write')}"}
    answer = await client.post(
        "/v1/journeys", json={"key": "x1", "name": "X", "definition": DEFINITION}, headers=auth
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["pointer"] == "#/definition/steps/1/template"


async def test_an_unknown_journey_is_a_404(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    auth = {"Authorization": f"Bearer {builders.api_key(db, clock, 'activation:write')}"}
    answer = await client.get("/v1/journeys/nope/stats", headers=auth)
    assert answer.status_code == 404


async def test_the_console_saves_shows_the_flow_and_shows_errors_back(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    builders.user(db, clock, role="marketer")
    await log_in(client)
    page = await client.get("/console/activation/journeys", headers=HTML)
    assert page.status_code == 200
    data = {"csrf_token": csrf_in(page.text), "key": "relance", "name": "Relance",
            "definition": json.dumps(DEFINITION)}  # fmt: skip
    saved = await client.post(
        "/console/activation/journeys", data=data, headers=HTML, follow_redirects=True
    )
    assert 'data-step="wait"' in saved.text
    assert 'data-step="send"' in saved.text
    bad = dict(DEFINITION, steps=[{"id": "wait", "type": "teleport"}])
    edit = {"csrf_token": csrf_in(saved.text), "definition": json.dumps(bad)}
    refused = await client.post("/console/activation/journeys/relance", data=edit, headers=HTML)
    assert refused.status_code == 422
    assert "#/definition/steps/0/type" in refused.text
    status = {"csrf_token": csrf_in(saved.text), "status": "active"}
    shown = await client.post(
        "/console/activation/journeys/relance/status", data=status, headers=HTML,
        follow_redirects=True,
    )  # fmt: skip
    assert 'data-status="active"' in shown.text


async def test_the_editor_says_the_mistakes_in_the_readers_language(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    builders.user(db, clock, role="marketer")
    await log_in(client)
    french = {**HTML, "Accept-Language": "fr"}
    page = await client.get("/console/activation/journeys", headers=french)
    bad = dict(DEFINITION, steps=[{"id": "attente", "type": "teleport"}, {"id": "envoi"}])
    data = {"csrf_token": csrf_in(page.text), "key": "relance", "name": "Relance",
            "definition": json.dumps(bad)}  # fmt: skip
    refused = await client.post("/console/activation/journeys", data=data, headers=french)
    assert refused.status_code == 422
    assert "Le parcours n’est pas valide : voir ci-dessous." in refused.text
    assert "type d’étape inconnu &#39;teleport&#39; : utilisez l’un de wait" in refused.text
    assert "#/definition/steps/1/type" in refused.text
    saved = dict(data, definition=json.dumps(DEFINITION))
    await client.post("/console/activation/journeys", data=saved, headers=french)
    again = await client.post("/console/activation/journeys", data=saved, headers=french)
    assert "Un parcours a déjà la clé &#39;relance&#39; ; choisissez-en une autre." in again.text
    broken = await client.post(
        "/console/activation/journeys", data=dict(data, definition="{"), headers=french
    )
    assert "La définition n’est pas un JSON valide" in broken.text


async def test_the_ready_made_journeys_are_installed_from_the_console_in_draft(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer")
    await log_in(client)
    page = await client.get("/console/activation/journeys", headers=HTML)
    data = {"csrf_token": csrf_in(page.text)}
    for _ in range(2):  # a second click installs nothing more
        shown = await client.post(
            "/console/activation/journeys/ready-made", data=data, headers=HTML,
            follow_redirects=True,
        )  # fmt: skip
    assert shown.status_code == 200
    assert shown.text.count("<tr data-journey=") == len(JOURNEYS)
    assert 'data-journey="abandoned-cart"' in shown.text
    forged = await client.post(
        "/console/activation/journeys/ready-made", data={"csrf_token": "x"}, headers=HTML
    )
    assert forged.status_code in (400, 403)
