"""`parcours engagement …` as an operator runs it; a person's messages in their export,
on their timeline, and pseudonymised by an erasure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from parcours import customers, engagement
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.engagement import SendRequest, send_message
from parcours.engagement.models import Delivery
from tests.engagement.helpers import Outbox, outlets, person, template
from tests.test_cli import parcours_in_process


def test_templates_policy_and_sends_from_the_command_line(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parcours = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"key": "promo", "channel": "sms", "kind": "marketing",
                               "content": {"text_fr": "{{ prenom }}"}}))  # fmt: skip
    refused = parcours("engagement", "templates", "add", str(bad))
    assert refused.returncode != 0
    assert "text_fr" in refused.stdout + refused.stderr
    good = tmp_path / "promo.json"
    content = {"text_fr": "Bonjour {{ customer.first_name }}"}
    good.write_text(
        json.dumps({"key": "promo", "channel": "sms", "kind": "marketing", "content": content})
    )
    added = parcours("engagement", "templates", "add", str(good))
    assert added.returncode == 0, added.stderr
    assert "version 1" in added.stdout
    listed = parcours("engagement", "templates", "list")
    assert "promo" in listed.stdout
    policy = parcours("engagement", "policy", "set", "sms", "--max", "1",
                      "--quiet", "20:00-09:00", "--quiet-days", "sun")  # fmt: skip
    assert policy.returncode == 0, policy.stderr
    shown = parcours("engagement", "policy", "list")
    assert "20:00-09:00" in shown.stdout
    campaigns = parcours("engagement", "campaigns", "list")
    assert campaigns.returncode == 0, campaigns.stderr


def test_a_persons_messages_are_in_their_export_and_timeline_then_pseudonymised(
    db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    profile = person(db, clock)
    with db.transaction() as session:
        send_message(session, clock.now(), SendRequest(profile, "soldes", f"x:{profile}"),
                     outlets(Outbox()))  # fmt: skip
    [handler] = engagement.personal_data_handlers()
    [source] = engagement.timeline_sources()
    with db.transaction() as session:
        exported = handler.export(session, profile)["message_deliveries"]
        assert [(d["template"], d["status"]) for d in exported] == [("soldes", "sent")]
        query = customers.TimelineQuery(profile, (), None, 10)
        [entry] = source(session, query)
        assert (entry.kind, entry.title, entry.channel) == ("message", "soldes", "email")
        assert handler.erase(session, clock.now(), profile) == 1
    with db.transaction() as session:
        [row] = session.scalars(select(Delivery)).all()
        assert row.profile_id is None
        assert str(profile) not in row.idempotency_key
        assert handler.export(session, profile)["message_deliveries"] == []
