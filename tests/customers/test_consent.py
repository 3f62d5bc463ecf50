"""Consent per purpose and channel, double opt-in, unsubscribe and `can_contact`,
through the service, on both databases."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from parcours import customers
from parcours.core import signing
from parcours.core.audit import SYSTEM_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput, NotFound
from parcours.core.mail import OutgoingEmail
from parcours.core.models import AuditEntry
from parcours.customers import consent, identity
from parcours.customers.consent import ConsentInput, Decision, DoubleOptIn
from parcours.customers.models import Consent, ConsentConfirmation, Customer
from tests import builders

CLICK = {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (test)"}


class Outbox:
    """A mailer keeping what it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    def send_email(self, message: OutgoingEmail) -> str:
        self.sent.append(message)
        return f"<{len(self.sent)}@test>"


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


def opt_in(outbox: Outbox) -> DoubleOptIn:
    return DoubleOptIn(outbox, "https://shop.example", timedelta(hours=72))


def confirm_token(message: OutgoingEmail) -> str:
    found = re.search(r"/consent/confirm/([A-Za-z0-9_\-.]+)", message.text)
    assert found, message.text
    return found.group(1)


def record(
    db: Database, clock: ManualClock, outbox: Outbox, profile_id: Any, *decisions: ConsentInput
) -> consent.ConsentOutcome:
    with db.transaction() as session:
        return consent.record_consents(
            session, clock.now(), SYSTEM_ACTOR, profile_id, list(decisions), opt_in(outbox)
        )


def decide(
    db: Database, clock: ManualClock, profile_id: Any, purpose: str, channel: str
) -> Decision:
    with db.transaction() as session:
        return consent.can_contact(session, profile_id, purpose, channel, clock.now())


def grant(purpose: str = "marketing", channel: str = "sms", **extra: Any) -> ConsentInput:
    return ConsentInput(purpose, channel, True, extra.pop("source", "web_signup"), **extra)


def withdraw(purpose: str = "marketing", channel: str = "sms") -> ConsentInput:
    return ConsentInput(purpose, channel, False, "preference_centre")


# ------------------------------------------------------------------ can_contact


def test_without_any_decision_nobody_may_be_contacted(db: Database, clock: ManualClock) -> None:
    lea = builders.add_customer(db, clock)
    for purpose in consent.PURPOSES:
        for channel in consent.CHANNELS:
            assert decide(db, clock, lea, purpose, channel) == Decision(False, "no_consent")


def test_the_latest_decision_wins(db: Database, clock: ManualClock, outbox: Outbox) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant())
    assert decide(db, clock, lea, "marketing", "sms") == Decision(True, "granted")
    clock.advance(timedelta(minutes=5))
    record(db, clock, outbox, lea, withdraw())
    assert decide(db, clock, lea, "marketing", "sms") == Decision(False, "withdrawn")
    clock.advance(timedelta(days=30))
    record(db, clock, outbox, lea, grant())
    assert decide(db, clock, lea, "marketing", "sms").allowed
    assert not decide(db, clock, lea, "marketing", "post").allowed  # per channel
    assert not decide(db, clock, lea, "profiling", "sms").allowed  # per purpose


def test_a_decision_after_now_is_not_yet_in_force(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant("profiling", "push"))
    with db.transaction() as session:
        earlier = clock.now() - timedelta(seconds=1)
        assert not consent.can_contact(session, lea, "profiling", "push", earlier).allowed


def test_erased_and_unknown_people_are_never_contacted(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant())
    with db.transaction() as session:
        customer = session.get(Customer, lea)
        assert customer is not None
        customer.erased_at = clock.now()
    assert decide(db, clock, lea, "marketing", "sms") == Decision(False, "erased")
    assert decide(db, clock, uuid.uuid4(), "marketing", "sms") == Decision(False, "unknown_profile")


def test_an_unknown_purpose_or_channel_cannot_be_checked(db: Database, clock: ManualClock) -> None:
    lea = builders.add_customer(db, clock)
    with pytest.raises(InvalidInput) as caught:
        decide(db, clock, lea, "spam", "pigeon")
    assert [e.pointer for e in caught.value.errors] == ["#/purpose", "#/channel"]


def test_many_profiles_are_checked_in_a_few_queries_not_one_each(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    ids = [builders.add_customer(db, clock, f"client{i}@example.com") for i in range(30)]
    for profile_id in ids[:10]:
        record(db, clock, outbox, profile_id, grant("marketing", "push"))
    for profile_id in ids[5:10]:
        record(db, clock, outbox, profile_id, withdraw("marketing", "push"))
    statements: list[str] = []
    with db.transaction() as session:
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            decisions = consent.can_contact_many(session, ids, "marketing", "push", clock.now())
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    # Up the merges, down the merges, then the decisions: whatever the number of ids.
    assert len([s for s in statements if s.startswith("SELECT")]) == 3
    assert [decisions[i].reason for i in ids[:12]] == ["granted"] * 5 + ["withdrawn"] * 5 + [
        "no_consent"
    ] * 2


def test_a_decision_follows_the_person_through_a_merge_and_back(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    web = builders.add_customer(db, clock, "lea.martin@example.com")
    with db.transaction() as session:
        [store] = customers.add_customers(
            session, clock.now(), [{"customer_number": "C-100", "phone": "+33698765432"}]
        )
    record(db, clock, outbox, store, grant("marketing", "sms"))
    with db.transaction() as session:
        merge = identity.merge_profiles(session, clock.now(), SYSTEM_ACTOR, web, store, "same")
    for who in (web, store):
        assert decide(db, clock, who, "marketing", "sms") == Decision(True, "granted")
    clock.advance(timedelta(minutes=1))
    record(db, clock, outbox, web, withdraw())  # taken on the survivor: the person withdrew
    assert decide(db, clock, store, "marketing", "sms").reason == "withdrawn"
    with db.transaction() as session:
        identity.unmerge(session, clock.now(), SYSTEM_ACTOR, merge)
    assert decide(db, clock, store, "marketing", "sms").reason == "granted"
    assert decide(db, clock, web, "marketing", "sms").reason == "withdrawn"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 1000), st.booleans()), min_size=1, max_size=8))
def test_the_decision_in_force_is_the_latest_in_time_whatever_the_recording_order(
    db: Database, clock: ManualClock, decisions: list[tuple[int, bool]]
) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    profile_id = builders.add_customer(db, clock, email)
    start = clock.now()
    rows = [
        {
            "customer_id": profile_id,
            "purpose": "analytics",
            "channel": "push",
            "granted": granted,
            "at": start + timedelta(minutes=minutes),
            "source": "property",
            "proof": None,
        }
        for minutes, granted in decisions
    ]
    with db.transaction() as session:
        customers.add_consents(session, rows)
        later = start + timedelta(days=1)
        got = customers.can_contact(session, profile_id, "analytics", "push", later)
    latest = max(range(len(decisions)), key=lambda i: (decisions[i][0], i))
    assert got.allowed == decisions[latest][1]


# ------------------------------------------------------------------ recording


def test_decisions_are_kept_with_source_wording_and_proof(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    outcome = record(
        db,
        clock,
        outbox,
        lea,
        grant(
            "profiling",
            "email",
            source="app_onboarding",
            wording_version="2026-03",
            proof="toggle switched on, screen 2",
            form_text="J'accepte que mes achats servent à me proposer des offres.",
            evidence={"ip": "203.0.113.7", "user_agent": "Parcours/1.0"},
        ),
    )
    [recorded] = outcome.recorded
    assert outcome.pending == []
    with db.transaction() as session:
        row = session.get(Consent, recorded.id)
        assert row is not None
        assert (row.source, row.wording_version, row.proof) == (
            "app_onboarding",
            "2026-03",
            "toggle switched on, screen 2",
        )
        text = "J'accepte que mes achats servent à me proposer des offres."
        assert row.evidence == {
            "ip": "203.0.113.7",
            "user_agent": "Parcours/1.0",
            "form_text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "consent.recorded")
        ).one()
        assert entry.target_id == str(lea)


def test_unknown_purposes_and_channels_are_refused_with_pointers(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    with pytest.raises(InvalidInput) as caught:
        record(
            db,
            clock,
            outbox,
            lea,
            grant("analytics", "push"),
            ConsentInput("newsletter", "fax", True, "web"),
        )
    assert [e.pointer for e in caught.value.errors] == [
        "#/consents/1/purpose",
        "#/consents/1/channel",
    ]
    with db.transaction() as session:  # all-or-nothing: the good one was not kept either
        assert session.scalar(select(func.count()).select_from(Consent)) == 0


def test_recording_for_an_unknown_profile_is_not_found(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    with pytest.raises(NotFound):
        record(db, clock, outbox, uuid.uuid4(), grant())


def test_the_state_shows_what_is_in_force_and_audits_the_read(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant(), grant("marketing", "email"))
    clock.advance(timedelta(hours=1))
    record(db, clock, outbox, lea, withdraw())
    with db.transaction() as session:
        state = consent.consent_state(session, clock.now(), SYSTEM_ACTOR, lea)
        sms = state.current[("marketing", "sms")]
        assert sms is not None
        assert sms.granted is False
        assert state.current[("marketing", "email")] is None  # waiting for the opt-in
        assert [p.channel for p in state.pending] == ["email"]
        assert [r.granted for r in state.history] == [False, True]
        viewed = session.scalars(select(AuditEntry).where(AuditEntry.action == "consent.viewed"))
        assert [e.target_id for e in viewed] == [str(lea)]


def test_the_old_facade_names_still_work(db: Database, clock: ManualClock) -> None:
    lea = builders.add_customer(db, clock)
    assert "profiling" in customers.PURPOSES
    assert customers.CHANNELS == ("email", "sms", "push", "phone", "post")
    with db.transaction() as session:
        customers.add_consents(
            session,
            [
                {
                    "customer_id": lea,
                    "purpose": "marketing",
                    "channel": "email",
                    "granted": True,
                    "at": clock.now(),
                    "source": "web_signup",
                    "proof": "form v3",
                }
            ],
        )
        assert customers.current_consents(session, lea) == {("marketing", "email"): True}


# ------------------------------------------------------------------ double opt-in


def test_an_email_marketing_grant_waits_for_the_person_to_confirm(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    outcome = record(
        db,
        clock,
        outbox,
        lea,
        grant("marketing", "email", wording_version="nl-v4", form_text="Oui"),
    )
    assert outcome.recorded == []
    [pending] = outcome.pending
    assert pending.email == "lea.martin@example.com"
    assert pending.expires_at == clock.now() + timedelta(hours=72)
    assert decide(db, clock, lea, "marketing", "email") == Decision(False, "no_consent")
    [message] = outbox.sent
    assert message.to == "lea.martin@example.com"
    assert message.subject == "Confirmez votre inscription"  # the profile speaks French
    assert message.html is not None
    assert "/consent/confirm/" in message.html
    assert "https://shop.example/consent/confirm/" in message.text

    clock.advance(timedelta(hours=2))
    with db.transaction() as session:
        done = consent.confirm(session, clock.now(), confirm_token(message), CLICK)
    assert done.profile_id == lea
    assert decide(db, clock, lea, "marketing", "email") == Decision(True, "granted")
    with db.transaction() as session:
        row = session.get(Consent, done.consent.id)
        assert row is not None
        assert row.wording_version == "nl-v4"
        assert row.source == "web_signup"
        assert row.evidence is not None
        assert row.evidence["confirmed_ip"] == CLICK["ip"]
        assert row.evidence["confirmation_id"] == str(pending.id)
        assert row.evidence["form_text_sha256"] == hashlib.sha256(b"Oui").hexdigest()
        assert (
            row.evidence["token_sha256"]
            == hashlib.sha256(confirm_token(message).encode()).hexdigest()
        )


def test_a_grant_without_an_address_to_confirm_is_refused(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    with db.transaction() as session:
        [nobody] = customers.add_customers(session, clock.now(), [{"phone": "+33612345678"}])
    with pytest.raises(InvalidInput) as caught:
        record(db, clock, outbox, nobody, grant("marketing", "email"))
    assert caught.value.errors[0].pointer == "#/consents/0/email"
    assert outbox.sent == []
    record(db, clock, outbox, nobody, grant("marketing", "email", email="Zoe@Example.com"))
    assert outbox.sent[0].to == "zoe@example.com"


def test_a_replayed_confirmation_is_refused_and_cannot_undo_a_withdrawal(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant("marketing", "email"))
    token = confirm_token(outbox.sent[0])
    with db.transaction() as session:
        consent.confirm(session, clock.now(), token, CLICK)
        unsubscribe = consent.unsubscribe_token(session, clock.now(), lea, "marketing", "email")
    clock.advance(timedelta(minutes=10))
    with db.transaction() as session:
        consent.unsubscribe(session, clock.now(), unsubscribe, CLICK, "unsubscribe_page")
    clock.advance(timedelta(minutes=10))
    with pytest.raises(Conflict, match="only once"), db.transaction() as session:
        consent.confirm(session, clock.now(), token, CLICK)
    assert decide(db, clock, lea, "marketing", "email") == Decision(False, "withdrawn")


def test_an_expired_confirmation_link_is_refused(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant("marketing", "email"))
    clock.advance(timedelta(hours=72, seconds=1))
    with pytest.raises(signing.ExpiredToken, match="expired"), db.transaction() as session:
        consent.confirm(session, clock.now(), confirm_token(outbox.sent[0]), CLICK)
    assert not decide(db, clock, lea, "marketing", "email").allowed


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
        lambda t: "eyJyIjoiMDAwIn0" + t[t.index(".") :],  # payload swapped
        lambda t: t.replace(".", ""),  # cut
        lambda t: "not a token",
        lambda t: "é.ü",
    ],
)
def test_a_tampered_confirmation_link_is_refused(
    db: Database, clock: ManualClock, outbox: Outbox, tamper: Any
) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant("marketing", "email"))
    bad = tamper(confirm_token(outbox.sent[0]))
    with pytest.raises(signing.InvalidToken) as caught, db.transaction() as session:
        consent.confirm(session, clock.now(), bad, CLICK)
    assert caught.value.status == 422
    assert caught.value.errors[0].parameter == "token"
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Consent)) == 0


def test_an_unsubscribe_token_is_not_a_confirmation_token(db: Database, clock: ManualClock) -> None:
    lea = builders.add_customer(db, clock)
    with db.transaction() as session:
        token = consent.unsubscribe_token(session, clock.now(), lea, "marketing", "email")
    with pytest.raises(signing.InvalidToken), db.transaction() as session:
        consent.confirm(session, clock.now(), token, CLICK)


def test_the_signing_secret_is_generated_once_and_never_hard_coded(
    db: Database, clock: ManualClock
) -> None:
    with db.transaction() as session:
        assert signing.instance_secret(session) is None
        first = signing.instance_secret(session, clock.now())
        again = signing.instance_secret(session, clock.now())
    assert first is not None
    assert len(first) == 32
    assert first == again


# ------------------------------------------------------------------ unsubscribe


def test_unsubscribing_records_one_withdrawal_with_its_proof(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant("marketing", "sms"))
    with db.transaction() as session:
        url = customers.unsubscribe_url(
            session, clock.now(), "https://shop.example/", lea, "marketing", "sms"
        )
    assert url.startswith("https://shop.example/consent/unsubscribe/")
    token = url.rsplit("/", 1)[1]
    clock.advance(timedelta(days=400))  # old messages keep working
    with db.transaction() as session:
        first = consent.unsubscribe(session, clock.now(), token, CLICK, "one_click_unsubscribe")
        again = consent.unsubscribe(session, clock.now(), token, CLICK, "one_click_unsubscribe")
    assert (first.already, again.already) == (False, True)
    assert decide(db, clock, lea, "marketing", "sms") == Decision(False, "withdrawn")
    with db.transaction() as session:
        withdrawal = session.scalars(select(Consent).where(Consent.granted.is_(False))).one()
        assert withdrawal.source == "one_click_unsubscribe"
        assert withdrawal.evidence is not None
        assert withdrawal.evidence["ip"] == CLICK["ip"]
        assert "token_sha256" in withdrawal.evidence


def test_unsubscribe_tokens_differ_per_profile_purpose_and_channel(
    db: Database, clock: ManualClock
) -> None:
    lea = builders.add_customer(db, clock)
    zoe = builders.add_customer(db, clock, "zoe@example.com")
    with db.transaction() as session:
        tokens = {
            consent.unsubscribe_token(session, clock.now(), who, purpose, channel)
            for who in (lea, zoe)
            for purpose in ("marketing", "profiling")
            for channel in ("email", "sms")
        }
        assert len(tokens) == 8
        assert consent.read_unsubscribe_token(session, clock.now(), sorted(tokens)[0])[0] in (
            lea,
            zoe,
        )


def test_confirmation_requests_are_stored_until_confirmed(
    db: Database, clock: ManualClock, outbox: Outbox
) -> None:
    lea = builders.add_customer(db, clock)
    record(db, clock, outbox, lea, grant("marketing", "email"))
    with db.transaction() as session:
        row = session.scalars(select(ConsentConfirmation)).one()
        assert (row.customer_id, row.confirmed_at, row.locale) == (lea, None, "fr")
