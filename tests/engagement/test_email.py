"""Email through a real SMTP server (aiosmtpd): HTML and text, List-Unsubscribe with one
click, signed click-tracking links, the open pixel, and bounces."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from parcours.app import create_app
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.mail import SmtpMailer
from parcours.engagement import SendRequest, send_message
from parcours.engagement.models import Delivery
from tests.builders import api_key
from tests.conftest import make_settings
from tests.engagement.helpers import PUBLIC, Outbox, outlets, person, template
from tests.orders.test_notifications import Inbox, body, inbox

__all__ = ["inbox"]
pytestmark = pytest.mark.anyio


@pytest.fixture
async def http(
    db: Database, clock: ManualClock, tmp_path: Path, inbox: tuple[Inbox, SmtpMailer]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path, db, public_url=PUBLIC), db, clock)
    app.state.engagement_outlets = outlets(mailer=inbox[1])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parcours.test") as client:
        yield client


def headers(db: Database, clock: ManualClock, key: str | None = "send-1") -> dict[str, str]:
    out = {"Authorization": f"Bearer {api_key(db, clock, 'activation:write')}"}
    if key:
        out["Idempotency-Key"] = key
    return out


async def test_an_email_reaches_the_smtp_server_with_one_click_unsubscribe(
    db: Database, clock: ManualClock, http: httpx.AsyncClient, inbox: tuple[Inbox, SmtpMailer]
) -> None:
    template(db, clock)
    profile = person(db, clock)
    answer = await http.post(
        "/v1/messages", json={"profile_id": str(profile), "template": "soldes"},
        headers=headers(db, clock),
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "sent"
    [message] = inbox[0].messages
    assert message["To"] == "lea.martin@example.com"
    assert message["Subject"] == "Bonjour Léa"
    assert message["List-Unsubscribe"].startswith(f"<{PUBLIC}/consent/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Bonjour Léa" in body(message, "plain")
    html = body(message, "html")
    assert f'href="{PUBLIC}/m/c/' in html
    assert "shop.example" not in html
    assert f'src="{PUBLIC}/m/o/' in html


async def test_a_retried_request_with_the_same_key_sends_one_email(
    db: Database, clock: ManualClock, http: httpx.AsyncClient, inbox: tuple[Inbox, SmtpMailer]
) -> None:
    template(db, clock)
    profile = person(db, clock)
    sent = {"profile_id": str(profile), "template": "soldes"}
    auth = headers(db, clock)
    first = await http.post("/v1/messages", json=sent, headers=auth)
    again = await http.post("/v1/messages", json=sent, headers=auth)
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(inbox[0].messages) == 1


async def test_a_send_without_idempotency_key_is_refused(
    db: Database, clock: ManualClock, http: httpx.AsyncClient
) -> None:
    template(db, clock)
    profile = person(db, clock)
    answer = await http.post(
        "/v1/messages", json={"profile_id": str(profile), "template": "soldes"},
        headers=headers(db, clock, None),
    )  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["parameter"] == "Idempotency-Key"


def _links(db: Database, clock: ManualClock) -> tuple[str, str]:
    box = Outbox()
    template(db, clock)
    profile = person(db, clock)
    with db.transaction() as session:
        send_message(session, clock.now(), SendRequest(profile, "soldes", "k"), outlets(box))
    html = box.emails[0].html or ""
    click = re.search(r'href="https://parcours\.example(/m/c/[^"]+)"', html)
    pixel = re.search(r'src="https://parcours\.example(/m/o/[^"]+)"', html)
    assert click
    assert pixel
    return click.group(1), pixel.group(1)


def _row(db: Database) -> Delivery:
    with db.transaction() as session:
        [row] = session.scalars(select(Delivery)).all()
        return row


async def test_a_click_is_recorded_and_redirects_to_the_signed_target(
    db: Database, clock: ManualClock, http: httpx.AsyncClient
) -> None:
    click, _ = _links(db, clock)
    answer = await http.get(click)
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://shop.example/soldes"
    row = _row(db)
    assert row.click_count == 1
    assert row.clicked_at == clock.now()
    assert row.opened_at is not None


async def test_a_tampered_click_token_is_refused_and_goes_nowhere(
    db: Database, clock: ManualClock, http: httpx.AsyncClient
) -> None:
    click, _ = _links(db, clock)
    payload, _, signature = click.removeprefix("/m/c/").partition(".")
    import base64
    import json

    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["u"] = "https://evil.example/"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    answer = await http.get(f"/m/c/{forged}.{signature}")
    assert answer.status_code == 422
    assert "location" not in answer.headers
    assert _row(db).click_count == 0


async def test_an_altered_link_keeps_its_english_problem_detail(
    db: Database, clock: ManualClock, http: httpx.AsyncClient
) -> None:
    click, _ = _links(db, clock)
    answer = await http.get(click[:-4] + "abcd", headers={"Accept-Language": "fr"})
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["detail"] == "This link is not valid: it was altered or cut."
    assert problem["errors"] == [
        {"detail": "This link is not valid: it was altered or cut.", "parameter": "token"}
    ]


async def test_the_open_pixel_records_the_open(
    db: Database, clock: ManualClock, http: httpx.AsyncClient
) -> None:
    _, pixel = _links(db, clock)
    answer = await http.get(pixel)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    row = _row(db)
    assert row.open_count == 1
    assert row.opened_at == clock.now()


async def test_a_hard_bounce_blocks_later_sends_to_the_address(
    db: Database, clock: ManualClock, http: httpx.AsyncClient, inbox: tuple[Inbox, SmtpMailer]
) -> None:
    template(db, clock)
    profile = person(db, clock)
    sent = await http.post(
        "/v1/messages", json={"profile_id": str(profile), "template": "soldes"},
        headers=headers(db, clock),
    )  # fmt: skip
    delivery_id = sent.json()["delivery_id"]
    bounce = await http.post(
        "/v1/deliveries/bounces", json={"kind": "hard", "delivery_id": delivery_id},
        headers=headers(db, clock, None),
    )  # fmt: skip
    assert bounce.status_code == 200
    assert bounce.json()["hard"] is True
    later = await http.post(
        "/v1/messages", json={"profile_id": str(profile), "template": "soldes"},
        headers=headers(db, clock, "send-2"),
    )  # fmt: skip
    assert (later.json()["status"], later.json()["reason"]) == ("suppressed", "bounced_address")
    assert len(inbox[0].messages) == 1
    log = await http.get("/v1/deliveries?status=bounced", headers=headers(db, clock, None))
    assert [d["id"] for d in log.json()["items"]] == [delivery_id]


async def test_soft_bounces_are_counted_and_do_not_block(
    db: Database, clock: ManualClock, http: httpx.AsyncClient
) -> None:
    auth = headers(db, clock, None)
    for expected in (1, 2):
        answer = await http.post(
            "/v1/deliveries/bounces",
            json={"kind": "soft", "address": "lea.martin@example.com"}, headers=auth,
        )  # fmt: skip
        assert answer.json() == {"delivery_id": None, "hard": False, "soft_count": expected}


async def test_a_template_error_is_a_problem_naming_the_field(
    db: Database, clock: ManualClock, http: httpx.AsyncClient
) -> None:
    answer = await http.post(
        "/v1/templates",
        json={"key": "oops", "channel": "sms", "kind": "marketing",
              "content": {"text_fr": "Bonjour\n{{ custmer.first_name }}"}},
        headers=headers(db, clock, None),
    )  # fmt: skip
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    [error] = answer.json()["errors"]
    assert error["pointer"] == "#/text_fr"
    assert "line 2" in error["detail"]


async def test_preview_renders_a_template_for_a_real_profile(
    db: Database, clock: ManualClock, http: httpx.AsyncClient
) -> None:
    template(db, clock)
    profile = person(db, clock, locale="en")
    answer = await http.post(
        "/v1/templates/soldes/preview", json={"profile_id": str(profile)},
        headers=headers(db, clock, None),
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["locale"] == "en"
    assert answer.json()["parts"]["subject"] == "Hello Léa"
