"""Push messages go to the device linked to each person, looked up for the whole batch
at once; a person without a device is refused with `no_address`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from parcours.core.clock import ManualClock
from parcours.core.db import Database, bulk_insert
from parcours.customers.models import IdentityIdentifier
from parcours.engagement import Outlets, SendRequest, send_messages
from parcours.engagement.channels import HttpWebhookPoster
from tests.engagement.helpers import PUBLIC, Outbox, person, template
from tests.engagement.test_bulk_sending import counted


@dataclass
class Phones:
    """A push gateway that keeps what it is given."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def send_push(
        self, delivery_id: uuid.UUID, device: str, title: str, body: str, deep_link: str | None
    ) -> str:
        self.sent.append((device, title, body))
        return f"push-{len(self.sent)}"


def devices(db: Database, clock: ManualClock, profile_id: uuid.UUID, *values: str) -> None:
    with db.transaction() as session:
        session.execute(bulk_insert(IdentityIdentifier), [
            {"kind": "device", "value": value, "profile_id": profile_id,
             "origin_profile_id": profile_id, "cluster_id": profile_id, "source": "app",
             "first_seen": clock.now(), "last_seen": clock.now()}
            for value in values
        ])  # fmt: skip


def test_each_push_goes_to_the_persons_device_and_nobody_else(
    db: Database, clock: ManualClock
) -> None:
    content = {"title_fr": "Soldes", "body_fr": "Bonjour {{ customer.first_name }}"}
    template(db, clock, "appli", "push", content=content)
    lea = person(db, clock, "lea@example.com", consent=("push",))
    tom = person(db, clock, "tom@example.com", consent=("push",))
    zoe = person(db, clock, "zoe@example.com", consent=("push",))
    devices(db, clock, lea, "device-lea-2", "device-lea-1")
    devices(db, clock, tom, "device-tom")
    phones = Phones()
    outlets = Outlets(Outbox(), PUBLIC, Outbox(), phones, HttpWebhookPoster())
    with db.transaction() as session:
        outcomes = send_messages(
            session,
            clock.now(),
            [SendRequest(pid, "appli", f"push:{pid}") for pid in (lea, tom, zoe)],
            outlets,
        )
    assert [(o.status, o.reason) for o in outcomes] == [
        ("sent", None),
        ("sent", None),
        ("suppressed", "no_address"),
    ]
    assert sorted(phones.sent) == [
        ("device-lea-1", "Soldes", "Bonjour Léa"),
        ("device-tom", "Soldes", "Bonjour Léa"),
    ]


def test_the_devices_of_a_batch_are_read_in_one_query(db: Database, clock: ManualClock) -> None:
    template(db, clock, "appli", "push", content={"title_fr": "Soldes", "body_fr": "Bonjour"})
    ids = [person(db, clock, f"p{i}@example.com", consent=("push",)) for i in range(5)]
    for i, pid in enumerate(ids):
        devices(db, clock, pid, f"device-{i}")
    outlets = Outlets(Outbox(), PUBLIC, Outbox(), Phones(), HttpWebhookPoster())
    with db.transaction() as session:  # the first send ever creates the signing secret
        send_messages(session, clock.now(), [SendRequest(ids[0], "appli", "first")], outlets)
    sizes = []
    for batch, prefix in ((ids[1:2], "one"), (ids[2:], "three")):
        with db.transaction() as session, counted(db) as statements:
            requests = [SendRequest(pid, "appli", f"{prefix}:{pid}") for pid in batch]
            send_messages(session, clock.now(), requests, outlets)
        sizes.append(len(statements))
    assert sizes[0] == sizes[1]
