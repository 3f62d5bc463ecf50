"""Returns anywhere: goods of any order brought back to any store offering returns, or
sent by post to a warehouse, then refunded or exchanged.

Only what was handed over (shipped, collected, delivered) can come back, and never more
than bought minus already returned: the count moves in one conditional write per line,
so two desks taking the same parcel back cannot both succeed. Resaleable goods go back
on the receiving location's shelf (a `return` movement there, wherever they were sold);
damaged ones are recorded and not restocked.

Refund: the returned lines' share of what was paid, through `payments.refund` (which
emits `Order Refunded`); an order never captured online (paid nowhere yet) has nothing
to give back. Exchange: no money moves; the replacement is simply a new order placed
through checkout (its id recorded as `exchange_order_id` when known).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from parcours import inventory, stores
from parcours.core.errors import ONE_OF, FieldError, Refused, refusal
from parcours.orders import payments
from parcours.orders.models import (
    HANDED_OVER,
    RETURN_CONDITIONS,
    RETURN_REASONS,
    Order,
    OrderLine,
    Return,
    ReturnLine,
)
from parcours.orders.service import (
    RETURN_RECEIVED,
    add_event,
    emit,
    fulfilments_of,
    lines_of,
    return_number,
    segment_products,
)

RESOLUTIONS = ("refund", "exchange")
CHANNELS = ("store", "post")
# What taking goods back refuses, as `message % values` for the console.
STORE_OR_POST = "must be store or post"
REFUND_OR_EXCHANGE = "must be refund or exchange"
AT_LEAST_ONE_LINE = "bring back at least one line"
POSITIVE = "must be a positive number"
RESALEABLE_OR_DAMAGED = "must be resaleable or damaged"
FIELDS_INVALID = "%(count)s field(s) of the return are invalid."
AT_A_WAREHOUSE = "parcels are received at a warehouse"
NO_RETURNS_HERE = "%(code)s does not take returns"
NO_LINE = "Order %(number)s has no line %(line_no)s."
NO_SUCH_LINE = "no such line on this order"
TOO_MANY = (
    "Line %(line_no)s (%(sku)s): %(quantity)s unit(s) brought back but only %(left)s can be "
    "(bought %(bought)s, already returned %(returned)s, and only goods handed over count)."
)
MESSAGES = (
    STORE_OR_POST, REFUND_OR_EXCHANGE, AT_LEAST_ONE_LINE, POSITIVE, ONE_OF,
    RESALEABLE_OR_DAMAGED, FIELDS_INVALID, AT_A_WAREHOUSE, NO_RETURNS_HERE, NO_LINE,
    NO_SUCH_LINE, TOO_MANY,
)  # fmt: skip


class ReturnExceedsPurchase(Refused):
    """More units brought back than were bought (and handed over) minus those already
    returned: a 400 naming the line."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "return-exceeds-purchase"
    title: ClassVar[str] = "Return exceeds purchase"


@dataclass(frozen=True)
class ReturnLineInput:
    line_no: int
    quantity: int
    reason: str
    condition: str


def _check_inputs(
    session: Session, channel: str, location_id: uuid.UUID, resolution: str,
    lines: Sequence[ReturnLineInput],
) -> None:  # fmt: skip
    errors: list[FieldError] = []
    if channel not in CHANNELS:
        errors.append(refusal(STORE_OR_POST, pointer="#/channel"))
    if resolution not in RESOLUTIONS:
        errors.append(refusal(REFUND_OR_EXCHANGE, pointer="#/resolution"))
    if not lines:
        errors.append(refusal(AT_LEAST_ONE_LINE, pointer="#/lines"))
    for i, line in enumerate(lines):
        if line.quantity <= 0:
            errors.append(refusal(POSITIVE, pointer=f"#/lines/{i}/quantity"))
        if line.reason not in RETURN_REASONS:
            choices = ", ".join(RETURN_REASONS)
            errors.append(refusal(ONE_OF, pointer=f"#/lines/{i}/reason", choices=choices))
        if line.condition not in RETURN_CONDITIONS:
            errors.append(refusal(RESALEABLE_OR_DAMAGED, pointer=f"#/lines/{i}/condition"))
    if channel in CHANNELS:
        errors.extend(_check_location(session, channel, location_id))
    if errors:
        count = len(errors)
        raise Refused.of(FIELDS_INVALID, errors, count=count)


def _check_location(session: Session, channel: str, location_id: uuid.UUID) -> list[FieldError]:
    place = stores.get_store(session, location_id)
    if channel == "post" and place.kind != "warehouse":
        return [refusal(AT_A_WAREHOUSE, pointer="#/location_id")]
    if channel == "store" and (place.kind != "store" or "returns" not in place.services):
        return [refusal(NO_RETURNS_HERE, pointer="#/location_id", code=place.code)]
    return []


def _returnable(session: Session, order: Order) -> dict[int, tuple[OrderLine, int]]:
    """Per line number: the line and how many units can still come back."""
    handed = {f.id for f in fulfilments_of(session, order.id) if f.status in HANDED_OVER}
    return {
        line.line_no: (line, line.quantity - line.returned_quantity)
        if line.fulfilment_id in handed
        else (line, 0)
        for line in lines_of(session, order.id)
    }


def _claim(session: Session, line: OrderLine, quantity: int, pointer: str) -> None:
    """Count the units returned in one conditional write (a concurrent return loses)."""
    claimed = session.execute(
        update(OrderLine)
        .where(
            OrderLine.id == line.id, OrderLine.returned_quantity + quantity <= OrderLine.quantity
        )
        .values(returned_quantity=OrderLine.returned_quantity + quantity)
        .returning(OrderLine.returned_quantity)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        raise _too_many(line, quantity, 0, pointer)


def _too_many(line: OrderLine, quantity: int, left: int, pointer: str) -> ReturnExceedsPurchase:
    values: dict[str, Any] = {
        "line_no": line.line_no, "sku": line.sku, "quantity": quantity, "left": left,
        "bought": line.quantity, "returned": line.returned_quantity,
    }  # fmt: skip
    mistake = refusal(TOO_MANY, pointer=pointer, **values)
    return ReturnExceedsPurchase(mistake.detail, [mistake], TOO_MANY, **values)


def _line_refund(line: OrderLine, before: int, quantity: int) -> int:
    """The share of the line's total for `quantity` more units, exact over all returns."""
    return (line.total * (before + quantity)) // line.quantity - (
        line.total * before
    ) // line.quantity


def receive_return(
    session: Session,
    now: datetime,
    order: Order,
    location_id: uuid.UUID,
    lines: Sequence[ReturnLineInput],
    received_by: str,
    *,
    channel: str = "store",
    resolution: str = "refund",
    exchange_order_id: uuid.UUID | None = None,
) -> Return:
    """Take goods of `order` back at `location_id`; restock, refund or note the exchange."""
    _check_inputs(session, channel, location_id, resolution, lines)
    returnable = _returnable(session, order)
    wanted: dict[int, int] = defaultdict(int)
    for i, item in enumerate(lines):
        pointer = f"#/lines/{i}/quantity"
        if item.line_no not in returnable:
            mistake = refusal(NO_SUCH_LINE, pointer=f"#/lines/{i}/line_no")
            raise Refused.of(NO_LINE, [mistake], number=order.number, line_no=item.line_no)
        line, left = returnable[item.line_no]
        wanted[item.line_no] += item.quantity
        if wanted[item.line_no] > left:
            raise _too_many(line, wanted[item.line_no], left, pointer)
    record = Return(
        number=return_number(session, now), order_id=order.id, channel=channel,
        location_id=location_id, resolution=resolution, status="received", refund_amount=0,
        currency=order.currency, exchange_order_id=exchange_order_id,
        received_by=received_by[:120], created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(record)
    session.flush()
    rows, restock = _record_lines(session, record, lines, returnable)
    if restock:
        inventory.record_movements(session, now, restock, skus_checked=True)
    _resolve(session, now, order, record, sum(r.refund_amount for r in rows), received_by)
    _announce(session, now, order, record, rows, returnable)
    # A request the customer made for these goods is done once they are here.
    session.execute(
        update(Return)
        .where(Return.order_id == order.id, Return.status == "requested")
        .values(status="received", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return record


def _record_lines(
    session: Session,
    record: Return,
    lines: Sequence[ReturnLineInput],
    returnable: dict[int, tuple[OrderLine, int]],
) -> tuple[list[ReturnLine], list[inventory.MovementInput]]:
    rows: list[ReturnLine] = []
    restock: list[inventory.MovementInput] = []
    for i, item in enumerate(lines):
        line = returnable[item.line_no][0]
        before = line.returned_quantity
        _claim(session, line, item.quantity, f"#/lines/{i}/quantity")
        line.returned_quantity = before + item.quantity
        resaleable = item.condition == "resaleable"
        rows.append(
            ReturnLine(
                return_id=record.id, order_line_id=line.id, sku=line.sku,
                quantity=item.quantity, reason=item.reason, condition=item.condition,
                refund_amount=_line_refund(line, before, item.quantity), restocked=resaleable,
            )
        )  # fmt: skip
        if resaleable:
            restock.append(
                inventory.MovementInput(
                    line.sku, record.location_id, "return", item.quantity,
                    reason=item.reason, reference=record.number,
                )
            )  # fmt: skip
    session.add_all(rows)
    return rows, restock


def _resolve(
    session: Session, now: datetime, order: Order, record: Return, owed: int, actor: str
) -> None:
    if record.resolution == "exchange":
        record.status = "exchanged"
        return
    amount = min(owed, payments.refundable(session, order))
    if amount > 0:
        payments.refund(session, now, order, amount, f"return {record.number}", actor)
        record.status = "refunded"
    record.refund_amount = amount


def _announce(
    session: Session,
    now: datetime,
    order: Order,
    record: Return,
    rows: list[ReturnLine],
    returnable: dict[int, tuple[OrderLine, int]],
) -> None:
    by_id = {line.id: line for line, _ in returnable.values()}
    products = segment_products([by_id[r.order_line_id] for r in rows])
    for product, row in zip(products, rows, strict=True):
        product.update(quantity=row.quantity, reason=row.reason, condition=row.condition)
    data: dict[str, Any] = {
        "return_id": str(record.id), "return_number": record.number,
        "resolution": record.resolution, "refund_amount": record.refund_amount,
        "location_id": str(record.location_id), "channel": record.channel,
    }  # fmt: skip
    add_event(session, now, order.id, "return", record.received_by, note=record.number, data=data)
    emit(
        session, now, order, RETURN_RECEIVED, step=record.number,
        properties={**data, "products": products},
    )  # fmt: skip
