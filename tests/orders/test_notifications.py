"""Order emails through a real SMTP server (aiosmtpd): once per event, in the order's
language, never to an erased order."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from parcours.core.events import drain
from parcours.core.mail import SmtpMailer
from parcours.core.models import ConsumerCursor
from parcours.orders import notifications, pos, service
from parcours.orders.models import Order
from tests.builders import utc
from tests.orders.conftest import Shop


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, SmtpMailer]]:
    box = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield (
            box,
            SmtpMailer("127.0.0.1", port, "Maison Lavande <shop@example.com>", starttls=False),
        )
    finally:
        controller.stop()


RECEIPT = pos.Receipt(
    store="LYO-1",
    till="T1",
    cashier="c.durand",
    number="77",
    sold_at=utc(2026, 3, 14, 9, 0),
    lines=[pos.ReceiptLine("BOUGIE-S", 1, 1990)],
    payments=[pos.Tender("card", 1990)],
    email="lea.martin@example.com",
)


def place(shop: Shop, receipt: pos.Receipt = RECEIPT) -> Order:
    with shop.db.transaction() as session:
        order = pos.record_receipt(session, shop.clock.now(), receipt).order
        session.expunge(order)
        return order


def run(shop: Shop, mailer: SmtpMailer) -> None:
    consumer = notifications.notification_consumer(mailer, shop.clock.now)
    drain(shop.db, [consumer], shop.clock)


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


def test_a_receipt_with_an_email_gets_one_confirmation_even_when_replayed(
    shop: Shop, inbox: tuple[Inbox, SmtpMailer]
) -> None:
    box, mailer = inbox
    order = place(shop)
    run(shop, mailer)
    with shop.db.transaction() as session:  # replay the whole outbox
        cursor = session.get(ConsumerCursor, notifications.CONSUMER_NAME)
        assert cursor is not None
        cursor.position = 0
    run(shop, mailer)
    [message] = box.messages
    assert message["To"] == "lea.martin@example.com"
    assert message["Subject"] == f"Votre commande {order.number} est confirmée"
    assert "19,90\u202f€" in body(message, "plain") or "19,90 €" in body(message, "plain")
    assert message["X-Parcours-Event-Id"]
    assert "<strong>" in body(message, "html")
    # The customer's own page, by a signed link (follow, cancel, return).
    assert "/my/orders/" in body(message, "plain")
    assert 'href="http://127.0.0.1:8000/my/orders/' in body(message, "html")
    with shop.db.transaction() as session:
        kinds = [e.kind for e in service.timeline_of(session, order.id)]
    assert kinds.count("email") == 1


def test_no_email_without_an_address_nor_to_an_erased_order(
    shop: Shop, inbox: tuple[Inbox, SmtpMailer]
) -> None:
    box, mailer = inbox
    place(shop, replace(RECEIPT, number="1", email=None))
    erased = place(shop, replace(RECEIPT, number="2"))
    with shop.db.transaction() as session:
        row = session.scalar(select(Order).where(Order.id == erased.id))
        assert row is not None
        row.email, row.erased_at = None, shop.clock.now()
    run(shop, mailer)
    assert box.messages == []


def test_ready_for_pickup_and_refund_emails_follow_the_order_language(
    shop: Shop, inbox: tuple[Inbox, SmtpMailer]
) -> None:
    box, mailer = inbox
    order = place(shop, replace(RECEIPT, locale="en"))
    run(shop, mailer)
    assert len(box.messages) == 1
    with shop.db.transaction() as session:
        row = service.get_order(session, order.id)
        hold = utc(2026, 3, 24, 18, 0).isoformat()
        store = str(shop.locations["LYO-1"])
        service.emit(
            session, shop.clock.now(), row, service.FULFILMENT_READY, step="f1",
            properties={"pickup_store_id": store, "hold_until": hold},
        )  # fmt: skip
        service.emit(
            session, shop.clock.now(), row, service.ORDER_REFUNDED, step="r1",
            properties={"refund_cents": 1990},
        )  # fmt: skip
    run(shop, mailer)
    _, ready, refund = box.messages
    assert ready["Subject"] == f"Your order {order.number} is ready for pickup"
    text = body(ready, "plain")
    assert "Maison Lavande Lyon" in text
    assert "24/03/2026 19:00" in text  # the store's local time
    assert "Saturday: 10:00–19:00" in text
    assert "pickup code" in text
    assert refund["Subject"] == f"Refund for your order {order.number}"
    assert "€19.90" in body(refund, "plain")


def test_the_html_part_escapes_catalogue_text() -> None:
    env = notifications._environment()
    order = type("O", (), {"currency": "EUR", "total": 100, "vat_total": 17})()
    line = type("L", (), {"quantity": 1, "name": "<script>", "sku": "S", "total": 100})()
    context = {"lines": [line], "order": order, "locale": "fr", "fr": True}
    html = env.get_template("email/_lines.html").render(context)
    assert "&lt;script&gt;" in html
    assert "<script>" not in html
    text = env.get_template("email/_lines.txt").render(context)
    assert "<script>" in text  # the text part is not HTML: nothing to escape
