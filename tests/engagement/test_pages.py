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
FRENCH = {**HTML, "Accept-Language": "fr"}


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


async def test_the_template_form_says_its_mistakes_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer")
    await log_in(client)
    form = await client.get(TEMPLATES, params={"channel": "sms"}, headers=FRENCH)
    data = {"csrf_token": csrf_in(form.text), "channel": "sms", "kind": "marketing",
            "key": "promo", "text_fr": "Bonjour\n{{ prenom }}"}  # fmt: skip
    bad = await client.post(TEMPLATES, data=data, headers=FRENCH)
    assert bad.status_code == 422
    assert "Le modèle ne peut pas être enregistré." in bad.text
    assert (
        "<code>#/text_fr</code> ligne 2 : variable inconnue &#39;prenom&#39; ; variables "
        "connues : customer, store"
    ) in bad.text
    hook = {**data, "key": "Promo!", "channel": "webhook", "text_fr": "x"}
    wrong = await client.post(TEMPLATES, data=hook, headers=FRENCH)
    assert "<code>#/key</code> utilisez de 1 à 64 caractères parmi lettres minuscules" in wrong.text
    assert "les modèles de webhook sont transactionnels" in wrong.text


async def test_the_campaign_form_says_its_mistakes_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer")
    template(db, clock)
    template(db, clock, "bonjour-sms", channel="sms")
    await log_in(client)
    page = await client.get("/console/activation/campaigns", headers=FRENCH)
    data = {"csrf_token": csrf_in(page.text), "name": "Printemps", "segment": "absent",
            "channel": "email", "template_A": "soldes", "percent_A": "90",
            "template_B": "bonjour-sms", "percent_B": "5", "holdout_percent": "95",
            "when": "draft"}  # fmt: skip
    bad = await client.post("/console/activation/campaigns", data=data, headers=FRENCH)
    assert bad.status_code == 422
    assert "La campagne n’est pas valide : voir ci-dessous." in bad.text
    assert "<code>#/variants/1/template</code> est un modèle sms" in bad.text
    assert "<code>#/variants</code> les pourcentages des variantes doivent totaliser 100" in (
        bad.text
    )
    assert "<code>#/holdout_percent</code> doit être compris entre 0 et 90" in bad.text
    assert "Aucun segment n’a la clé ou l’identifiant &#39;absent&#39;." in bad.text


async def test_a_preview_without_a_known_profile_is_refused_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer")
    template(db, clock)
    await log_in(client)
    page = await client.get(TEMPLATES, params={"key": "soldes"}, headers=FRENCH)
    url, token = f"{TEMPLATES}/soldes/preview", csrf_in(page.text)
    typo = await client.post(url, data={"csrf_token": token, "profile_id": "lea"}, headers=FRENCH)
    assert typo.status_code == 422
    assert "Donnez un identifiant de profil client." in typo.text
    assert "<code>profile_id</code> n’est pas un identifiant" in typo.text
    nobody = "00000000-0000-7000-8000-000000000042"
    unknown = await client.post(
        url, data={"csrf_token": token, "profile_id": nobody}, headers=FRENCH
    )
    assert unknown.status_code == 422
    assert f"Aucun profil client n’a l’identifiant {nobody}." in unknown.text
