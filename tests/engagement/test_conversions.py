"""Campaign conversions: the orders each variant's people (and the holdout's) placed
within N days of their send, the revenue, the rate, and each variant's uplift against
the holdout with a two-proportion z-test. Figures below are worked out by hand."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.engagement import campaigns
from parcours.engagement.campaigns import Variant, two_proportion_p_value
from parcours.engagement.jobs import run_due
from parcours.engagement.models import Delivery
from parcours.orders.models import Order
from tests.engagement.helpers import Outbox, outlets, template
from tests.engagement.test_campaigns import audience, create


def order(db: Database, customer_id: uuid.UUID, at: datetime, total: int, *,
          currency: str = "EUR", status: str = "placed") -> None:  # fmt: skip
    with db.transaction() as session:
        session.add(
            Order(
                number=f"W-{uuid.uuid4().hex[:10]}", channel="web", source="test",
                customer_id=customer_id, currency=currency, subtotal=total, total=total,
                vat_total=total // 6, status=status, placed_at=at, updated_at=at,
            )
        )  # fmt: skip


def sent_campaign(db: Database, clock: ManualClock) -> tuple[uuid.UUID, dict[str, list[uuid.UUID]]]:
    """A campaign sent to 30 people: its groups (A, B, holdout) by member (30 makes an
    empty group, with random ids, a one-in-30,000 event)."""
    template(db, clock)
    template(db, clock, "soldes-b", content={"subject_fr": "B", "text_fr": "B"})
    members = audience(db, clock, 30)
    campaign_id = create(db, clock, holdout_percent=30)
    clock.advance(timedelta(hours=1))
    run_due(db, clock, outlets(Outbox()))
    with db.transaction() as session:
        rows = session.execute(
            select(Delivery.profile_id, Delivery.variant).where(Delivery.campaign_id == campaign_id)
        ).all()
    groups: dict[str, list[uuid.UUID]] = {"A": [], "B": [], "holdout": []}
    for profile_id, variant in rows:
        groups[str(variant)].append(profile_id)
    assert all(groups.values()), "each group needs someone"
    assert len(members) == 30
    return campaign_id, groups


def test_conversions_count_orders_within_the_window_after_each_send(
    db: Database, clock: ManualClock
) -> None:
    campaign_id, groups = sent_campaign(db, clock)
    sent = clock.now()
    a, holdout = groups["A"], groups["holdout"]
    order(db, a[0], sent + timedelta(days=2), 4990)
    order(db, a[0], sent + timedelta(days=6, hours=23), 1010)  # same buyer, second order
    order(db, a[0], sent + timedelta(days=8), 9999)  # after the 7 days: not counted
    order(db, a[0], sent - timedelta(hours=2), 9999)  # before the send: not counted
    order(db, a[0], sent + timedelta(days=1), 9999, status="cancelled")  # not a sale
    order(db, holdout[0], sent + timedelta(days=3), 2500)  # the holdout's planned send
    with db.transaction() as session:
        found = campaigns.results(session, campaign_id)
    by_group = {c.group: c for c in found.conversions}
    assert [c.group for c in found.conversions][-1] == "holdout"
    assert by_group["A"].people == len(a)
    assert (by_group["A"].converted, by_group["A"].orders) == (1, 2)
    assert by_group["A"].revenue == {"EUR": 6000}
    assert by_group["A"].rate == pytest.approx(1 / len(a))
    assert (by_group["B"].converted, by_group["B"].revenue) == (0, {})
    assert by_group["holdout"].people == len(holdout)
    assert (by_group["holdout"].converted, by_group["holdout"].revenue) == (1, {"EUR": 2500})
    assert by_group["A"].uplift == pytest.approx(1 / len(a) - 1 / len(holdout))
    assert by_group["holdout"].uplift is None
    with db.transaction() as session:  # a longer window takes the day-8 order in
        longer = {c.group: c for c in campaigns.results(session, campaign_id, 10).conversions}
    assert longer["A"].revenue == {"EUR": 15999}


def test_revenue_is_kept_per_currency(db: Database, clock: ManualClock) -> None:
    campaign_id, groups = sent_campaign(db, clock)
    buyer = groups["B"][0]
    order(db, buyer, clock.now() + timedelta(days=1), 1200)
    order(db, buyer, clock.now() + timedelta(days=2), 3000, currency="CHF")
    with db.transaction() as session:
        found = {c.group: c for c in campaigns.results(session, campaign_id).conversions}
    assert found["B"].revenue == {"CHF": 3000, "EUR": 1200}
    assert (found["B"].converted, found["B"].orders) == (1, 2)


def test_the_window_starts_at_each_persons_own_send(db: Database, clock: ManualClock) -> None:
    campaign_id, groups = sent_campaign(db, clock)
    late = groups["A"][0]
    with db.transaction() as session:  # this person's message left two days later
        session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == campaign_id, Delivery.profile_id == late)
            .values(sent_at=clock.now() + timedelta(days=2))
        )
    order(db, late, clock.now() + timedelta(days=1), 1000)  # before their send
    order(db, late, clock.now() + timedelta(days=8), 2000)  # 6 days after their send
    with db.transaction() as session:
        found = {c.group: c for c in campaigns.results(session, campaign_id).conversions}
    assert found["A"].revenue == {"EUR": 2000}


def test_a_window_out_of_range_is_refused_naming_the_parameter(
    db: Database, clock: ManualClock
) -> None:
    campaign_id, _ = sent_campaign(db, clock)
    with db.transaction() as session, pytest.raises(InvalidInput) as refused:
        campaigns.results(session, campaign_id, 0)
    assert refused.value.errors[0].parameter == "days"


def test_the_p_value_is_the_two_proportion_z_test() -> None:
    # 60/1000 against 40/1000: pooled 0.05, se = sqrt(0.05*0.95*0.002) = 0.009747,
    # z = 0.02 / 0.009747 = 2.0520, two-sided p = 0.04017.
    assert two_proportion_p_value(60, 1000, 40, 1000) == pytest.approx(0.04017, abs=1e-4)
    assert two_proportion_p_value(5, 10, 5, 10) == pytest.approx(1.0)
    assert two_proportion_p_value(0, 10, 0, 10) is None  # nobody bought: undefined
    assert two_proportion_p_value(3, 0, 1, 10) is None
    # 1/3 against 0/4: pooled 1/7, z = (1/3) / sqrt(1/7 * 6/7 * (1/3 + 1/4)) = 1.2472
    assert math.isclose(
        two_proportion_p_value(1, 3, 0, 4) or 0, math.erfc(1.2472 / math.sqrt(2)), rel_tol=1e-3
    )


def test_without_a_holdout_there_is_no_uplift(db: Database, clock: ManualClock) -> None:
    template(db, clock)
    template(db, clock, "soldes-b", content={"subject_fr": "B", "text_fr": "B"})
    audience(db, clock, 4)
    campaign_id = create(db, clock, holdout_percent=0, variants=[Variant("A", "soldes", 100)])
    clock.advance(timedelta(hours=1))
    run_due(db, clock, outlets(Outbox()))
    with db.transaction() as session:
        found = campaigns.results(session, campaign_id)
    assert [(c.group, c.people, c.uplift, c.p_value) for c in found.conversions] == [
        ("A", 4, None, None),
        ("holdout", 0, None, None),
    ]
