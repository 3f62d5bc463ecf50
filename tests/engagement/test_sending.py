"""One send function under one set of rules: consent, frequency caps, quiet hours,
idempotency; every refusal in the delivery log with its reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from parcours import stores
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.engagement import SendRequest, send_message
from parcours.engagement.models import Delivery
from parcours.engagement.policy import Policy, set_policy
from parcours.engagement.sending import send_due
from tests.builders import add_store
from tests.engagement.helpers import Outbox, outlets, person, template


def send(
    db: Database,
    clock: ManualClock,
    box: Outbox,
    profile,
    key: str = "soldes",
    idem: str = "k1",
    **extra: object,
):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return send_message(
            session,
            clock.now(),
            SendRequest(profile, key, idem, **extra),
            outlets(box),  # type: ignore[arg-type]
        )


def test_a_marketing_email_goes_out_in_the_customers_language(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock)
    french = person(db, clock)
    english = person(db, clock, "sam@example.com", locale="en", phone="+33612345679")
    assert send(db, clock, box, french).status == "sent"
    assert send(db, clock, box, english, idem="k2").status == "sent"
    assert [m.subject for m in box.emails] == ["Bonjour Léa", "Hello Léa"]
    assert box.emails[0].unsubscribe_url is not None


def test_an_empty_language_falls_back_to_the_other(db: Database, clock: ManualClock) -> None:
    box = Outbox()
    template(db, clock, content={"subject_fr": "Bonjour", "text_fr": "Texte"})
    english = person(db, clock, locale="en")
    send(db, clock, box, english)
    assert box.emails[0].subject == "Bonjour"


def test_without_consent_the_message_is_refused_and_logged(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock)
    profile = person(db, clock, consent=())
    outcome = send(db, clock, box, profile)
    assert (outcome.status, outcome.reason) == ("suppressed", "no_consent")
    assert box.emails == []
    with db.transaction() as session:
        [row] = session.scalars(select(Delivery)).all()
        assert (row.status, row.reason, row.template_key) == ("suppressed", "no_consent", "soldes")


def test_the_same_idempotency_key_sends_once(db: Database, clock: ManualClock) -> None:
    box = Outbox()
    template(db, clock)
    profile = person(db, clock)
    first = send(db, clock, box, profile)
    again = send(db, clock, box, profile)
    assert again.replayed
    assert again.delivery_id == first.delivery_id
    assert len(box.emails) == 1


def test_the_frequency_cap_refuses_marketing_but_not_transactional(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock)
    template(db, clock, "commande-prete", kind="transactional")
    profile = person(db, clock)
    with db.transaction() as session:
        set_policy(session, clock.now(), "test", Policy("email", 2, 7))
    outcomes = [send(db, clock, box, profile, idem=f"m{i}") for i in range(3)]
    assert [o.status for o in outcomes] == ["sent", "sent", "suppressed"]
    assert outcomes[2].reason == "frequency_cap"
    assert send(db, clock, box, profile, "commande-prete", idem="t1").status == "sent"
    clock.advance(timedelta(days=7, minutes=1))
    assert send(db, clock, box, profile, idem="m4").status == "sent"  # the window moved on


def test_transactional_messages_ignore_marketing_consent_but_never_reach_the_erased(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock, "commande-prete", kind="transactional")
    profile = person(db, clock, consent=())
    assert send(db, clock, box, profile, "commande-prete").status == "sent"
    from parcours.customers.models import Customer

    with db.transaction() as session:
        customer = session.get(Customer, profile)
        assert customer is not None
        customer.erased_at, customer.email = clock.now(), None
    outcome = send(db, clock, box, profile, "commande-prete", idem="k2")
    assert (outcome.status, outcome.reason) == ("suppressed", "erased")


def test_a_marketing_template_cannot_be_sent_as_transactional(
    db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    profile = person(db, clock)
    with pytest.raises(InvalidInput) as raised:
        send(db, clock, Outbox(), profile, purpose="transactional")
    assert raised.value.errors[0].pointer == "#/purpose"


def test_a_customer_without_a_phone_gets_no_sms(db: Database, clock: ManualClock) -> None:
    template(db, clock, "sms-soldes", channel="sms")
    with db.transaction() as session:
        from parcours import customers

        [profile] = customers.add_customers(session, clock.now(), [{"email": "x@example.com"}])
    outcome = send(db, clock, Outbox(), profile, "sms-soldes")
    assert outcome.reason in ("no_consent", "no_address")


def test_sms_in_quiet_hours_is_deferred_then_sent_by_the_job_at_local_morning(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock, "sms-soldes", channel="sms")
    # 22:30 in Paris on Friday 13 March 2026 (21:30 UTC): inside 21:00-08:00.
    clock.current = datetime(2026, 3, 13, 21, 30, tzinfo=UTC)
    profile = person(db, clock)
    outcome = send(db, clock, box, profile, "sms-soldes")
    assert (outcome.status, outcome.reason) == ("deferred", "quiet_hours")
    assert outcome.scheduled_for == datetime(2026, 3, 14, 7, 0, tzinfo=UTC)  # 08:00 Paris
    assert box.sms == []
    clock.current = datetime(2026, 3, 14, 6, 59, tzinfo=UTC)
    assert send_due(db, clock, outlets(box)) == 0
    clock.current = datetime(2026, 3, 14, 7, 0, tzinfo=UTC)
    assert send_due(db, clock, outlets(box)) == 1
    assert len(box.sms) == 1
    assert send_due(db, clock, outlets(box)) == 0  # never twice


def test_sms_on_sunday_waits_for_monday_in_the_customers_own_zone(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock, "sms-soldes", channel="sms")
    clock.current = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)  # Sunday
    profile = person(db, clock, timezone="America/Martinique")
    outcome = send(db, clock, box, profile, "sms-soldes")
    # Monday 08:00 in Martinique (UTC-4) is 12:00 UTC.
    assert outcome.scheduled_for == datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def test_a_deferred_message_whose_consent_was_withdrawn_is_not_sent(
    db: Database, clock: ManualClock
) -> None:
    from parcours import customers

    box = Outbox()
    template(db, clock, "sms-soldes", channel="sms")
    clock.current = datetime(2026, 3, 13, 21, 30, tzinfo=UTC)
    profile = person(db, clock)
    send(db, clock, box, profile, "sms-soldes")
    clock.advance(timedelta(minutes=5))
    with db.transaction() as session:
        customers.add_consents(session, [{"customer_id": profile, "purpose": "marketing",
            "channel": "sms", "granted": False, "at": clock.now(), "source": "test",
            "proof": "STOP"}])  # fmt: skip
    clock.current = datetime(2026, 3, 14, 7, 0, tzinfo=UTC)
    send_due(db, clock, outlets(box))
    assert box.sms == []
    with db.transaction() as session:
        [row] = session.scalars(select(Delivery)).all()
        assert (row.status, row.reason) == ("suppressed", "withdrawn")


def test_a_store_named_by_the_sender_replaces_the_customers_own(
    db: Database, clock: ManualClock
) -> None:
    add_store(db, clock, "PAR-1", city="Paris", postcode="75001")
    with db.transaction() as session:
        [paris] = stores.store_ids_by_code(session, ["PAR-1"]).values()
    box = Outbox()
    text = "{% if store %}Chez {{ store.name }}{% else %}En ligne{% endif %}"
    template(db, clock, content={"subject_fr": "Offre", "text_fr": text})
    profile = person(db, clock)
    send(db, clock, box, profile, context={"store_id": str(paris)})
    send(db, clock, box, profile, idem="k2", context={"store_id": str(uuid.uuid4())})
    assert [m.text for m in box.emails] == ["Chez Store PAR-1", "En ligne"]  # unknown: none
