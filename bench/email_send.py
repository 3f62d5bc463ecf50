"""Emails/s through the full send path against a bare smtplib loop.

A temporary SQLite database holds N customers with the marketing consent by email and
one HTML + text template with a link. Each message is queued as a campaign would queue
it and sent by the worker's path (`send_due`): consent, bounce and cap checks read per
batch, rendering in the sandbox, click-tracking links and open pixel signed, the
one-click unsubscribe link, SMTP to a local aiosmtpd server, the delivery log written.
Then the same people are sent a message directly, as the API or a journey does: first
with one `send_message` call per person (each its own reads, insert and SMTP connection),
then with one `send_messages` call per batch (the rules read once, one bulk insert, one
SMTP connection): the before/after of bulk sends.

The baseline sends the very same rendered messages (the bytes the server received)
with a bare `smtplib` loop, one connection per message as `SmtpMailer` does; a second
baseline keeps one connection open, as the send path does per batch: the ratio is
Parcours' rate over that one's (the other ratio is reported too).
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from bench.report import Report, Table, count, note, seconds
from parcours import customers
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.mail import SmtpMailer
from parcours.core.migrate import upgrade
from parcours.engagement import LoggingPushGateway, LoggingSmsGateway, Outlets
from parcours.engagement.channels import HttpWebhookPoster
from parcours.engagement.models import Delivery
from parcours.engagement.policy import Policy, set_policy
from parcours.engagement.sending import (
    SendRequest,
    queue_row,
    send_due,
    send_message,
    send_messages,
)
from parcours.engagement.templates_service import TemplateInput, get_template, save_template

DESCRIPTION = "Emails/s through the full send path (rules, render, SMTP) vs a bare smtplib loop"
NOW = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Paris
SENDER = "Maison Lavande <news@example.com>"
CONTENT = {
    "subject_fr": "{{ customer.first_name }}, les soldes commencent",
    "html_fr": "<html><body><h1>Bonjour {{ customer.first_name }}</h1>"
    '<p>Découvrez <a href="https://shop.example/soldes">les soldes</a> '
    "{% if store %}à {{ store.name }}{% endif %}.</p>"
    '<p><a href="{{ unsubscribe_url }}">Se désabonner</a></p></body></html>',
    "text_fr": "Bonjour {{ customer.first_name }}, les soldes commencent : "
    "https://shop.example/soldes\nSe désabonner : {{ unsubscribe_url }}",
}


class Sink:
    """An SMTP server handler that keeps the raw bytes of each message."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(bytes(envelope.content))
        return "250 OK"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench email_send", description=DESCRIPTION)
    parser.add_argument("--messages", type=int, default=2000, help="emails (default: 2000)")
    parser.add_argument("--batch-size", type=int, default=200, help="rows per transaction")
    options = parser.parse_args(argv)
    if options.messages < 1 or options.batch_size < 1:
        parser.error("--messages and --batch-size must be at least 1")
    return options


@contextmanager
def smtp_server() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def prepare(db: Database, clock: ManualClock, messages: int) -> None:
    """Customers with consent, the template, no cap, and one queued row per customer."""
    with db.transaction() as session:
        ids = customers.add_customers(
            session,
            clock.now(),
            [
                {"email": f"client{i}@example.com", "first_name": f"Client{i}"}
                for i in range(messages)
            ],
        )
        customers.add_consents(
            session,
            [
                {"customer_id": pid, "purpose": "marketing", "channel": "email", "granted": True,
                 "at": clock.now(), "source": "bench", "proof": "form"}
                for pid in ids
            ],
        )  # fmt: skip
        save_template(
            session, clock.now(), TemplateInput("soldes", "email", "marketing", CONTENT), "bench"
        )
        set_policy(session, clock.now(), "bench", Policy("email", None, 7))
        template = get_template(session, "soldes")
        rows = [
            queue_row(
                clock.now(), SendRequest(pid, "soldes", f"bench:{pid}", source="bench"), template
            )
            for pid in ids
        ]
        session.execute(insert(Delivery), rows)


def direct(
    db: Database,
    clock: ManualClock,
    outlets: Outlets,
    ids: list[Any],
    batch_size: int,
    batched: bool,
) -> float:
    """Seconds to send one message to each person directly (as the API, a campaign or a
    journey does), a transaction per `batch_size` people: one `send_message` per person
    or one `send_messages` per batch."""
    prefix = "batch" if batched else "single"
    started = time.perf_counter()
    for start in range(0, len(ids), batch_size):
        chunk = [SendRequest(pid, "soldes", f"{prefix}:{pid}", source="bench")
                 for pid in ids[start : start + batch_size]]  # fmt: skip
        with db.transaction() as session:
            if batched:
                send_messages(session, clock.now(), chunk, outlets)
            else:
                for request in chunk:
                    send_message(session, clock.now(), request, outlets)
    return time.perf_counter() - started


def bare_loop(port: int, raw: list[bytes], one_connection: bool) -> float:
    started = time.perf_counter()
    if one_connection:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for message in raw:
                smtp.sendmail("news@example.com", ["client@example.com"], message)
    else:
        for message in raw:
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                smtp.sendmail("news@example.com", ["client@example.com"], message)
    return time.perf_counter() - started


def run(argv: list[str]) -> Report:
    options = parse(argv)
    clock = ManualClock(NOW)
    with TemporaryDirectory(prefix="parcours-bench-") as folder, smtp_server() as (sink, port):
        db = Database.connect(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            upgrade(db)
            note(f"preparing {options.messages:,} customers and queued messages")
            prepare(db, clock, options.messages)
            mailer = SmtpMailer("127.0.0.1", port, SENDER, starttls=False)
            outlets = Outlets(mailer, "https://parcours.example", LoggingSmsGateway(),
                              LoggingPushGateway(), HttpWebhookPoster())  # fmt: skip
            note("sending through the full path")
            started = time.perf_counter()
            moved = send_due(db, clock, outlets, options.batch_size)
            full_s = time.perf_counter() - started
            with db.transaction() as session:
                sent = session.query(Delivery).filter(Delivery.status == "sent").count()
                ids = list(session.scalars(select(Delivery.profile_id)))
            received = len(sink.messages)
            note("direct sends: one send_message call per person, then send_messages")
            single_s = direct(db, clock, outlets, ids, options.batch_size, batched=False)
            batch_s = direct(db, clock, outlets, ids, options.batch_size, batched=True)
            with db.transaction() as session:
                direct_sent = session.query(Delivery).filter(Delivery.status == "sent").count()
        finally:
            db.dispose()
        if moved != options.messages or sent != options.messages or received != sent:
            raise RuntimeError(f"expected {options.messages} sent, got {sent} ({moved} moved)")
        if direct_sent != 3 * options.messages or len(sink.messages) != direct_sent:
            raise RuntimeError(f"expected {2 * options.messages} direct sends")
        raw = list(sink.messages)[: options.messages]
        note("baseline: the same messages with a bare smtplib loop")
        bare_s = bare_loop(port, raw, one_connection=False)
        kept_s = bare_loop(port, raw, one_connection=True)
    n = options.messages
    rate, bare_rate, kept_rate = n / full_s, n / bare_s, n / kept_s
    rows = [
        ["Parcours send path (rules + render + SMTP)", count(n), seconds(full_s), count(rate)],
        ["send_message, one call per person", count(n), seconds(single_s), count(n / single_s)],
        ["send_messages, one call per batch", count(n), seconds(batch_s), count(n / batch_s)],
        ["bare smtplib, one connection per message", count(n), seconds(bare_s), count(bare_rate)],
        ["bare smtplib, one connection for all", count(n), seconds(kept_s), count(kept_rate)],
    ]
    figures: dict[str, float | int | str | bool] = {
        "messages": n,
        "parcours_emails_per_s": round(rate, 1),
        "send_message_loop_emails_per_s": round(n / single_s, 1),
        "send_messages_batch_emails_per_s": round(n / batch_s, 1),
        "bare_smtplib_emails_per_s": round(bare_rate, 1),
        "bare_smtplib_one_connection_emails_per_s": round(kept_rate, 1),
        # Like for like: Parcours keeps one connection per batch too.
        "ratio_vs_bare_smtplib": round(rate / kept_rate, 3),
        "ratio_vs_bare_smtplib_connection_per_message": round(rate / bare_rate, 3),
    }
    return Report(
        f"Email sends to a local aiosmtpd server: {n:,} messages, batches of {options.batch_size}",
        figures,
        [Table("Throughput", ("path", "emails", "seconds", "emails/s"), rows)],
    )
