"""Builders for the engagement tests: customers with consents, templates, outlets that
record what leaves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parcours import customers
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.mail import Mailer, OutgoingEmail
from parcours.engagement import LoggingPushGateway, Outlets, TemplateInput, save_template
from parcours.engagement.channels import HttpWebhookPoster

PUBLIC = "https://parcours.example"


@dataclass
class Outbox:
    """A mailer and an SMS gateway that keep what they are given."""

    emails: list[OutgoingEmail] = field(default_factory=list)
    sms: list[tuple[uuid.UUID, str, str]] = field(default_factory=list)

    def send_email(self, message: OutgoingEmail) -> str:
        self.emails.append(message)
        return f"<{len(self.emails)}@test>"

    def send_sms(self, delivery_id: uuid.UUID, to: str, text: str) -> str:
        self.sms.append((delivery_id, to, text))
        return f"sms-{len(self.sms)}"


def outlets(box: Outbox | None = None, mailer: Mailer | None = None) -> Outlets:
    box = box or Outbox()
    return Outlets(mailer or box, PUBLIC, box, LoggingPushGateway(), HttpWebhookPoster())


def person(
    db: Database,
    clock: ManualClock,
    email: str = "lea.martin@example.com",
    *,
    consent: tuple[str, ...] = ("email", "sms"),
    locale: str = "fr",
    timezone: str = "Europe/Paris",
    phone: str = "+33612345678",
) -> uuid.UUID:
    """A customer with the marketing consent on the given channels."""
    with db.transaction() as session:
        [profile_id] = customers.add_customers(
            session,
            clock.now(),
            [{"email": email, "phone": phone, "first_name": "Léa", "last_name": "Martin",
              "locale": locale, "timezone": timezone}],
        )  # fmt: skip
        customers.add_consents(
            session,
            [
                {"customer_id": profile_id, "purpose": "marketing", "channel": channel,
                 "granted": True, "at": clock.now(), "source": "test", "proof": "form"}
                for channel in consent
            ],
        )  # fmt: skip
    return profile_id


EMAIL = {
    "subject_fr": "Bonjour {{ customer.first_name }}",
    "subject_en": "Hello {{ customer.first_name }}",
    "html_fr": '<p>Bonjour {{ customer.first_name }}, <a href="https://shop.example/soldes">'
    "les soldes</a></p>",
    "html_en": '<p>Hello {{ customer.first_name }}, <a href="https://shop.example/sale">'
    "the sale</a></p>",
    "text_fr": "Bonjour {{ customer.first_name }}",
    "text_en": "Hello {{ customer.first_name }}",
}


def template(
    db: Database,
    clock: ManualClock,
    key: str = "soldes",
    channel: str = "email",
    kind: str = "marketing",
    content: dict[str, Any] | None = None,
) -> None:
    default = EMAIL if channel == "email" else {"text_fr": "Promo {{ customer.first_name }}"}
    with db.transaction() as session:
        save_template(
            session, clock.now(), TemplateInput(key, channel, kind, content or default), "test"
        )


def at(clock: ManualClock) -> datetime:
    return clock.now()
