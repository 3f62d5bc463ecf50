"""Journeys: people entered per second from trigger events, and steps advanced per
second by the due job, with every message sent through engagement's rules to the
`.eml` file mailer (the embedded default when no SMTP server is set).

Profiles with a user id and the marketing email consent are written in bulk to a fresh
SQLite database (or `--database-url`); one `Product Added` per profile is logged; the
tracking-log pass enters everyone into an abandoned-cart journey (wait 1 h → cart
still open? → send); an hour later the due job runs every instance to its message.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench.report import Report, Table, note
from parcours import customers, engagement, journeys
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database, bulk_insert
from parcours.core.mail import FileMailer
from parcours.core.migrate import upgrade
from parcours.customers.models import IdentityIdentifier, TrackedEvent
from parcours.journeys.worker import read_event_log_job

DESCRIPTION = "Journeys: entries/s from trigger events, steps/s of the due job with sends"
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)
DEFINITION = {
    "trigger": {"type": "event", "event": "Product Added"},
    "steps": [
        {"id": "wait", "type": "wait", "hours": 1, "next": "open"},
        {"id": "open", "type": "condition", "if": {"kind": "cart_open"}, "yes": "send"},
        {"id": "send", "type": "send", "template": "cart", "with_cart": True},
    ],
    "exit": [{"event": "Order Completed"}],
    "reentry": {"mode": "always"},
}
EMAIL = {"subject_fr": "Votre panier", "subject_en": "Your basket",
         "text_fr": "{% for i in cart['items'] %}{{ i['sku'] }} {% endfor %}",
         "text_en": "{% for i in cart['items'] %}{{ i['sku'] }} {% endfor %}"}  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench journeys", description=DESCRIPTION)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--database-url", default="")
    return parser.parse_args(argv)


def _event(user: str, at: datetime) -> dict[str, Any]:
    return {
        "message_id": uuid.uuid4().hex, "type": "track", "event": "Product Added",
        "user_id": user, "anonymous_id": None, "previous_id": None, "group_id": None,
        "channel": "web", "store_id": None, "source_id": None, "timestamp": at,
        "received_at": at, "sent_at": None, "original_timestamp": None,
        "properties": {"sku": "ROBE-LIN-M", "quantity": 1}, "traits": None, "context": None,
    }  # fmt: skip


def populate(db: Database, profiles: int) -> None:
    users = [f"u{i}" for i in range(profiles)]
    for start in range(0, len(users), 5000):
        chunk = users[start : start + 5000]
        rows = [{"email": f"{u}@example.com", "first_name": "Léa"} for u in chunk]
        with db.transaction() as session:
            ids = customers.add_customers(session, NOW - timedelta(days=30), rows)
            session.execute(bulk_insert(IdentityIdentifier), [
                {"kind": "user_id", "value": user, "profile_id": pid, "origin_profile_id": pid,
                 "cluster_id": pid, "source": "bench", "first_seen": NOW, "last_seen": NOW}
                for user, pid in zip(chunk, ids, strict=True)
            ])  # fmt: skip
            customers.add_consents(session, [
                {"customer_id": pid, "purpose": "marketing", "channel": "email", "granted": True,
                 "at": NOW - timedelta(days=1), "source": "bench", "proof": "bench"}
                for pid in ids
            ])  # fmt: skip


def run(argv: list[str]) -> Report:
    options = parse(argv)
    clock = ManualClock(NOW)
    with TemporaryDirectory() as tmp:
        url = options.database_url or f"sqlite:///{Path(tmp) / 'journeys.db'}"
        db = Database.connect(url)
        upgrade(db)
        note(f"populating {options.profiles:,} profiles")
        populate(db, options.profiles)
        with db.transaction() as session:
            engagement.save_template(
                session, NOW, engagement.TemplateInput("cart", "email", "marketing", EMAIL), "bench"
            )
            journeys.create_journey(session, NOW, CLI_ACTOR, "cart", "Cart", DEFINITION)
            journeys.set_status(session, NOW, CLI_ACTOR, "cart", "active")
        read_event_log_job(db, clock)  # the cursor starts at the log's head
        with db.transaction() as session:
            rows = [_event(f"u{i}", NOW) for i in range(options.profiles)]
            for start in range(0, len(rows), 5000):
                session.execute(bulk_insert(TrackedEvent), rows[start : start + 5000])
        note("entering everyone from their Product Added")
        started = time.perf_counter()
        entered = read_event_log_job(db, clock)
        enter_s = time.perf_counter() - started
        outlets = engagement.Outlets(
            FileMailer(Path(tmp) / "mail", "bench@example.com"), "http://127.0.0.1:8000",
            engagement.LoggingSmsGateway(), engagement.LoggingPushGateway(),
            _NoWebhooks(),
        )  # fmt: skip
        actions = journeys.Actions(outlets)
        started = time.perf_counter()
        first_steps = journeys.run_due(db, clock, actions)
        first_s = time.perf_counter() - started
        clock.advance(timedelta(hours=1, minutes=1))
        note("one hour later: the due job runs every instance to its message")
        started = time.perf_counter()
        steps = journeys.run_due(db, clock, actions)
        due_s = time.perf_counter() - started
        sent = len(list((Path(tmp) / "mail").glob("*.eml")))
        db.dispose()
    figures = {
        "profiles": options.profiles,
        "entered": entered,
        "entered_per_s": round(entered / enter_s, 1),
        "first_steps_per_s": round(first_steps / first_s, 1),
        "steps_after_wait": steps,
        "steps_per_s_with_sends": round(steps / due_s, 1),
        "emails_written": sent,
        "due_job_seconds": round(due_s, 2),
    }
    rows_out = [[name, str(value)] for name, value in figures.items()]
    return Report("Journeys", figures, (Table("Journeys", ("figure", "value"), rows_out),))


class _NoWebhooks:
    def post(self, delivery_id: uuid.UUID, url: str, body: bytes, secret: str) -> str:
        return "unused"
