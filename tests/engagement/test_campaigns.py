"""Campaigns: a segment, variants and a holdout assigned deterministically, sent by the
worker at a UTC time or at a local time in each customer's zone, never twice, with
results per variant."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from parcours import segments
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.engagement import campaigns
from parcours.engagement.campaigns import CampaignInput, Variant
from parcours.engagement.jobs import run_due
from parcours.engagement.models import Delivery
from tests.engagement.helpers import Outbox, outlets, person, template


def audience(db: Database, clock: ManualClock, count: int, **kw: object) -> list[uuid.UUID]:
    ids = [
        person(db, clock, f"client{i}@example.com", phone=f"+336{i:08d}", **kw)  # type: ignore[arg-type]
        for i in range(count)
    ]
    with db.transaction() as session:
        found = segments.create_segment(
            session, clock.now(), CLI_ACTOR, "optin", "Opt-in",
            {"kind": "consent", "purpose": "marketing", "channel": "email"},
        )  # fmt: skip
        segments.refresh_segment(session, clock.now(), found.id)
    return ids


def create(db: Database, clock: ManualClock, **kw: object) -> uuid.UUID:
    values: dict[str, object] = {
        "name": "Soldes de printemps",
        "segment": "optin",
        "channel": "email",
        "variants": [Variant("A", "soldes", 50), Variant("B", "soldes-b", 50)],
        "holdout_percent": 20,
        "send_at": clock.now() + timedelta(hours=1),
    }
    values.update(kw)
    with db.transaction() as session:
        return campaigns.create_campaign(session, clock.now(), "test", CampaignInput(**values)).id  # type: ignore[arg-type]


def test_variants_and_holdout_are_assigned_deterministically() -> None:
    campaign, variants = uuid.uuid4(), [{"name": "A", "percent": 70}, {"name": "B", "percent": 30}]
    people = [uuid.uuid4() for _ in range(4000)]
    first = [campaigns.assign(campaign, p, 10, variants) for p in people]
    assert first == [campaigns.assign(campaign, p, 10, variants) for p in people]
    shares = {name: first.count(name) / len(people) for name in ("holdout", "A", "B")}
    assert shares["holdout"] == pytest.approx(0.10, abs=0.02)
    assert shares["A"] == pytest.approx(0.63, abs=0.03)
    assert shares["B"] == pytest.approx(0.27, abs=0.03)


def test_a_scheduled_campaign_is_sent_once_by_the_worker_with_results_per_variant(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock)
    template(db, clock, "soldes-b", content={"subject_fr": "B", "text_fr": "B"})
    members = audience(db, clock, 30)
    campaign_id = create(db, clock)
    assert run_due(db, clock, outlets(box)) == 0  # not yet
    clock.advance(timedelta(hours=1))
    run_due(db, clock, outlets(box))
    run_due(db, clock, outlets(box))  # a second round (or a crash and re-run) sends nothing
    with db.transaction() as session:
        found = campaigns.results(session, campaign_id)
        keys = session.scalars(select(Delivery.idempotency_key)).all()
    assert found.status == "sent"
    expected = {m: campaigns.assign(campaign_id, m, 20, [{"name": "A", "percent": 50},
                                                         {"name": "B", "percent": 50}])
                for m in members}  # fmt: skip
    held = sum(1 for v in expected.values() if v == "holdout")
    assert found.held_out == held
    by_name = {v.variant: v for v in found.variants}
    for name in ("A", "B"):
        assert by_name[name].sent == by_name[name].targeted == list(expected.values()).count(name)
    assert len(box.emails) == 30 - held
    assert len(keys) == len(set(keys)) == 30
    assert all(k.startswith(f"campaign:{campaign_id}:") for k in keys)


def test_refusals_are_counted_by_reason(db: Database, clock: ManualClock) -> None:
    from parcours.engagement.policy import Policy, set_policy

    box = Outbox()
    template(db, clock)
    template(db, clock, "soldes-b", content={"subject_fr": "B", "text_fr": "B"})
    audience(db, clock, 10)
    with db.transaction() as session:
        set_policy(session, clock.now(), "test", Policy("email", 0, 7))  # nothing may go
    campaign_id = create(db, clock, holdout_percent=0)
    clock.advance(timedelta(hours=1))
    run_due(db, clock, outlets(box))
    with db.transaction() as session:
        found = campaigns.results(session, campaign_id)
    assert sum(v.refused.get("frequency_cap", 0) for v in found.variants) == 10
    assert box.emails == []


def test_a_local_time_campaign_reaches_each_customer_at_ten_in_their_zone(
    db: Database, clock: ManualClock
) -> None:
    box = Outbox()
    template(db, clock)
    clock.current = datetime(2026, 3, 16, 0, 0, tzinfo=UTC)
    paris = person(db, clock, "paris@example.com", phone="+33600000001")
    reunion = person(db, clock, "reunion@example.com", phone="+33600000002",
                     timezone="Indian/Reunion")  # fmt: skip
    with db.transaction() as session:
        found = segments.create_segment(session, clock.now(), CLI_ACTOR, "optin", "Opt-in",
            {"kind": "consent", "purpose": "marketing", "channel": "email"})  # fmt: skip
        segments.refresh_segment(session, clock.now(), found.id)
    campaign_id = create(db, clock, send_at=None, local_date=date(2026, 3, 17),
                         local_time="10:00", variants=[Variant("A", "soldes", 100)],
                         holdout_percent=0)  # fmt: skip
    clock.current = datetime(2026, 3, 17, 6, 0, tzinfo=UTC)  # 10:00 in Réunion (UTC+4)
    run_due(db, clock, outlets(box))
    assert [m.to for m in box.emails] == ["reunion@example.com"]
    clock.current = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)  # 10:00 in Paris (UTC+1)
    run_due(db, clock, outlets(box))
    assert [m.to for m in box.emails] == ["reunion@example.com", "paris@example.com"]
    with db.transaction() as session:
        assert campaigns.get_campaign(session, campaign_id).status == "sent"
    assert paris
    assert reunion


def test_cancelling_a_campaign_records_the_messages_not_sent(
    db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    clock.current = datetime(2026, 3, 16, 0, 0, tzinfo=UTC)
    audience(db, clock, 3)
    campaign_id = create(db, clock, send_at=None, local_date=date(2026, 3, 17),
                         local_time="10:00", variants=[Variant("A", "soldes", 100)],
                         holdout_percent=0)  # fmt: skip
    clock.current = datetime(2026, 3, 16, 21, 0, tzinfo=UTC)  # expanded, nothing due yet
    run_due(db, clock, outlets())
    with db.transaction() as session:
        campaigns.cancel_campaign(session, clock.now(), campaign_id)
        found = campaigns.results(session, campaign_id)
    assert found.status == "cancelled"
    assert found.variants[0].refused == {"cancelled": 3}


def test_a_campaign_needs_variants_adding_up_to_100_and_a_known_segment(
    db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    with pytest.raises(InvalidInput) as raised:
        create(db, clock, segment="nobody", variants=[Variant("A", "soldes", 60)])
    pointers = {e.pointer for e in raised.value.errors}
    assert {"#/variants", "#/segment"} <= pointers
