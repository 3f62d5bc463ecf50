"""Consent over HTTP: the REST API, the public confirmation and unsubscribe pages
(RFC 8058 one-click included) and the console panel, on both databases."""

from __future__ import annotations

import email
import re
import uuid
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from parcours import customers
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from parcours.customers.models import Consent
from tests import builders
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def mailbox(tmp_path: Path) -> list[Any]:
    """The messages the default mailer wrote (DATA_DIR/mail/*.eml), oldest first."""
    files = sorted((tmp_path / "data" / "mail").glob("*.eml"))
    return [email.message_from_bytes(f.read_bytes(), policy=default_policy) for f in files]


def confirmation_path(message: Any) -> str:
    body = message.get_body(("plain",)).get_content()
    found = re.search(r"https?://[^/\s]+(/consent/confirm/[^\s?]+)", body)
    assert found, body
    return found.group(1)


async def test_consents_are_recorded_and_read_through_the_api(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    lea = builders.add_customer(db, clock)
    writer = builders.api_key(db, clock, "customers:write")
    reader = builders.api_key(db, clock, "customers:read")
    body = {
        "consents": [
            {
                "purpose": "marketing",
                "channel": "sms",
                "granted": True,
                "source": "store_pos",
                "wording_version": "pos-2026",
                "ip": "203.0.113.7",
            },
            {"purpose": "marketing", "channel": "email", "granted": True, "source": "store_pos"},
        ]
    }
    created = await client.post(f"/v1/customers/{lea}/consents", json=body, headers=auth(writer))
    assert created.status_code == 201, created.text
    assert [r["channel"] for r in created.json()["recorded"]] == ["sms"]
    assert created.json()["recorded"][0]["evidence"] == {"ip": "203.0.113.7"}
    assert [p["email"] for p in created.json()["pending"]] == ["lea.martin@example.com"]
    assert len(mailbox(tmp_path)) == 1

    state = await client.get(f"/v1/customers/{lea}/consents", headers=auth(reader))
    assert state.status_code == 200
    current = {(c["purpose"], c["channel"]): c["granted"] for c in state.json()["current"]}
    assert current[("marketing", "sms")] is True
    assert current[("marketing", "email")] is None
    assert current[("profiling", "post")] is None
    assert len(state.json()["pending"]) == 1
    with db.transaction() as session:
        actions = set(session.scalars(select(AuditEntry.action)))
    assert {"consent.recorded", "consent.viewed"} <= actions

    check = await client.get(
        f"/v1/customers/{lea}/can-contact",
        params={"purpose": "marketing", "channel": "sms"},
        headers=auth(reader),
    )
    assert check.json() == {"allowed": True, "reason": "granted"}


async def test_unknown_purposes_and_channels_are_422_with_pointers(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = builders.add_customer(db, clock)
    writer = builders.api_key(db, clock, "customers:write")
    body = {"consents": [{"purpose": "spam", "channel": "fax", "granted": True, "source": "x"}]}
    refused = await client.post(f"/v1/customers/{lea}/consents", json=body, headers=auth(writer))
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    pointers = [e["pointer"] for e in refused.json()["errors"]]
    assert pointers == ["#/consents/0/purpose", "#/consents/0/channel"]
    check = await client.get(
        f"/v1/customers/{lea}/can-contact",
        params={"purpose": "spam", "channel": "email"},
        headers=auth(builders.api_key(db, clock, "customers:read")),
    )
    assert check.status_code == 422


async def test_consents_of_an_unknown_profile_are_404_and_scopes_are_checked(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    reader = builders.api_key(db, clock, "customers:read")
    missing = await client.get(f"/v1/customers/{uuid.uuid4()}/consents", headers=auth(reader))
    assert missing.status_code == 404
    body = {
        "consents": [{"purpose": "marketing", "channel": "sms", "granted": True, "source": "x"}]
    }
    lea = builders.add_customer(db, clock)
    forbidden = await client.post(f"/v1/customers/{lea}/consents", json=body, headers=auth(reader))
    assert forbidden.status_code == 403


async def test_a_retried_recording_with_the_same_idempotency_key_records_once(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = builders.add_customer(db, clock)
    writer = builders.api_key(db, clock, "customers:write")
    body = {
        "consents": [{"purpose": "analytics", "channel": "push", "granted": True, "source": "app"}]
    }
    headers = {**auth(writer), "Idempotency-Key": "k-1"}
    first = await client.post(f"/v1/customers/{lea}/consents", json=body, headers=headers)
    again = await client.post(f"/v1/customers/{lea}/consents", json=body, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == again.json()
    with db.transaction() as session:
        assert len(session.scalars(select(Consent)).all()) == 1


async def test_double_opt_in_from_the_email_to_the_public_page(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    lea = builders.add_customer(db, clock)
    writer = builders.api_key(db, clock, "customers:write")
    body = {
        "consents": [
            {
                "purpose": "marketing",
                "channel": "email",
                "granted": True,
                "source": "web_signup",
                "wording_version": "nl-4",
            }
        ]
    }
    await client.post(f"/v1/customers/{lea}/consents", json=body, headers=auth(writer))
    [message] = mailbox(tmp_path)
    assert message["To"] == "lea.martin@example.com"
    path = confirmation_path(message)

    page = await client.get(path, params={"lang": "en"})
    assert page.status_code == 200
    assert "lea.martin@example.com" in page.text
    assert "Confirm my subscription" in page.text
    assert page.headers["cache-control"] == "no-store"
    with db.transaction() as session:  # showing the page confirmed nothing
        assert not customers.can_contact(session, lea, "marketing", "email", clock.now()).allowed

    clock.advance(timedelta(hours=1))
    confirmed = await client.post(
        path, params={"lang": "en"}, headers={"User-Agent": "Firefox/140"}
    )
    assert confirmed.status_code == 200
    assert "Your subscription is confirmed" in confirmed.text
    with db.transaction() as session:
        assert customers.can_contact(session, lea, "marketing", "email", clock.now()).allowed
        row = session.scalars(select(Consent)).one()
        assert row.evidence is not None
        assert row.evidence["confirmed_user_agent"] == "Firefox/140"
        assert row.wording_version == "nl-4"

    replayed = await client.post(path, params={"lang": "en"})
    assert replayed.status_code == 409
    assert "only once" in replayed.text
    french = await client.get(path, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert french.status_code == 409
    assert 'lang="fr"' in french.text
    said = "Cet abonnement a déjà été confirmé : le lien ne sert qu’une fois."
    assert f'<p class="error" role="alert">{said}</p>' in french.text


async def _signed_up(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, tmp_path: Path
) -> tuple[uuid.UUID, str]:
    """A customer who asked for marketing email on the web, and the path of the
    confirmation link mailed to them."""
    lea = builders.add_customer(db, clock)
    writer = builders.api_key(db, clock, "customers:write")
    body = {
        "consents": [
            {"purpose": "marketing", "channel": "email", "granted": True, "source": "web_signup"}
        ]
    }
    await client.post(f"/v1/customers/{lea}/consents", json=body, headers=auth(writer))
    return lea, confirmation_path(mailbox(tmp_path)[0])


async def test_bad_and_expired_confirmation_links_say_so(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    _, path = await _signed_up(client, db, clock, tmp_path)
    bad = await client.post(path[:-3] + "xyz", params={"lang": "en"})
    assert bad.status_code == 422
    assert "not valid" in bad.text
    clock.advance(timedelta(hours=73))
    expired = await client.post(path, params={"lang": "en"})
    assert expired.status_code == 422
    assert "expired" in expired.text
    with db.transaction() as session:
        assert session.scalars(select(Consent)).all() == []


async def test_one_click_unsubscribe_follows_rfc_8058(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = builders.add_customer(db, clock)
    with db.transaction() as session:
        customers.add_consents(
            session,
            [
                {
                    "customer_id": lea,
                    "purpose": "marketing",
                    "channel": "email",
                    "granted": True,
                    "at": clock.now(),
                    "source": "web_signup",
                    "proof": "double opt-in",
                }
            ],
        )
        url = customers.unsubscribe_url(session, clock.now(), "http://parcours.test", lea)
    path = url.removeprefix("http://parcours.test")
    page = await client.get(path, params={"lang": "fr"})
    assert page.status_code == 200
    assert "Se désabonner" in page.text
    with db.transaction() as session:  # showing the page changed nothing
        assert customers.can_contact(session, lea, "marketing", "email", clock.now()).allowed
    clock.advance(timedelta(minutes=1))
    # What a mail client sends: no cookie, no session, the form body of RFC 8058.
    one_click = await client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    assert "location" not in one_click.headers
    with db.transaction() as session:
        decision = customers.can_contact(session, lea, "marketing", "email", clock.now())
        assert decision.reason == "withdrawn"
        withdrawal = session.scalars(select(Consent).where(Consent.granted.is_(False))).one()
        assert withdrawal.source == "one_click_unsubscribe"
    button = await client.post(path, params={"lang": "en"})
    assert button.status_code == 200
    assert "You are unsubscribed" in button.text
    tampered = await client.post(
        path[:-4] + "abcd",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert tampered.status_code == 422


async def test_a_sign_up_form_starts_a_double_opt_in_for_an_address(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    writer = builders.api_key(db, clock, "customers:write")
    body = {
        "email": "Zoe.Durand@Example.com",
        "source": "web_footer",
        "locale": "en",
        "form_text": "Get our news",
        "ip": "198.51.100.4",
    }
    pending = await client.post("/v1/consents/confirmations", json=body, headers=auth(writer))
    assert pending.status_code == 202, pending.text
    assert pending.json()["email"] == "zoe.durand@example.com"
    [message] = mailbox(tmp_path)
    assert message["Subject"] == "Please confirm your subscription"
    bad = await client.post(
        "/v1/consents/confirmations", json={**body, "email": "zoe"}, headers=auth(writer)
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "#/email"


async def test_the_console_panel_shows_and_records_consents(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = builders.add_customer(db, clock)
    builders.user(db, clock)
    await log_in(client)
    panel = await client.get(f"/console/customers/{lea}/consents", headers=HTML)
    assert panel.status_code == 200
    assert 'data-consent="profiling-post"' in panel.text
    assert "<html" not in panel.text  # a fragment to embed
    token = csrf_in(panel.text)
    recorded = await client.post(
        f"/console/customers/{lea}/consents",
        data={
            "purpose": "marketing",
            "channel": "sms",
            "granted": "yes",
            "proof": "by phone",
            "csrf_token": token,
        },
        headers={**HTML, "HX-Request": "true"},
    )
    assert recorded.status_code == 200
    assert "The decision is recorded." in recorded.text
    with db.transaction() as session:
        row = session.scalars(select(Consent)).one()
        assert (row.source, row.proof) == ("console", "by phone")
    refused = await client.post(
        f"/console/customers/{lea}/consents",
        data={"purpose": "spam", "channel": "sms", "granted": "yes", "csrf_token": token},
        headers={**HTML, "HX-Request": "true"},
    )
    assert refused.status_code == 422
    assert "unknown purpose" in refused.text
    page = await client.get(f"/console/customers/{lea}/privacy", headers=HTML)
    assert page.status_code == 200
    assert "Erase the customer" in page.text


async def test_store_staff_cannot_see_the_consent_panel(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = builders.add_customer(db, clock)
    builders.user(db, clock, "vendeur", role="staff")
    await log_in(client, "vendeur")
    panel = await client.get(f"/console/customers/{lea}/consents", headers=HTML)
    assert panel.status_code == 403


async def test_bad_and_expired_links_are_said_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    lea, path = await _signed_up(client, db, clock, tmp_path)
    with db.transaction() as session:
        url = customers.unsubscribe_url(session, clock.now(), "http://parcours.test", lea)
    unsubscribe = url.removeprefix("http://parcours.test")
    french = {"Accept-Language": "fr"}
    not_valid = "Ce lien n’est pas valide : il a été modifié ou tronqué."
    bad = await client.get(path[:-3] + "xyz", headers=french)
    assert bad.status_code == 422
    assert f'<p class="error" role="alert">{not_valid}</p>' in bad.text
    tampered = await client.get(unsubscribe[:-4] + "abcd", headers=french)
    assert tampered.status_code == 422
    assert f'<p class="error" role="alert">{not_valid}</p>' in tampered.text
    clock.advance(timedelta(hours=73))
    expired = await client.post(path, headers=french)
    assert expired.status_code == 422
    said = "Ce lien a expiré : demandez-en un nouveau."
    assert f'<p class="error" role="alert">{said}</p>' in expired.text
    assert "expired" not in expired.text
