"""A person's rights over their orders: what an access export contains, and what an
erasure removes.

Orders are accounting records: an erasure keeps every amount, line, payment and return
(the law asks a retailer to keep its sales for years) and removes what ties them to the
person: the email, phone, delivery address and anonymous id of the order, the customer
link, and the carts. The order is marked `erased_at`, so emails are never sent to it
again and the tracking consumer no longer identifies its buyer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from parcours import customers
from parcours.orders.models import Cart, CartLine, Order, OrderLine, Return

ORDER_FIELDS = (
    "number",
    "channel",
    "source",
    "store_id",
    "email",
    "phone",
    "shipping_address",
    "currency",
    "total",
    "vat_total",
    "delivery_total",
    "discount_total",
    "status",
    "payment_status",
    "placed_at",
)


def _row(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in fields}


def export_orders(session: Session, profile_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """The profile's orders, their lines and returns, and its carts (subject access)."""
    orders = list(
        session.scalars(
            select(Order).where(Order.customer_id == profile_id).order_by(Order.placed_at)
        )
    )
    ids = [o.id for o in orders]
    numbers = {o.id: o.number for o in orders}
    lines: list[OrderLine] = list(
        session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id.in_(ids))
            .order_by(OrderLine.order_id, OrderLine.line_no)
        )
        if ids
        else []
    )
    returns: list[Return] = list(
        session.scalars(select(Return).where(Return.order_id.in_(ids)).order_by(Return.created_at))
        if ids
        else []
    )
    carts = session.scalars(select(Cart).where(Cart.customer_id == profile_id))
    return {
        "orders": [_row(o, ORDER_FIELDS) for o in orders],
        "order_lines": [
            {
                "order": numbers[line.order_id],
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "total": line.total,
                "returned": line.returned_quantity,
            }
            for line in lines
        ],
        "returns": [
            {
                "order": numbers[r.order_id],
                "number": r.number,
                "channel": r.channel,
                "refund_amount": r.refund_amount,
                "created_at": r.created_at,
            }
            for r in returns
        ],
        "carts": [
            {"id": c.id, "channel": c.channel, "status": c.status, "created_at": c.created_at}
            for c in carts
        ],
    }


def erase_orders(session: Session, now: datetime, profile_id: uuid.UUID) -> int:
    """Blank the person out of their orders (amounts kept) and delete their carts; how
    many rows changed."""
    result = session.execute(
        update(Order)
        .where(Order.customer_id == profile_id)
        .values(
            customer_id=None,
            anonymous_id=None,
            email=None,
            phone=None,
            shipping_address=None,
            erased_at=now,
            updated_at=now,
        )
    )
    changed = cast("CursorResult[Any]", result).rowcount
    cart_ids = list(session.scalars(select(Cart.id).where(Cart.customer_id == profile_id)))
    if cart_ids:
        session.execute(delete(CartLine).where(CartLine.cart_id.in_(cart_ids)))
        session.execute(delete(Cart).where(Cart.id.in_(cart_ids)))
    return int(changed or 0) + len(cart_ids)


def last_order_at(session: Session, profile_id: uuid.UUID) -> datetime | None:
    """When the person last bought, for the retention rules."""
    return session.scalar(select(func.max(Order.placed_at)).where(Order.customer_id == profile_id))


def personal_data_handler() -> customers.PersonalDataHandler:
    return customers.PersonalDataHandler("orders", export_orders, erase_orders, last_order_at)
