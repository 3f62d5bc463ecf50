"""Builders for the journeys tests: people who can be tracked and contacted, templates,
journeys, and one call that runs what the worker would."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from parcours import customers, journeys
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.events import drain
from parcours.engagement import TemplateInput, save_template
from tests.builders import event_row, known_person, log_events
from tests.engagement.helpers import Outbox, outlets

EMAIL = {
    "subject_fr": "Bonjour {{ customer.first_name }}",
    "subject_en": "Hello {{ customer.first_name }}",
    "text_fr": "Code : {{ promo_code }} {% if cart %}{% for i in cart['items'] %}"
    "{{ i['sku'] }} x{{ i['quantity'] }} ({{ i['stock_at_store'] }}) {% endfor %}{% endif %}",
    "text_en": "Code: {{ promo_code }}",
}


def person(
    db: Database,
    clock: ManualClock,
    user_id: str = "u1",
    email: str = "lea.martin@example.com",
    consent: bool = True,
    **traits: Any,
) -> uuid.UUID:
    """A tracked customer (events with `user_id` are theirs), with the marketing email
    consent unless told otherwise."""
    profile_id: uuid.UUID = known_person(
        db, clock, traits={"first_name": "Léa", **traits}, user_id=user_id, email=email
    )
    if consent:
        with db.transaction() as session:
            customers.add_consents(
                session,
                [
                    {"customer_id": profile_id, "purpose": "marketing", "channel": "email",
                     "granted": True, "at": clock.now(), "source": "test", "proof": "form"}
                ],
            )  # fmt: skip
    return profile_id


def template(db: Database, clock: ManualClock, key: str = "relance") -> None:
    with db.transaction() as session:
        save_template(session, clock.now(), TemplateInput(key, "email", "marketing", EMAIL), "t")


def journey(
    db: Database, clock: ManualClock, definition: dict[str, Any], key: str = "relance",
    active: bool = True,
) -> None:  # fmt: skip
    with db.transaction() as session:
        journeys.create_journey(session, clock.now(), CLI_ACTOR, key, "Relance", definition)
        if active:
            journeys.set_status(session, clock.now(), CLI_ACTOR, key, "active")


def track(db: Database, at: datetime, name: str, user_id: str = "u1", **properties: Any) -> None:
    log_events(db, event_row(at, event=name, user_id=user_id, properties=properties))


class Worker:
    """Runs what the worker runs for journeys, with outlets that keep the messages."""

    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db, self.clock = db, clock
        self.box = Outbox()
        self.actions = journeys.Actions(outlets(self.box))

    def run(self) -> int:
        drain(self.db, journeys.consumers(self.clock), self.clock)
        return journeys.run_all(self.db, self.clock, self.actions)


def stats(db: Database, key: str = "relance") -> dict[str, Any]:
    with db.transaction() as session:
        found = journeys.journey_stats(session, key)
    return {s.step_id: (s.entered, s.waiting, s.done, s.exited) for s in found.steps} | {
        "_": (found.entered, found.active, found.completed, found.exited)
    }
