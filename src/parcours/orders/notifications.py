"""Transactional emails about an order: confirmation, ready for pickup, refund.

An outbox consumer (`notification_consumer()`) turns the order's events into emails in
the order's language (French or English, text and HTML), sent through the installation's
mailer (`parcours.core.mail`). They are transactional: no marketing consent is needed,
but an order whose personal data was erased (no email) gets nothing.

Sent at most once per event, as far as a mailer allows: each email sent is written to
the order's timeline (kind `email`, with the event id) in the consumer's transaction,
and an event whose email is already on the timeline is skipped, so replaying the outbox
sends nothing twice. The one gap left is a crash between the SMTP server accepting the
message and the commit; the message then carries `X-Parcours-Event-Id` so a duplicate
can be recognised (the Message-ID itself is the mailer's to make).

The pickup code is never in an event (events also go to webhooks and the log): the
shop shows it once at checkout, and the ready-for-pickup email asks the customer to
bring it, or their order number and an ID.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core.errors import NotFound
from parcours.core.events import Consumer
from parcours.core.mail import Mailer, OutgoingEmail
from parcours.core.models import OutboxEvent
from parcours.core.settings import get_settings
from parcours.orders.models import Order, OrderEvent
from parcours.orders.service import (
    FULFILMENT_READY,
    ORDER_COMPLETED,
    ORDER_REFUNDED,
    add_event,
    get_order,
    lines_of,
    order_link_path,
)

CONSUMER_NAME = "orders.notifications"
TEMPLATES = {
    ORDER_COMPLETED: "confirmation",
    FULFILMENT_READY: "ready",
    ORDER_REFUNDED: "refund",
}
SUBJECTS = {
    ("confirmation", "fr"): "Votre commande {number} est confirmée",
    ("confirmation", "en"): "Your order {number} is confirmed",
    ("ready", "fr"): "Votre commande {number} vous attend en magasin",
    ("ready", "en"): "Your order {number} is ready for pickup",
    ("refund", "fr"): "Remboursement de votre commande {number}",
    ("refund", "en"): "Refund for your order {number}",
}
DAYS = {
    "fr": {"mon": "lundi", "tue": "mardi", "wed": "mercredi", "thu": "jeudi",
           "fri": "vendredi", "sat": "samedi", "sun": "dimanche"},
    "en": {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
           "fri": "Friday", "sat": "Saturday", "sun": "Sunday"},
}  # fmt: skip


def money(cents: int, currency: str, locale: str) -> str:
    """`124,70 €` in French, `€124.70` in English (euros; other currencies by code)."""
    units, rest = divmod(abs(cents), 100)
    sign = "-" if cents < 0 else ""
    if locale == "fr":
        symbol = " €" if currency == "EUR" else f" {currency}"
        return f"{sign}{units:,}".replace(",", "\u202f") + f",{rest:02d}{symbol}"
    symbol = "€" if currency == "EUR" else f"{currency} "
    return f"{sign}{symbol}{units:,}.{rest:02d}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("parcours.orders", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    )
    env.filters["money"] = money
    return env


def _already_sent(session: Session, order_id: uuid.UUID, event_id: str) -> bool:
    emails = session.scalars(
        select(OrderEvent.data).where(OrderEvent.order_id == order_id, OrderEvent.kind == "email")
    )
    return any(data.get("event_id") == event_id for data in emails)


def _store_context(session: Session, store_id: str | None, locale: str) -> dict[str, Any]:
    if not store_id:
        return {}
    try:
        store = stores.get_store(session, uuid.UUID(store_id))
    except (NotFound, ValueError):
        return {}
    hours = [
        (DAYS[locale][day], ", ".join(f"{a}–{b}" for a, b in ranges))
        for day, ranges in store.opening_hours.items()
        if day in DAYS[locale]
    ]
    return {"store": store, "hours": hours, "timezone": store.timezone}


def _local(at: str | None, timezone: str) -> datetime | None:
    return datetime.fromisoformat(at).astimezone(ZoneInfo(timezone)) if at else None


def compose(
    session: Session,
    order: Order,
    kind: str,
    properties: dict[str, Any],
    now: datetime | None = None,
) -> OutgoingEmail:
    """The email of `kind` about `order` (in its locale), with the link to the order's
    own page (follow it, cancel it, how to return)."""
    locale = order.locale if order.locale in ("fr", "en") else "fr"
    link = get_settings().resolved_public_url + order_link_path(
        session, now or datetime.now(UTC), order
    )
    context: dict[str, Any] = {
        "link": link,
        "order": order,
        "lines": lines_of(session, order.id),
        "locale": locale,
        "fr": locale == "fr",
        "properties": properties,
        "is_receipt": order.channel == "store",
    }
    if kind == "ready":
        context.update(_store_context(session, properties.get("pickup_store_id"), locale))
        hold = _local(properties.get("hold_until"), context.get("timezone", "Europe/Paris"))
        context["hold_until"] = hold.strftime("%d/%m/%Y %H:%M") if hold else None
    env = _environment()
    return OutgoingEmail(
        to=order.email or "",
        subject=SUBJECTS[(kind, locale)].format(number=order.number),
        text=env.get_template(f"email/{kind}.txt").render(context),
        html=env.get_template(f"email/{kind}.html").render(context),
    )


def notify(session: Session, mailer: Mailer, event: OutboxEvent, now: datetime) -> str | None:
    """Send the email an order event calls for; returns its Message-ID, or None when
    there is nothing to send (no email, erased, not an order, already sent)."""
    kind = TEMPLATES.get(event.type)
    try:
        order = get_order(session, uuid.UUID(str(event.payload.get("order_id"))))
    except (NotFound, ValueError):
        return None
    if kind is None or not order.email or order.erased_at is not None:
        return None
    event_id = str(event.event_id)
    if _already_sent(session, order.id, event_id):
        return None
    message = compose(session, order, kind, dict(event.payload.get("properties") or {}), now)
    message = OutgoingEmail(
        **{**message.__dict__, "date": now, "headers": {"X-Parcours-Event-Id": event_id}}
    )
    message_id = mailer.send_email(message)
    add_event(
        session, now, order.id, "email", "notifications",
        note=f"{kind} email sent", data={"event_id": event_id, "template": kind},
    )  # fmt: skip
    return message_id


def notification_consumer(
    mailer: Mailer | None = None, clock: Callable[[], datetime] | None = None
) -> Consumer:
    """The outbox consumer sending order emails; the mailer defaults to the
    installation's (`mailer_for(settings)`: SMTP, or .eml files under DATA_DIR/mail)."""
    chosen: list[Mailer] = [mailer] if mailer is not None else []

    def handle(session: Session, event: OutboxEvent) -> None:
        if not chosen:
            from parcours.core.mail import mailer_for

            chosen.append(mailer_for(get_settings()))
        now = clock() if clock is not None else datetime.now(UTC)
        notify(session, chosen[0], event, now)

    return Consumer(CONSUMER_NAME, handle, frozenset(TEMPLATES))
