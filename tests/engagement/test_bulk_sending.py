"""Sending many messages at once: `send_messages` applies exactly the rules of
`send_message` (which is its batch of one) with a constant number of queries per batch,
sends emails over one SMTP connection and writes the delivery rows in bulk."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.core.mail import SmtpMailer
from parcours.engagement import SendRequest, send_batch, send_messages
from parcours.engagement.models import Delivery
from parcours.engagement.policy import Policy, set_policy
from tests.engagement.helpers import Outbox, outlets, person, template
from tests.orders.test_notifications import Inbox, inbox

__all__ = ["inbox"]


def people(db: Database, clock: ManualClock, count: int, **kw: Any) -> list[uuid.UUID]:
    return [
        person(db, clock, f"client{i}@example.com", phone=f"+336{i:08d}", **kw)
        for i in range(count)
    ]


def requests(ids: list[uuid.UUID], prefix: str = "bulk") -> list[SendRequest]:
    return [SendRequest(pid, "soldes", f"{prefix}:{pid}") for pid in ids]


@contextmanager
def counted(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)


def test_a_batch_sends_each_message_through_the_rules(db: Database, clock: ManualClock) -> None:
    box = Outbox()
    template(db, clock)
    allowed = people(db, clock, 3)
    refused = person(db, clock, "sans.accord@example.com", consent=())
    with db.transaction() as session:
        outcomes = send_messages(session, clock.now(), requests([*allowed, refused]), outlets(box))
    assert [(o.status, o.reason) for o in outcomes] == [("sent", None)] * 3 + [
        ("suppressed", "no_consent")
    ]
    assert sorted(m.to for m in box.emails) == [f"client{i}@example.com" for i in range(3)]
    with db.transaction() as session:
        assert session.scalar(select(Delivery).where(Delivery.profile_id == refused)) is not None


def test_the_number_of_queries_does_not_grow_with_the_batch(
    db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    ids = people(db, clock, 25)
    with db.transaction() as session:  # the first send ever creates the signing secret
        send_messages(session, clock.now(), requests(ids[:1], "first"), outlets(Outbox()))
    sizes = []
    for batch, prefix in ((ids[1:4], "small"), (ids[4:], "large")):
        with db.transaction() as session, counted(db) as statements:
            send_messages(session, clock.now(), requests(batch, prefix), outlets(Outbox()))
        sizes.append(len(statements))
    assert sizes[1] == sizes[0], "21 messages take as many statements as 3"


def test_a_key_already_used_is_a_replay_and_sends_nothing(db: Database, clock: ManualClock) -> None:
    box = Outbox()
    template(db, clock)
    [first, second] = people(db, clock, 2)
    with db.transaction() as session:
        send_messages(session, clock.now(), requests([first]), outlets(box))
    with db.transaction() as session:
        outcomes = send_messages(
            session, clock.now(), [*requests([first, second]), *requests([second])], outlets(box)
        )
    assert [(o.status, o.replayed) for o in outcomes] == [
        ("sent", True), ("sent", False), ("sent", True),
    ]  # fmt: skip
    assert outcomes[1].delivery_id == outcomes[2].delivery_id
    assert len(box.emails) == 2


def test_the_frequency_cap_counts_the_messages_of_the_batch(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock)
    [profile] = people(db, clock, 1)
    with db.transaction() as session:
        set_policy(session, clock.now(), "test", Policy("email", 2, 7))
        outcomes = send_messages(
            session, clock.now(),
            [SendRequest(profile, "soldes", f"cap:{n}") for n in range(3)], outlets(box),
        )  # fmt: skip
    assert [(o.status, o.reason) for o in outcomes] == [
        ("sent", None), ("sent", None), ("suppressed", "frequency_cap"),
    ]  # fmt: skip


def test_a_bad_request_refuses_the_batch_naming_it(db: Database, clock: ManualClock) -> None:
    box = Outbox()
    template(db, clock)
    [profile] = people(db, clock, 1)
    bad = [*requests([profile]), SendRequest(profile, "inconnu", "bad:1")]
    with db.transaction() as session, pytest.raises(InvalidInput) as refused:
        send_messages(session, clock.now(), bad, outlets(box))
    assert refused.value.errors[0].pointer == "#/1/template"
    assert box.emails == []


def test_the_lenient_batch_gives_each_bad_request_its_error(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock)
    [profile] = people(db, clock, 1)
    batch = [SendRequest(profile, "inconnu", "bad:1"), *requests([profile]),
             SendRequest(profile, "soldes", " ")]  # fmt: skip
    with db.transaction() as session:
        found = send_batch(session, clock.now(), batch, outlets(box))
    assert isinstance(found[0], InvalidInput)
    assert found[0].errors[0].pointer == "#/template"
    assert not isinstance(found[1], InvalidInput)
    assert found[1].status == "sent"
    assert isinstance(found[2], InvalidInput)
    assert found[2].errors[0].pointer == "#/idempotency_key"
    assert len(box.emails) == 1


def test_a_batch_of_emails_uses_one_smtp_connection(
    db: Database,
    clock: ManualClock,
    inbox: tuple[Inbox, SmtpMailer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connections: list[int] = []

    class Counted(smtplib.SMTP):
        def __init__(self, *args: Any, **kw: Any) -> None:
            connections.append(1)
            super().__init__(*args, **kw)

    monkeypatch.setattr(smtplib, "SMTP", Counted)
    template(db, clock)
    ids = people(db, clock, 5)
    with db.transaction() as session:
        outcomes = send_messages(session, clock.now(), requests(ids), outlets(mailer=inbox[1]))
    assert {o.status for o in outcomes} == {"sent"}
    assert len(inbox[0].messages) == 5
    assert len(connections) == 1
