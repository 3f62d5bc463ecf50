"""A customer starts a return from their order page: which items, why, and where they
will bring them (a store offering returns) or send them (by post, to the warehouse).

The request is a `Return` in status `requested` with its lines (condition `pending`, no
refund yet): it tells the receiving store what to expect, and gives the customer a
return number to write on the parcel. Nothing moves until the goods arrive: the returns
desk (or the API) receives them as any return, pre-filled from the request, and
`returns.receive_return` then closes the request as `received`. One open request per
order at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.core.errors import FieldError, Refused, SaidConflict, refusal
from parcours.orders import returns
from parcours.orders.models import RETURN_REASONS, Order, Return, ReturnLine
from parcours.orders.service import (
    RETURN_REQUESTED,
    add_event,
    emit,
    return_number,
    segment_products,
)

REQUESTED = "requested"
PENDING = "pending"  # a requested line's condition until the goods are seen
# What a customer's return request refuses, as `message % values` for their page.
ALREADY_REQUESTED = (
    "Return %(return_number)s is already requested for order %(number)s: "
    "bring or send those items first."
)
CHOOSE_A_UNIT = "choose at least one unit"
NOT_A_REASON = "is not a return reason"
AT_MOST = "at most %(left)s unit(s) can come back"
NOT_RECORDED = "The return request is invalid; nothing was recorded."
MESSAGES = (ALREADY_REQUESTED, CHOOSE_A_UNIT, NOT_A_REASON, AT_MOST, NOT_RECORDED)


@dataclass(frozen=True)
class RequestedLine:
    line_no: int
    quantity: int
    reason: str


def open_request(session: Session, order_id: uuid.UUID) -> Return | None:
    return session.scalar(
        select(Return).where(Return.order_id == order_id, Return.status == REQUESTED).limit(1)
    )


def request_lines(session: Session, request: Return) -> list[ReturnLine]:
    return list(session.scalars(select(ReturnLine).where(ReturnLine.return_id == request.id)))


def request_return(
    session: Session,
    now: datetime,
    order: Order,
    lines: Sequence[RequestedLine],
    channel: str,
    location_id: uuid.UUID,
    actor: str = "customer",
) -> Return:
    """Record what the customer will bring back; 400 when more than can come back, a
    reason unknown, or the place does not take returns; 409 if one is already open."""
    existing = open_request(session, order.id)
    if existing is not None:
        raise SaidConflict(
            ALREADY_REQUESTED,
            extensions={"return_number": existing.number},
            return_number=existing.number,
            number=order.number,
        )
    errors: list[FieldError] = []
    if channel not in returns.CHANNELS:
        errors.append(refusal(returns.STORE_OR_POST, pointer="#/channel"))
    else:
        errors += returns._check_location(session, channel, location_id)
    wanted = [item for item in lines if item.quantity > 0]
    if not wanted:
        errors.append(refusal(CHOOSE_A_UNIT, pointer="#/lines"))
    returnable = returns._returnable(session, order)
    for i, item in enumerate(wanted):
        if item.reason not in RETURN_REASONS:
            errors.append(refusal(NOT_A_REASON, pointer=f"#/lines/{i}/reason"))
        line, left = returnable.get(item.line_no, (None, 0))
        if line is None or item.quantity > left:
            errors.append(refusal(AT_MOST, pointer=f"#/lines/{i}/quantity", left=left))
    if errors:
        raise Refused(NOT_RECORDED, errors)
    record = Return(
        number=return_number(session, now), order_id=order.id, channel=channel,
        location_id=location_id, resolution="refund", status=REQUESTED, refund_amount=0,
        currency=order.currency, received_by=actor[:120], created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(record)
    session.flush()
    rows = [
        ReturnLine(
            return_id=record.id, order_line_id=returnable[item.line_no][0].id,
            sku=returnable[item.line_no][0].sku, quantity=item.quantity, reason=item.reason,
            condition=PENDING, refund_amount=0, restocked=False,
        )
        for item in wanted
    ]  # fmt: skip
    session.add_all(rows)
    products = segment_products([returnable[item.line_no][0] for item in wanted])
    for product, item in zip(products, wanted, strict=True):
        product.update(quantity=item.quantity, reason=item.reason)
    data = {"return_number": record.number, "channel": channel, "location_id": str(location_id)}
    add_event(session, now, order.id, "return_requested", actor, note=record.number, data=data)
    emit(
        session, now, order, RETURN_REQUESTED, step=record.number,
        properties={**data, "products": products},
    )  # fmt: skip
    return record
