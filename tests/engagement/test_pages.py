"""Console pages of engagement: templates (errors shown at save, preview against a
profile), the delivery log with reasons, campaigns with results per variant; FR/EN."""

from __future__ import annotations

import httpx
import pytest

from parcours import segments
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.engagement import SendRequest, send_message
from tests import builders
from tests.engagement.helpers import Outbox, outlets, person, template
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio
TEMPLATES = "/console/activation/templates"


async def test_a_template_with_an_error_is_shown_back_with_its_field_and_line(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer")
    await log_in(client)
    form = await client.get(TEMPLATES, params={"channel": "sms"}, headers=HTML)
    assert form.status_code == 200
    data = {"csrf_token": csrf_in(form.text), "channel": "sms", "kind": "marketing",
            "key": "promo", "text_fr": "Bonjour\n{{ prenom }}"}  # fmt: skip
    bad = await client.post(TEMPLATES, data=data, headers=HTML)
    assert bad.status_code == 422
    assert "#/text_fr" in bad.text
    assert "line 2" in bad.text
    data["text_fr"] = "Bonjour {{ customer.first_name }}"
    saved = await client.post(TEMPLATES, data=data, headers=HTML, follow_redirects=True)
    assert saved.status_code == 200
    assert 'data-template="promo"' in saved.text


async def test_a_template_is_previewed_for_a_real_profile(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer")
    template(db, clock)
    profile = person(db, clock)
    await log_in(client)
    page = await client.get(TEMPLATES, params={"key": "soldes"}, headers=HTML)
    shown = await client.post(
        f"{TEMPLATES}/soldes/preview",
        data={"csrf_token": csrf_in(page.text), "profile_id": str(profile)}, headers=HTML,
    )  # fmt: skip
    assert shown.status_code == 200
    assert 'id="preview" data-locale="fr"' in shown.text
    assert "Bonjour Léa" in shown.text


async def test_the_delivery_log_shows_refusals_with_their_reason_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer", locale="fr")
    template(db, clock)
    profile = person(db, clock, consent=())
    with db.transaction() as session:
        send_message(session, clock.now(), SendRequest(profile, "soldes", "k"), outlets(Outbox()))
    await log_in(client)
    page = await client.get(
        "/console/activation/deliveries", params={"reason": "no_consent"}, headers=HTML
    )
    assert page.status_code == 200
    assert 'data-status="suppressed"' in page.text
    assert "sans consentement" in page.text


async def test_a_campaign_is_created_from_the_console_and_its_results_shown(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer")
    template(db, clock)
    person(db, clock)
    with db.transaction() as session:
        segments.create_segment(session, clock.now(), CLI_ACTOR, "optin", "Opt-in",
            {"kind": "consent", "purpose": "marketing", "channel": "email"})  # fmt: skip
    await log_in(client)
    page = await client.get("/console/activation/campaigns", headers=HTML)
    data = {"csrf_token": csrf_in(page.text), "name": "Printemps", "segment": "optin",
            "channel": "email", "template_A": "soldes", "percent_A": "90",
            "holdout_percent": "10", "when": "draft"}  # fmt: skip
    bad = await client.post("/console/activation/campaigns", data=data, headers=HTML)
    assert bad.status_code == 422
    assert 'id="campaign-errors"' in bad.text
    data["percent_A"] = "100"
    made = await client.post(
        "/console/activation/campaigns", data=data, headers=HTML, follow_redirects=True
    )
    assert made.status_code == 200
    assert 'data-variant="A"' in made.text
    assert 'data-variant="holdout"' in made.text
