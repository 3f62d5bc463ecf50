"""Retention rules per data class, applied with the injected clock, on both databases."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from parcours import customers
from parcours.core import audit
from parcours.core.audit import SYSTEM_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from parcours.customers import identity, privacy
from parcours.customers.models import (
    Consent,
    ConsentConfirmation,
    Customer,
    CustomerImport,
    TrackedEvent,
)
from parcours.customers.privacy import PersonalDataHandler, RetentionPolicy
from tests import builders
from tests.builders import event_row

DAY = timedelta(days=1)


def run(
    db: Database,
    clock: ManualClock,
    *handlers: PersonalDataHandler,
    policy: RetentionPolicy = RetentionPolicy(),
) -> dict[str, int]:
    with db.transaction() as session:
        return privacy.apply_retention(session, clock.now(), policy, handlers).removed


def event_ids(db: Database) -> set[str]:
    with db.transaction() as session:
        return set(session.scalars(select(TrackedEvent.message_id)))


def test_anonymous_visits_go_after_13_months_unless_the_visitor_became_known(
    db: Database, clock: ManualClock
) -> None:
    start = clock.now()
    builders.known_person(db, clock, email="lea@example.com", anonymous_id="anon-lea")
    builders.log_events(
        db,
        event_row(start, anonymous_id="anon-stranger", message_id="stranger-old"),
        event_row(start, anonymous_id="anon-lea", message_id="lea-old"),
        event_row(start + 60 * DAY, anonymous_id="anon-stranger", message_id="stranger-new"),
    )
    clock.advance(396 * DAY)
    removed = run(db, clock)
    assert removed["anonymous_events"] == 1
    assert event_ids(db) == {"lea-old", "stranger-new"}


def test_events_of_identified_people_go_after_3_years(db: Database, clock: ManualClock) -> None:
    start = clock.now()
    builders.log_events(
        db,
        event_row(start, user_id="web-1", message_id="old"),
        event_row(start + 400 * DAY, user_id="web-1", message_id="recent"),
    )
    clock.advance(1096 * DAY)
    assert run(db, clock)["events"] == 1
    assert event_ids(db) == {"recent"}


def _decision(profile_id: Any, at: datetime, granted: bool) -> dict[str, Any]:
    return {
        "customer_id": profile_id,
        "purpose": "marketing",
        "channel": "sms",
        "granted": granted,
        "at": at,
        "source": "store_pos",
        "proof": None,
    }


def test_superseded_consent_proofs_go_after_5_years_but_the_one_in_force_stays(
    db: Database, clock: ManualClock
) -> None:
    lea = builders.add_customer(db, clock)
    start = clock.now()
    with db.transaction() as session:
        customers.add_consents(
            session,
            [
                _decision(lea, start, True),
                _decision(lea, start + DAY, False),
                _decision(lea, start + 2000 * DAY, True),
            ],
        )
    keep_profiles = RetentionPolicy(inactive_profiles_days=0)
    clock.advance(1827 * DAY)
    removed = run(db, clock, policy=keep_profiles)
    assert removed["consent_proofs"] == 1  # the first; the second is in force until day 2000
    clock.advance(2000 * DAY)
    run(db, clock, policy=keep_profiles)
    with db.transaction() as session:
        kept = session.scalars(select(Consent.at)).all()
        assert kept == [start + 2000 * DAY]  # in force, however old
        assert customers.can_contact(session, lea, "marketing", "sms", clock.now()).allowed


def test_unconfirmed_double_opt_ins_and_old_audit_entries_and_import_runs_go(
    db: Database, clock: ManualClock
) -> None:
    start = clock.now()
    with db.transaction() as session:
        session.add(
            ConsentConfirmation(
                id=uuid.uuid4(),
                email="someone@example.com",
                purpose="marketing",
                channel="email",
                source="web",
                locale="fr",
                requested_at=start,
                expires_at=start + 3 * DAY,
            )
        )
        audit.record(session, start, SYSTEM_ACTOR, "customer.viewed", "customer", "x")
        session.add(
            CustomerImport(
                id=uuid.uuid4(),
                file_sha256="0" * 64,
                plan_sha256="1" * 64,
                file_name="pos.csv",
                source="pos",
                options={},
                status="done",
                rows_total=1,
                rows_done=1,
                rows_imported=1,
                rows_rejected=0,
                rows_linked=1,
                started_at=start,
                updated_at=start,
            )
        )
    clock.advance(20 * DAY)
    assert run(db, clock)["unconfirmed_consents"] == 0
    clock.advance(400 * DAY)
    removed = run(db, clock)
    assert (
        removed["unconfirmed_consents"],
        removed["audit_log"],
        removed["import_reports"],
    ) == (1, 1, 1)
    with db.transaction() as session:
        assert session.scalars(select(ConsentConfirmation)).all() == []
        assert session.scalars(select(CustomerImport)).all() == []
        actions = session.scalars(select(AuditEntry.action)).all()
        assert "customer.viewed" not in actions


def test_profiles_without_contact_for_3_years_are_erased(db: Database, clock: ManualClock) -> None:
    start = clock.now()
    quiet = builders.known_person(db, clock, email="quiet@example.com", user_id="web-quiet")
    active = builders.known_person(db, clock, email="active@example.com", user_id="web-active")
    consenting = builders.known_person(db, clock, email="ok@example.com")
    buyer = builders.known_person(db, clock, email="buyer@example.com")
    builders.log_events(
        db,
        event_row(start, user_id="web-quiet", message_id="q"),
        event_row(start + 1000 * DAY, user_id="web-active", message_id="a"),
    )
    with db.transaction() as session:
        customers.add_consents(session, [_decision(consenting, start + 900 * DAY, True)])

    def last_order(session: Any, profile_id: uuid.UUID) -> datetime | None:
        return start + 800 * DAY if profile_id == buyer else None

    orders = PersonalDataHandler("orders", lambda s, p: {}, lambda s, n, p: 0, last_order)
    clock.advance(1100 * DAY)
    removed = run(db, clock, orders)
    assert removed["inactive_profiles"] == 1
    with db.transaction() as session:
        erased = {
            c.id for c in session.scalars(select(Customer).where(Customer.erased_at.is_not(None)))
        }
        assert erased == {quiet}
        assert privacy.erased_identifiers(session, {("email", "quiet@example.com")})
    assert "q" not in event_ids(db)
    assert {active, consenting, buyer}.isdisjoint(erased)


def test_zero_days_keeps_a_data_class_forever(db: Database, clock: ManualClock) -> None:
    builders.log_events(db, event_row(clock.now(), user_id="web-1", message_id="kept"))
    clock.advance(5000 * DAY)
    policy = RetentionPolicy(
        anonymous_events_days=0,
        events_days=0,
        inactive_profiles_days=0,
        consent_proofs_days=0,
        unconfirmed_days=0,
        audit_log_days=0,
        import_reports_days=0,
    )
    with db.transaction() as session:
        report = privacy.apply_retention(session, clock.now(), policy)
    assert report.removed == {}
    assert event_ids(db) == {"kept"}


def test_the_worker_runs_retention_as_a_periodic_job(db: Database, clock: ManualClock) -> None:
    builders.log_events(db, event_row(clock.now(), anonymous_id="anon-x", message_id="old"))
    [job] = [j for j in customers.periodic_jobs() if j.name == "customers.retention"]
    assert job.every_s == 3600
    clock.advance(2000 * DAY)
    assert job.run(db, clock) >= 1
    assert event_ids(db) == set()


def test_an_old_merged_away_profile_does_not_erase_an_active_person(
    db: Database, clock: ManualClock
) -> None:
    store = builders.known_person(db, clock, source="store", loyalty_card="C-1")
    clock.advance(1000 * DAY)
    web = builders.known_person(db, clock, email="lea@example.com")
    with db.transaction() as session:
        identity.merge_profiles(session, clock.now(), SYSTEM_ACTOR, web, store, "same person")
    clock.advance(1200 * DAY)  # the identifiers are old now; the person consents again
    with db.transaction() as session:
        customers.add_consents(session, [_decision(web, clock.now() - DAY, True)])
        old = clock.now() - 2000 * DAY
        session.execute(update(Customer).where(Customer.id == store).values(updated_at=old))
    assert run(db, clock)["inactive_profiles"] == 0
    with db.transaction() as session:
        assert session.scalars(select(Customer).where(Customer.erased_at.is_not(None))).all() == []
