"""Orders as checkout would leave them, built directly (lines, one fulfilment, stock
reservations, a payment, a pickup code), so lifecycle, payment and return tests do not
depend on checkout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from parcours import inventory
from parcours.core.models import OutboxEvent
from parcours.orders import lifecycle, payments, pickup
from parcours.orders.models import PICKUP_MODES, Fulfilment, Order, OrderLine
from parcours.orders.service import ORDER_COMPLETED, add_event, emit, order_number
from tests.orders.conftest import PRICES, Shop

RESERVATION_KIND = {
    "click_and_collect": "click_and_collect",
    "drive": "click_and_collect",
    "reserve_in_store": "reserve_in_store",
    "home_delivery": "order_allocation",
    "ship_from_store": "order_allocation",
}


@dataclass(frozen=True)
class Placed:
    id: uuid.UUID
    number: str
    fulfilment_id: uuid.UUID
    line_ids: list[uuid.UUID]
    code: str | None
    payment_ref: str | None


def place_order(
    shop: Shop,
    lines: list[tuple[str, int]],
    *,
    mode: str = "click_and_collect",
    at: str = "LYO-1",
    provider: str | None = "in_store",
    captured: bool = False,
) -> Placed:
    """One order of `lines` fulfilled from store/warehouse `at` in `mode`."""
    now = shop.clock.now()
    location = shop.locations[at]
    with shop.db.transaction() as session:
        total = sum(PRICES[sku] * qty for sku, qty in lines)
        order = Order(
            number=order_number(session, "web", now),
            channel="web",
            source="checkout",
            customer_id=shop.customer_id,
            email="lea.martin@example.com",
            currency="EUR",
            subtotal=total,
            total=total,
            vat_total=total // 6,
            status="paid" if captured else "placed",
            payment_status="captured" if captured else "pending",
            placed_at=now,
            updated_at=now,
        )
        session.add(order)
        session.flush()
        pickup_mode = mode in PICKUP_MODES
        fulfilment = Fulfilment(
            order_id=order.id,
            mode=mode,
            location_id=location,
            pickup_store_id=location if pickup_mode else None,
            status="allocated",
            reason=f"stock at {at}",
            reason_data={"location": at},
            created_at=now,
            updated_at=now,
        )
        session.add(fulfilment)
        session.flush()
        code = pickup.issue_code(session, fulfilment) if pickup_mode else None
        line_ids = []
        for number, (sku, qty) in enumerate(lines, start=1):
            reservation = inventory.reserve(
                session, now, sku, location, qty, RESERVATION_KIND[mode],
                reference=order.number, expires_at=now + timedelta(days=30),
            ).reservation  # fmt: skip
            line = OrderLine(
                order_id=order.id, fulfilment_id=fulfilment.id, line_no=number, sku=sku,
                name=sku, quantity=qty, unit_price=PRICES[sku], vat_rate_bp=2000, discount=0,
                total=PRICES[sku] * qty, vat=PRICES[sku] * qty // 6,
                reservation_id=reservation.id,
            )  # fmt: skip
            session.add(line)
            session.flush()
            line_ids.append(line.id)
        ref = None
        if provider is not None:
            payment = payments.start_payment(session, now, order, provider, provider)
            if captured:
                payment.status = "captured"
            ref = payment.provider_ref
        add_event(session, now, order.id, "placed", "test")
        emit(session, now, order, ORDER_COMPLETED)
        return Placed(order.id, order.number, fulfilment.id, line_ids, code, ref)


def delivered_order(shop: Shop) -> Placed:
    """Two ROBE-LIN-S paid and delivered from the warehouse: an order to take back."""
    placed = place_order(shop, [("ROBE-LIN-S", 2)], mode="home_delivery", at="WH-1", captured=True)
    with shop.db.transaction() as session:
        for step in ("picking", "shipped", "delivered"):
            lifecycle.transition(session, shop.clock.now(), placed.fulfilment_id, step, "test")
    return placed


def event_types(shop: Shop) -> list[str]:
    """The outbox's event types, oldest first."""
    with shop.db.transaction() as session:
        return list(session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.position)))


def outbox_payloads(shop: Shop, event_type: str) -> list[dict[str, Any]]:
    with shop.db.transaction() as session:
        rows = session.scalars(
            select(OutboxEvent.payload)
            .where(OutboxEvent.type == event_type)
            .order_by(OutboxEvent.position)
        )
        return list(rows)
