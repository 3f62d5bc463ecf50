"""Points from orders on every channel, taken back on refunds, expired FIFO, tiers, rewards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from parcours import loyalty, orders
from parcours.core.errors import Conflict
from parcours.core.events import drain
from parcours.customers.models import TrackedEvent
from parcours.loyalty import programme
from parcours.loyalty.models import PointsEntry
from parcours.orders import PastLine, PastOrder, payments, pos
from parcours.orders.service import get_order
from tests.builders import utc
from tests.loyalty.conftest import add_promotion
from tests.orders.conftest import Shop
from tests.orders.order_builders import place_order


def run_consumer(shop: Shop) -> None:
    drain(shop.db, loyalty.consumers(), shop.clock)


def status(shop: Shop) -> programme.LoyaltyStatus:
    assert shop.customer_id is not None
    with shop.db.transaction() as session:
        return loyalty.points_balance(session, shop.clock.now(), shop.customer_id)


def kinds(shop: Shop) -> list[tuple[str, int]]:
    with shop.db.transaction() as session:
        rows = session.scalars(select(PointsEntry).order_by(PointsEntry.id))
        return [(r.kind, r.points) for r in rows]


def receipt(number: str = "000451") -> pos.Receipt:
    return pos.Receipt(
        store="LYO-1", till="T2", cashier="c.durand", number=number,
        sold_at=utc(2026, 3, 14, 9, 12), email="lea.martin@example.com",
        lines=[pos.ReceiptLine("ROBE-LIN-S", 1, 8990)], payments=[pos.Tender("card", 8990)],
    )  # fmt: skip


def test_a_pos_receipt_and_a_web_order_earn_points_alike(shop: Shop) -> None:
    with shop.db.transaction() as session:
        pos.record_receipt(session, shop.clock.now(), receipt())
    place_order(shop, [("ROBE-LIN-S", 1)])
    run_consumer(shop)
    assert kinds(shop) == [("earn", 89), ("earn", 89)]  # 89.90 EUR -> 89 points, rounded down
    assert status(shop).balance == 178


def test_replaying_the_order_events_never_earns_twice(shop: Shop) -> None:
    place_order(shop, [("ROBE-LIN-S", 1)])
    run_consumer(shop)
    with shop.db.transaction() as session:
        for row in session.scalars(select(PointsEntry)):
            assert row.reference.startswith("earn:")
    from parcours.core.events import Consumer
    from parcours.loyalty.programme import handle_order_event

    replay = Consumer("loyalty.replay", handle_order_event, loyalty.consumers()[0].types)
    drain(shop.db, [replay], shop.clock)
    assert status(shop).balance == 89


def test_a_refund_takes_back_its_points_and_a_cancellation_the_rest(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)], captured=True)
    run_consumer(shop)
    assert status(shop).balance == 179
    with shop.db.transaction() as session:
        order = get_order(session, placed.id)
        payments.refund(session, shop.clock.now(), order, 8990, "return R1", "test")
    run_consumer(shop)
    assert status(shop).balance == 90
    from parcours.orders import lifecycle

    with shop.db.transaction() as session:
        lifecycle.cancel_order(session, shop.clock.now(), placed.id, "test", "customer asked")
    run_consumer(shop)
    assert status(shop).balance == 0
    entries = kinds(shop)
    assert entries[0] == ("earn", 179)
    assert {k for k, _ in entries[1:]} == {"reversal"}  # the refund of the rest, then nothing
    assert sum(p for _, p in entries[1:]) == -179


def test_points_expire_first_in_first_out(shop: Shop) -> None:
    assert shop.customer_id is not None
    with shop.db.transaction() as session:
        programme.update_programme(session, shop.clock.now(), {"expiry_months": 12})
        loyalty.award_points(session, shop.clock.now(), shop.customer_id, 100, "welcome", "w1")
    shop.clock.advance(timedelta(days=200))
    with shop.db.transaction() as session:
        loyalty.award_points(session, shop.clock.now(), shop.customer_id, 50, "survey", "s1")
        programme.post(session, shop.clock.now(), shop.customer_id, "redeem", -30, "reward", "r1")
    shop.clock.advance(timedelta(days=170))  # the first 100 are 370 days old
    with shop.db.transaction() as session:
        assert programme.expire_points(session, shop.clock.now()) == 1
        assert programme.expire_points(session, shop.clock.now()) == 0  # nothing twice
    assert kinds(shop)[-1] == ("expire", -70)  # 100 earned first, 30 of them spent
    assert status(shop).balance == 50


def test_the_tier_follows_points_earned_over_twelve_months(shop: Shop) -> None:
    assert shop.customer_id is not None
    assert status(shop).tier["key"] == "bronze"
    with shop.db.transaction() as session:
        programme.post(
            session, shop.clock.now(), shop.customer_id, "earn", 600, "order", "e1",
            expires_at=shop.clock.now() + timedelta(days=800),
        )  # fmt: skip
    assert status(shop).tier["key"] == "silver"
    assert status(shop).points_to_next_tier == 1400
    shop.clock.advance(timedelta(days=366))
    assert status(shop).tier["key"] == "bronze"


def tier_changes(shop: Shop) -> list[tuple[str, str, str, int]]:
    with shop.db.transaction() as session:
        rows = session.scalars(
            select(TrackedEvent)
            .where(TrackedEvent.event == programme.TIER_CHANGED)
            .order_by(TrackedEvent.seq)
        )
        return [
            (p["from_tier"], p["to_tier"], p["direction"], p["points_12_months"])
            for p in (row.properties or {} for row in rows)
        ]


def test_an_order_moving_the_member_to_another_tier_is_written_to_the_tracking_log(
    shop: Shop,
) -> None:
    place_order(shop, [("ROBE-LIN-S", 1)])  # 89 points: still bronze
    run_consumer(shop)
    assert tier_changes(shop) == []
    placed = place_order(  # 449 more points: silver
        shop, [("ROBE-LIN-S", 5)], mode="home_delivery", at="WH-1", captured=True
    )
    run_consumer(shop)
    assert tier_changes(shop) == [("bronze", "silver", "up", 538)]
    from parcours.orders import lifecycle

    with shop.db.transaction() as session:
        lifecycle.cancel_order(session, shop.clock.now(), placed.id, "test", "customer asked")
    run_consumer(shop)
    assert tier_changes(shop)[-1] == ("silver", "bronze", "down", 89)
    from parcours.core.events import Consumer
    from parcours.loyalty.programme import handle_order_event

    replay = Consumer("loyalty.replay", handle_order_event, loyalty.consumers()[0].types)
    drain(shop.db, [replay], shop.clock)
    assert len(tier_changes(shop)) == 2  # a replayed order event writes nothing again
    with shop.db.transaction() as session:  # under the order's own ids, tied to the buyer
        order = get_order(session, placed.id)
        event = session.scalars(
            select(TrackedEvent).where(TrackedEvent.event == programme.TIER_CHANGED)
        ).first()
        assert event is not None
        assert event.anonymous_id == (order.anonymous_id or f"order-{order.number}")
        assert (event.properties or {})["order_number"] == order.number


def test_a_reward_spends_points_and_gives_a_code_but_not_beyond_the_balance(shop: Shop) -> None:
    assert shop.customer_id is not None
    add_promotion(shop, "reward-10")
    now = shop.clock.now()
    with shop.db.transaction() as session:
        programme.add_reward(session, now, {
            "key": "ten-off", "name_fr": "10 % offerts", "name_en": "10 % off",
            "points_cost": 100, "kind": "promo_code", "promotion_key": "reward-10",
        })  # fmt: skip
        loyalty.award_points(session, now, shop.customer_id, 150, "gift", "g1")
        given = programme.redeem_reward(session, now, shop.customer_id, "ten-off", "store")
        assert given.balance == 50
        assert given.redemption.code
    with pytest.raises(Conflict), shop.db.transaction() as session:
        programme.redeem_reward(session, now, shop.customer_id, "ten-off", "web")
    assert status(shop).balance == 50


def test_award_points_is_idempotent_on_its_reference(shop: Shop) -> None:
    assert shop.customer_id is not None
    with shop.db.transaction() as session:
        first = loyalty.award_points(session, shop.clock.now(), shop.customer_id, 10, "x", "ref")
        again = loyalty.award_points(session, shop.clock.now(), shop.customer_id, 10, "x", "ref")
    assert first == again == 10


def test_erasure_removes_the_ledger(shop: Shop) -> None:
    assert shop.customer_id is not None
    with shop.db.transaction() as session:
        loyalty.award_points(session, shop.clock.now(), shop.customer_id, 10, "x", "ref")
        [handler] = loyalty.personal_data_handlers()
        assert handler.export(session, shop.customer_id)["points_ledger"][0]["points"] == 10
        assert handler.erase(session, shop.clock.now(), shop.customer_id) >= 2
    assert kinds(shop) == []


YEARS_3 = timedelta(days=3 * 365)


def _past(shop: Shop, ref: str, days_ago: int, price: int, returned: int = 0) -> PastOrder:
    return PastOrder(
        source="pos", external_ref=ref, channel="store", mode="carry_out",
        placed_at=shop.clock.now() - timedelta(days=days_ago),
        location_id=shop.locations["LYO-1"], store_id=shop.locations["LYO-1"],
        customer_id=shop.customer_id,
        lines=[PastLine("ROBE-LIN-S", "Robe", 2, price, returned=returned)],
    )  # fmt: skip


def test_a_history_of_past_orders_is_credited_once_with_its_own_dates(shop: Shop) -> None:
    place_order(shop, [("ROBE-LIN-S", 1)])  # a live order: its points come from its event
    run_consumer(shop)
    history = [
        _past(shop, "T-1", 30, 5000),  # 100.00 kept -> 100 points
        _past(shop, "T-2", 10, 5000, returned=1),  # one of two brought back -> 50 points
        _past(shop, "T-3", 800, 5000),  # past the 24-month expiry
    ]
    with shop.db.transaction() as session:
        orders.load_history(session, history)
    for _ in range(2):  # a second run credits nothing
        with shop.db.transaction() as session:
            loyalty.credit_past_orders(session, shop.clock.now(), shop.clock.now() - YEARS_3)
    assert sorted(kinds(shop)) == sorted(
        [("earn", 89), ("earn", 100), ("earn", 50), ("earn", 100), ("expire", -100)]
    )
    assert status(shop).balance == 89 + 100 + 50
