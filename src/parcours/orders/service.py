"""What every way of taking or changing an order shares: numbers, the order timeline,
loading orders, and telling the rest of the system what happened.

`emit` is the one way an order step becomes known outside this context: a domain event
in the outbox, committed with the change, read by consumers (webhooks, emails, and
`orders.tracking`, which writes the matching Segment e-commerce event to the tracking log
so that the customer's profile, timeline and computed traits see purchases from every
channel, as if the shop or the till had sent them). The checkout itself stays short:
identity resolution of the buyer happens in the consumer, in batches, not in the sale.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from parcours import customers
from parcours.core import signing
from parcours.core.errors import SaidNotFound
from parcours.core.events import Consumer, DomainEvent, publish
from parcours.core.models import OutboxEvent
from parcours.orders.models import (
    Fulfilment,
    Order,
    OrderCounter,
    OrderEvent,
    OrderLine,
    Payment,
    Return,
)

# Segment e-commerce spec names (and ours for the steps the spec leaves out).
ORDER_COMPLETED = "Order Completed"  # the order was placed (the spec's name for it)
ORDER_UPDATED = "Order Updated"
ORDER_CANCELLED = "Order Cancelled"
ORDER_REFUNDED = "Order Refunded"
PAYMENT_CAPTURED = "Payment Captured"
FULFILMENT_READY = "Order Ready For Pickup"
FULFILMENT_SHIPPED = "Order Shipped"
FULFILMENT_DELIVERED = "Order Delivered"
FULFILMENT_COLLECTED = "Order Collected"
PICKUP_EXPIRED = "Pickup Expired"
RETURN_RECEIVED = "Return Received"
RETURN_REQUESTED = "Return Requested"
ORDER_EVENT_TYPES = (
    ORDER_COMPLETED,
    ORDER_UPDATED,
    ORDER_CANCELLED,
    ORDER_REFUNDED,
    PAYMENT_CAPTURED,
    FULFILMENT_READY,
    FULFILMENT_SHIPPED,
    FULFILMENT_DELIVERED,
    FULFILMENT_COLLECTED,
    PICKUP_EXPIRED,
    RETURN_RECEIVED,
    RETURN_REQUESTED,
)

# Number prefixes: the channel's letter and the year, e.g. W2026-000042.
NUMBER_LETTERS = {
    "web": "W",
    "app": "A",
    "store": "S",
    "call_centre": "C",
    "marketplace": "M",
    "social": "X",
}
RETURN_LETTER = "R"


# ------------------------------------------------------------------ numbers


def next_number(session: Session, letter: str, at: datetime) -> str:
    """The next readable number for `letter` in `at`'s year (`W2026-000042`), gap-free.

    One conditional write: concurrent callers serialise on the counter row.
    """
    return number_block(session, letter, at.year, 1)[0]


def number_block(session: Session, letter: str, year: int, count: int) -> list[str]:
    """`count` consecutive numbers for `letter` and `year`, taken in one upsert (two
    first orders of a year at once cannot both create the counter)."""
    prefix = f"{letter}{year}"
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    upsert = (
        insert(OrderCounter)
        .values(prefix=prefix, last=count)
        .on_conflict_do_update(
            index_elements=[OrderCounter.prefix], set_={"last": OrderCounter.last + count}
        )
        .returning(OrderCounter.last)
    )
    last = int(session.execute(upsert).scalar_one())
    return [f"{prefix}-{n:06d}" for n in range(last - count + 1, last + 1)]


def order_number(session: Session, channel: str, at: datetime) -> str:
    return next_number(session, NUMBER_LETTERS.get(channel, "O"), at)


def return_number(session: Session, at: datetime) -> str:
    return next_number(session, RETURN_LETTER, at)


# ------------------------------------------------------------------ money


def included_vat(total: int, vat_rate_bp: int) -> int:
    """The VAT inside a VAT-inclusive amount in cents, the net part rounded half to even
    (as the catalogue's `vat_split` does) — for recorded sales: till receipts,
    marketplace imports and history."""
    excl = (Decimal(total) * 10_000 / Decimal(10_000 + vat_rate_bp)).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN
    )
    return total - int(excl)


# ------------------------------------------------------------------ the customer's link

SELF_SERVICE = "order-self-service"
LINK_VALIDITY = timedelta(days=400)  # past a year of returns and warranty questions


def order_link_path(session: Session, now: datetime, order: Order) -> str:
    """The path of the order's self-service page, signed: whoever holds the link (sent
    in the order's emails) may follow and cancel the order, nobody else."""
    token = signing.sign(
        session, now, SELF_SERVICE, {"o": str(order.id)}, expires_at=order.placed_at + LINK_VALIDITY
    )
    return f"/my/orders/{token}"


# ------------------------------------------------------------------ loading


# What loading an order refuses, as `message % values` for the console.
NO_ORDER_ID = "No order has the id %(id)s."
NO_ORDER_NUMBER = "No order has the number %(number)s."
MESSAGES = (NO_ORDER_ID, NO_ORDER_NUMBER)


def get_order(session: Session, order_id: uuid.UUID) -> Order:
    order = session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise SaidNotFound(NO_ORDER_ID, id=order_id)
    return order


def get_order_by_number(session: Session, number: str) -> Order:
    order = session.scalar(select(Order).where(Order.number == number.strip().upper()))
    if order is None:
        raise SaidNotFound(NO_ORDER_NUMBER, number=repr(number))
    return order


def find_order(session: Session, reference: str) -> Order:
    """An order by its id or its number (what staff type or scan)."""
    try:
        return get_order(session, uuid.UUID(reference))
    except ValueError:
        return get_order_by_number(session, reference)


def lines_of(session: Session, order_id: uuid.UUID) -> list[OrderLine]:
    return list(
        session.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
        )
    )


def fulfilments_of(session: Session, order_id: uuid.UUID) -> list[Fulfilment]:
    return list(
        session.scalars(
            select(Fulfilment)
            .where(Fulfilment.order_id == order_id)
            .order_by(Fulfilment.created_at, Fulfilment.id)
        )
    )


def payments_of(session: Session, order_id: uuid.UUID) -> list[Payment]:
    return list(
        session.scalars(
            select(Payment).where(Payment.order_id == order_id).order_by(Payment.created_at)
        )
    )


def returns_of(session: Session, order_id: uuid.UUID) -> list[Return]:
    return list(
        session.scalars(
            select(Return).where(Return.order_id == order_id).order_by(Return.created_at)
        )
    )


def timeline_of(session: Session, order_id: uuid.UUID) -> list[OrderEvent]:
    return list(
        session.scalars(
            select(OrderEvent)
            .where(OrderEvent.order_id == order_id)
            .order_by(OrderEvent.at, OrderEvent.id)
        )
    )


# ------------------------------------------------------------------ timeline


def add_event(
    session: Session,
    now: datetime,
    order_id: uuid.UUID,
    kind: str,
    actor: str,
    *,
    fulfilment_id: uuid.UUID | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str = "",
    data: Mapping[str, Any] | None = None,
) -> None:
    """Add a step to the order's timeline (in the caller's transaction)."""
    session.add(
        OrderEvent(
            order_id=order_id,
            fulfilment_id=fulfilment_id,
            at=now,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            actor=actor[:120],
            note=note,
            data=dict(data or {}),
        )
    )


# ------------------------------------------------------------------ telling the others


@dataclass(frozen=True)
class Emitted:
    event_id: uuid.UUID
    message_id: str


def segment_products(lines: Iterable[OrderLine]) -> list[dict[str, Any]]:
    """Order lines as the Segment e-commerce spec's `products` (prices in major units,
    as the spec has them; `price_cents` beside for exact sums)."""
    return [
        {
            "product_id": line.sku.rsplit("-", 1)[0] if "-" in line.sku else line.sku,
            "sku": line.sku,
            "name": line.name,
            "category": line.category,
            "price": line.unit_price / 100,
            "price_cents": line.unit_price,
            "quantity": line.quantity,
        }
        for line in lines
    ]


def order_properties(order: Order, lines: Sequence[OrderLine]) -> dict[str, Any]:
    """The spec's order properties (`order_id`, `total`, `revenue`, …) plus ours."""
    return {
        "order_id": order.number,
        "checkout_id": str(order.cart_id) if order.cart_id else None,
        "total": order.total / 100,
        "revenue": (order.total - order.delivery_total) / 100,
        "shipping": order.delivery_total / 100,
        "tax": order.vat_total / 100,
        "discount": order.discount_total / 100,
        "coupon": ",".join(order.promo_codes) or None,
        "currency": order.currency,
        "total_cents": order.total,
        "channel": order.channel,
        "store_id": str(order.store_id) if order.store_id else None,
        "products": segment_products(lines),
    }


def emit(
    session: Session,
    now: datetime,
    order: Order,
    event: str,
    *,
    lines: Sequence[OrderLine] | None = None,
    properties: Mapping[str, Any] | None = None,
    step: str = "",
) -> Emitted:
    """Publish `event` about `order` to the outbox, in the caller's transaction (one
    INSERT). `step` tells apart two events of the same name on one order (two fulfilments
    shipped): it makes the tracking log's `messageId`, so a retried step is stored once.
    The payload carries no personal data (webhooks send it out as it is); the
    `orders.tracking` consumer turns it into the Segment event of the tracking log."""
    lines = lines if lines is not None else lines_of(session, order.id)
    props = {**order_properties(order, lines), **(properties or {})}
    message_id = f"order-{order.id}-{event.lower().replace(' ', '-')}{'-' + step if step else ''}"
    payload = {
        "order_id": str(order.id),
        "number": order.number,
        "message_id": message_id,
        "properties": props,
    }
    domain_event = DomainEvent(event, payload, now)
    publish(session, domain_event, now)
    return Emitted(domain_event.event_id, message_id)


# ------------------------------------------------------------------ the tracking log

TRACKING_CONSUMER = "orders.tracking"


def segment_ids(
    session: Session, anonymous_id: str, customer_id: uuid.UUID | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The Segment ids of events about a customer's cart or order (`anonymous_id`, plus
    the user id the identity graph knows them by), and, when no user id names them, the
    email or phone of their profile that an `identify` can tie the events with."""
    ids = {"anonymousId": anonymous_id}
    traits: dict[str, str] = {}
    if customer_id is not None:
        for identifier in customers.identifiers_of(session, customer_id):
            if identifier.kind == "user_id":
                ids["userId"] = identifier.value
                return ids, {}
            if identifier.kind in ("email", "phone"):
                traits.setdefault(identifier.kind, identifier.value)
    return ids, traits


def order_segment_ids(session: Session, order: Order) -> tuple[dict[str, str], dict[str, str]]:
    """`segment_ids` of an order's events: its anonymous id (or one made from its number)
    and the buyer's user id, or their profile's email or phone."""
    return segment_ids(session, order.anonymous_id or f"order-{order.number}", order.customer_id)


def _who(session: Session, order: Order) -> tuple[dict[str, str], dict[str, str]]:
    """The Segment ids of the order's events, and the traits that tie them to the buyer's
    profile when no user id does (its email or phone, else the order's own)."""
    ids, traits = order_segment_ids(session, order)
    if "userId" not in ids and not traits and order.erased_at is None:
        traits = {k: v for k, v in (("email", order.email), ("phone", order.phone)) if v}
    return ids, traits


def tracking_messages(session: Session, row: OutboxEvent) -> list[dict[str, Any]]:
    """The Segment messages of one order event: the `track` call, preceded for a new
    order by an `identify` with the buyer's email or phone (unless a user id names them),
    so the identity graph ties the purchase to their profile."""
    order = session.get(Order, uuid.UUID(row.payload["order_id"]))
    if order is None:
        return []
    ids, traits = _who(session, order)
    at = row.occurred_at.isoformat()
    message_id = row.payload["message_id"]
    context: dict[str, Any] = {"channel": order.channel}
    if order.store_id is not None:
        context["store_id"] = str(order.store_id)
    messages: list[dict[str, Any]] = []
    if row.type == ORDER_COMPLETED and traits:
        messages.append(
            {
                "type": "identify",
                "messageId": f"{message_id}-identify",
                "timestamp": at,
                "traits": traits,
                "context": context,
                **ids,
            }
        )
    messages.append(
        {
            "type": "track",
            "event": row.type,
            "messageId": message_id,
            "timestamp": at,
            "properties": row.payload["properties"],
            "context": context,
            **ids,
        }
    )
    return messages


def _track(session: Session, row: OutboxEvent) -> None:
    messages = tracking_messages(session, row)
    if messages:
        customers.ingest_messages(session, row.recorded_at, messages)


def tracking_consumer() -> Consumer:
    """Order events into the tracking log (a replay stores nothing twice: message ids)."""
    return Consumer(TRACKING_CONSUMER, _track, frozenset(ORDER_EVENT_TYPES))
