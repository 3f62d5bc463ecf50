"""What the orders context publishes to analytics: one row per order and one per order
line, in portable types (ids as text, UTC timestamps without a zone, money in cents).

`store` is where the order was sold (tills) or else where it is collected (pickups);
`mode` the fulfilment mode of the order's first fulfilment (lines carry their own);
`customer` the live profile, merges followed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, case, cast, func, select
from sqlalchemy.orm import aliased

from parcours import customers, stores
from parcours.core.facts import id_text, utc_timestamp
from parcours.orders.models import Fulfilment, Order, OrderLine, Payment, Return


def _first_fulfilment() -> Any:
    first = aliased(Fulfilment)
    return (
        select(first.id)
        .where(first.order_id == Order.id)
        .order_by(first.created_at, first.id)
        .limit(1)
        .correlate(Order)
        .scalar_subquery()
    )


def order_facts(
    dialect: str,
    *,
    placed: tuple[datetime, datetime] | None = None,
    changed_since: datetime | None = None,
) -> Select[Any]:
    """The `orders` fact (columns in analytics/facts.py), plus `updated_at` for
    incremental exports: only orders `placed` in [start, end) and changed at or after
    `changed_since` when given (UTC)."""
    lines = (
        select(OrderLine.order_id, func.sum(OrderLine.quantity).label("units"))
        .group_by(OrderLine.order_id)
        .subquery("order_units")
    )
    paid = (
        select(Payment.order_id, func.sum(Payment.refunded_amount).label("refunded"))
        .group_by(Payment.order_id)
        .subquery("order_refunds")
    )
    profiles = customers.profile_keys().subquery("order_profiles")
    codes = stores.store_codes().subquery("order_stores")
    first = aliased(Fulfilment)
    stmt = (
        select(
            id_text(Order.id).label("order_id"),
            Order.number.label("number"),
            Order.channel.label("channel"),
            codes.c.code.label("store"),
            first.mode.label("mode"),
            profiles.c.profile.label("customer"),
            utc_timestamp(Order.placed_at, dialect).label("placed_at"),
            Order.currency.label("currency"),
            cast(Order.total, BigInteger).label("total"),
            cast(Order.discount_total, BigInteger).label("discount_total"),
            cast(func.coalesce(lines.c.units, 0), BigInteger).label("units"),
            Order.status.label("status"),
            case((Order.status == "cancelled", True), else_=False).label("cancelled"),
            cast(func.coalesce(paid.c.refunded, 0), BigInteger).label("refunded"),
            utc_timestamp(Order.updated_at, dialect).label("updated_at"),
        )
        .select_from(Order)
        .outerjoin(first, first.id == _first_fulfilment())
        .outerjoin(lines, lines.c.order_id == Order.id)
        .outerjoin(paid, paid.c.order_id == Order.id)
        .outerjoin(profiles, profiles.c.customer_id == Order.customer_id)
        .outerjoin(codes, codes.c.store_id == func.coalesce(Order.store_id, first.pickup_store_id))
    )
    if placed is not None:
        stmt = stmt.where(Order.placed_at >= placed[0], Order.placed_at < placed[1])
    if changed_since is not None:
        stmt = stmt.where(Order.updated_at >= changed_since)
    return stmt


def sales_line_facts(
    dialect: str, *, placed: tuple[datetime, datetime] | None = None
) -> Select[Any]:
    """The `sales_lines` fact: one row per order line with its order's keys, plus the
    order's `updated_at` for incremental exports (only orders `placed` in [start, end)
    when given, UTC)."""
    orders = (
        order_facts(dialect, placed=placed)
        .add_columns(Order.id.label("order_key"))
        .subquery("sold")
    )
    fulfilment = aliased(Fulfilment)
    return (
        select(
            orders.c.order_id,
            cast(OrderLine.line_no, BigInteger).label("line_no"),
            orders.c.channel,
            orders.c.store,
            func.coalesce(fulfilment.mode, orders.c.mode).label("mode"),
            orders.c.customer,
            orders.c.placed_at,
            OrderLine.sku.label("sku"),
            OrderLine.category.label("category"),
            cast(OrderLine.quantity, BigInteger).label("quantity"),
            cast(OrderLine.returned_quantity, BigInteger).label("returned_quantity"),
            cast(OrderLine.total, BigInteger).label("total"),
            orders.c.cancelled,
            orders.c.updated_at,
        )
        .select_from(OrderLine)
        .join(orders, orders.c.order_key == OrderLine.order_id)
        .outerjoin(fulfilment, fulfilment.id == OrderLine.fulfilment_id)
    )


def customer_orders() -> Select[Any]:
    """(customer_id, order_id, channel, store_id, placed_at, total, currency) of every
    order of a known customer that is not cancelled, in native types (UUIDs, UTC times,
    `total` in cents): audiences (the segments context) count and sum them per profile,
    mapping `customer_id` to the live profile themselves."""
    columns: list[Any] = [
        Order.customer_id,
        Order.id.label("order_id"),
        Order.channel,
        func.coalesce(Order.store_id, _pickup_store()).label("store_id"),
        Order.placed_at,
        Order.total,
        Order.currency,
    ]
    return select(*columns).where(Order.customer_id.is_not(None), Order.status != "cancelled")


def customer_order_lines() -> Select[Any]:
    """`customer_orders` with one row per line: plus `sku`, `category` and the line's
    `line_total` (cents, after its discount)."""
    orders = customer_orders().subquery("customer_orders")
    return select(
        orders.c.customer_id,
        orders.c.order_id,
        orders.c.channel,
        orders.c.store_id,
        orders.c.placed_at,
        orders.c.currency,
        OrderLine.sku,
        OrderLine.category,
        OrderLine.total.label("line_total"),
    ).join(OrderLine, OrderLine.order_id == orders.c.order_id)


def _pickup_store() -> Any:
    first = aliased(Fulfilment)
    return (
        select(first.pickup_store_id)
        .where(first.order_id == Order.id)
        .order_by(first.created_at, first.id)
        .limit(1)
        .correlate(Order)
        .scalar_subquery()
    )


def settled_orders() -> Select[Any]:
    """(customer_id, number, channel, placed_at, kept) of every order of a known customer
    that is not cancelled: `kept` is what the customer paid for goods and kept, in cents
    (total less delivery, less what its refunded returns paid back, live or imported).
    Loyalty credits a history of past orders from it."""
    refunded = (
        select(func.coalesce(func.sum(Return.refund_amount), 0))
        .where(Return.order_id == Order.id, Return.status == "refunded")
        .correlate(Order)
        .scalar_subquery()
    )
    columns: list[Any] = [
        Order.customer_id,
        Order.number,
        Order.channel,
        Order.placed_at,
        (Order.total - Order.delivery_total - refunded).label("kept"),
    ]
    return select(*columns).where(Order.customer_id.is_not(None), Order.status != "cancelled")
