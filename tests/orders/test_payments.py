"""Payments behind the provider adapter: signed simulator webhooks (forged, stale,
replayed, unknown, wrong amount) and refunds that never exceed what was captured."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from parcours.core.errors import Conflict, MalformedRequest, NotFound
from parcours.orders import payments
from parcours.orders.models import Order, Payment, PaymentNotification
from parcours.orders.service import ORDER_REFUNDED, PAYMENT_CAPTURED
from tests.orders.conftest import Shop
from tests.orders.order_builders import Placed, event_types, place_order

TOTAL = 2 * 8990


def webhook(
    shop: Shop, placed: Placed, kind: str, amount: int | None = None, event_id: str = "evt_1"
) -> tuple[bytes, str]:
    with shop.db.transaction() as session:
        payment = session.query(Payment).filter_by(order_id=placed.id).one()
        return payments.simulated_webhook(
            session, shop.clock.now(), payment, kind, amount, event_id
        )


def deliver(shop: Shop, raw: bytes, signature: str | None) -> payments.WebhookOutcome:
    with shop.db.transaction() as session:
        return payments.handle_webhook(session, shop.clock.now(), "simulator", raw, signature)


def refund(shop: Shop, placed: Placed, amount: int, reason: str) -> None:
    with shop.db.transaction() as session:
        order = session.get(Order, placed.id)
        assert order is not None
        payments.refund(session, shop.clock.now(), order, amount, reason)


def state(shop: Shop, placed: Placed) -> tuple[str, str, str, int]:
    with shop.db.transaction() as session:
        order = session.get(Order, placed.id)
        payment = session.query(Payment).filter_by(order_id=placed.id).one()
        assert order is not None
        return order.status, order.payment_status, payment.status, payment.refunded_amount


def test_payments_open_pending_with_their_provider(shop: Shop) -> None:
    in_store = place_order(shop, [("ROBE-LIN-S", 1)])
    simulated = place_order(shop, [("ROBE-LIN-S", 1)], provider="simulator")
    assert (in_store.payment_ref or "").startswith("instore_")
    assert (simulated.payment_ref or "").startswith("sim_")
    assert state(shop, simulated)[1:3] == ("pending", "pending")
    with shop.db.transaction() as session:
        order = session.get(Order, in_store.id)
        assert order is not None
        with pytest.raises(NotFound):
            payments.start_payment(session, shop.clock.now(), order, "bitcoin")


def test_a_signed_capture_pays_the_order_once_even_when_replayed(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)], provider="simulator")
    raw, signature = webhook(shop, placed, "payment.captured")
    first = deliver(shop, raw, signature)
    assert not first.replayed
    assert state(shop, placed) == ("paid", "captured", "captured", 0)
    again = deliver(shop, raw, signature)
    assert again.replayed
    assert again.payment_id == first.payment_id
    assert event_types(shop).count(PAYMENT_CAPTURED) == 1


def test_forged_stale_or_missing_signatures_are_400_and_change_nothing(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)], provider="simulator")
    raw, signature = webhook(shop, placed, "payment.captured")
    forged = raw.replace(b'"evt_1"', b'"evt_2"')
    stamp = signature.split(",")[0]
    for body, header in [
        (forged, signature),
        (raw, f"{stamp},v1={'0' * 64}"),
        (raw, None),
        (raw, "t=yesterday,v1=abc"),
    ]:
        with pytest.raises(payments.InvalidSignature) as refused:
            deliver(shop, body, header)
        assert refused.value.status == 400
    shop.clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(payments.InvalidSignature, match="too old"):
        deliver(shop, raw, signature)
    assert state(shop, placed) == ("placed", "pending", "pending", 0)
    with shop.db.transaction() as session:
        assert session.query(PaymentNotification).count() == 0


def test_an_unknown_payment_is_404_and_a_wrong_amount_is_409(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)], provider="simulator")
    raw, _ = webhook(shop, placed, "payment.captured")
    body = json.loads(raw)
    unknown = json.dumps({**body, "payment_ref": "sim_nobody"}).encode()
    with shop.db.transaction() as session:
        signature = payments.signature_for(session, shop.clock.now(), "simulator", unknown)
    with pytest.raises(NotFound):
        deliver(shop, unknown, signature)
    raw, signature = webhook(shop, placed, "payment.captured", amount=TOTAL - 1)
    with pytest.raises(Conflict) as mismatch:
        deliver(shop, raw, signature)
    assert mismatch.value.extensions == {"expected": TOTAL, "received": TOTAL - 1}
    assert state(shop, placed) == ("placed", "pending", "pending", 0)
    not_json = b"not json"
    with shop.db.transaction() as session:
        signature = payments.signature_for(session, shop.clock.now(), "simulator", not_json)
    with pytest.raises(MalformedRequest):
        deliver(shop, not_json, signature)


def test_a_failed_payment_is_recorded_and_cannot_undo_a_capture(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)], provider="simulator")
    raw, signature = webhook(shop, placed, "payment.failed")
    deliver(shop, raw, signature)
    assert state(shop, placed)[1:3] == ("failed", "failed")
    paid = place_order(shop, [("ROBE-LIN-S", 1)], provider="simulator", captured=True)
    raw, signature = webhook(shop, paid, "payment.failed", event_id="evt_late")
    with pytest.raises(Conflict):
        deliver(shop, raw, signature)


def test_refunds_never_exceed_what_was_captured(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)], provider="simulator", captured=True)
    refund(shop, placed, 5000, "goodwill")
    assert state(shop, placed)[1:] == ("captured", "captured", 5000)
    with pytest.raises(Conflict) as refused:
        refund(shop, placed, TOTAL, "too much")
    assert refused.value.extensions["refundable"] == TOTAL - 5000
    refund(shop, placed, TOTAL - 5000, "the rest")
    assert state(shop, placed)[1:] == ("refunded", "refunded", TOTAL)
    assert event_types(shop).count(ORDER_REFUNDED) == 2
    unpaid = place_order(shop, [("ROBE-LIN-S", 1)])
    with pytest.raises(Conflict) as nothing:
        refund(shop, unpaid, 1, "unpaid")
    assert nothing.value.extensions["refundable"] == 0


def test_a_provider_side_refund_is_recorded_once(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 2)], provider="simulator", captured=True)
    raw, signature = webhook(shop, placed, "refund.succeeded", amount=3000, event_id="evt_r1")
    deliver(shop, raw, signature)
    # The provider's next event reports the same total refunded: nothing more is refunded.
    raw, signature = webhook(shop, placed, "refund.succeeded", amount=3000, event_id="evt_r2")
    deliver(shop, raw, signature)
    assert state(shop, placed)[3] == 3000
    assert event_types(shop).count(ORDER_REFUNDED) == 1
    raw, signature = webhook(shop, placed, "refund.succeeded", amount=TOTAL + 1, event_id="e3")
    with pytest.raises(Conflict):
        deliver(shop, raw, signature)
