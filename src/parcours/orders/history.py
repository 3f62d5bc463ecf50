"""Orders that were already fulfilled elsewhere: years of history from the old tills and
web shop, or the demo's two years, loaded in bulk.

History is a record, not a live sale: it moves no stock (the stock counted today already
reflects it), takes no payment and announces nothing (the purchases are already in the
tracking log, or are sent there by whoever imports them). Each order gets its number,
its lines, one fulfilment in its final state, its captured payment, the steps of its
timeline, and its returns if it had any; an order whose `(source, external_ref)` is
already stored is skipped, so a load can be run again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from parcours.core.db import bulk_insert
from parcours.core.ids import new_id
from parcours.orders import service
from parcours.orders.models import (
    FULFILMENT_MODES,
    PICKUP_MODES,
    Fulfilment,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Return,
    ReturnLine,
)

CHUNK = 500
# The final state of a fulfilment that went well, by mode.
FINAL_STATUS = {
    "home_delivery": "delivered",
    "ship_from_store": "delivered",
    "click_and_collect": "collected",
    "reserve_in_store": "collected",
    "drive": "collected",
    "carry_out": "collected",
}
RETURN_DELAY = timedelta(days=9)
HANDOVER_DELAY = {
    "home_delivery": timedelta(days=2),
    "ship_from_store": timedelta(days=2),
    "click_and_collect": timedelta(hours=26),
    "reserve_in_store": timedelta(hours=30),
    "drive": timedelta(hours=20),
    "carry_out": timedelta(0),
}


@dataclass(frozen=True)
class PastLine:
    sku: str
    name: str
    quantity: int
    unit_price: int  # cents, VAT included
    vat_rate_bp: int = 2000
    category: str | None = None
    discount: int = 0
    returned: int = 0  # units brought back later (a return is recorded for them)


@dataclass(frozen=True)
class PastOrder:
    """One past sale. `location_id` is where the goods left from (a warehouse for home
    delivery, the store otherwise); `store_id` where it was sold (tills) or collected."""

    source: str
    external_ref: str
    channel: str
    mode: str
    placed_at: datetime
    location_id: uuid.UUID
    lines: Sequence[PastLine]
    currency: str = "EUR"
    store_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    anonymous_id: str | None = None
    delivery_fee: int = 0
    payment_method: str = "card"
    cancelled: bool = False
    return_reason: str = "changed_mind"
    return_location_id: uuid.UUID | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Rows:
    orders: list[dict[str, Any]] = field(default_factory=list)
    fulfilments: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    returns: list[dict[str, Any]] = field(default_factory=list)
    return_lines: list[dict[str, Any]] = field(default_factory=list)


def load_history(session: Session, past: Sequence[PastOrder]) -> int:
    """Store past orders in bulk (chunks of 500, a few statements each); how many were new."""
    for item in past:
        if item.mode not in FULFILMENT_MODES:
            raise ValueError(f"unknown fulfilment mode {item.mode!r}")
    stored = 0
    for start in range(0, len(past), CHUNK):
        chunk = _new_only(session, past[start : start + CHUNK])
        rows = _Rows()
        numbers = _Numbers(session, chunk)
        for item in sorted(chunk, key=lambda p: p.placed_at):
            _rows_of(numbers, item, rows)
        for model, values in (
            (Order, rows.orders),
            (Fulfilment, rows.fulfilments),
            (OrderLine, rows.lines),
            (Payment, rows.payments),
            (OrderEvent, rows.events),
            (Return, rows.returns),
            (ReturnLine, rows.return_lines),
        ):
            if values:
                session.execute(bulk_insert(model), values)
        stored += len(chunk)
    return stored


def _new_only(session: Session, chunk: Sequence[PastOrder]) -> list[PastOrder]:
    keys = {(p.source, p.external_ref) for p in chunk}
    known = set(
        session.execute(
            select(Order.source, Order.external_ref).where(
                tuple_(Order.source, Order.external_ref).in_(sorted(keys))
            )
        ).all()
    )
    seen: set[tuple[str, str]] = set()
    out = []
    for item in chunk:
        key = (item.source, item.external_ref)
        if key not in known and key not in seen:
            seen.add(key)
            out.append(item)
    return out


class _Numbers:
    """Order and return numbers for a chunk, taken from the counters a block at a time."""

    def __init__(self, session: Session, chunk: Sequence[PastOrder]) -> None:
        self.session = session
        self.free: dict[tuple[str, int], list[str]] = {}
        self.needed: Counter[tuple[str, int]] = Counter()
        for item in chunk:
            self.needed[(service.NUMBER_LETTERS.get(item.channel, "O"), item.placed_at.year)] += 1
            if not item.cancelled and any(line.returned for line in item.lines):
                year = (item.placed_at + HANDOVER_DELAY[item.mode] + RETURN_DELAY).year
                self.needed[(service.RETURN_LETTER, year)] += 1

    def take(self, letter: str, year: int) -> str:
        """The next number; the first call for a prefix takes the whole chunk's block,
        so the numbers stay gap-free."""
        free = self.free.setdefault((letter, year), [])
        if not free:
            count = max(self.needed[(letter, year)], 1)
            free.extend(reversed(service.number_block(self.session, letter, year, count)))
        return free.pop()


def _rows_of(numbers: _Numbers, item: PastOrder, rows: _Rows) -> None:
    at = item.placed_at
    order_id, fulfilment_id = new_id(), new_id()
    number = numbers.take(service.NUMBER_LETTERS.get(item.channel, "O"), at.year)
    subtotal = sum(line.unit_price * line.quantity - line.discount for line in item.lines)
    vat_total = sum(_vat(line) for line in item.lines)
    handed_at = at + HANDOVER_DELAY[item.mode]
    final = "cancelled" if item.cancelled else FINAL_STATUS[item.mode]
    pickup = item.mode in PICKUP_MODES or item.mode == "carry_out"
    rows.orders.append(
        {
            "id": order_id,
            "number": number,
            "channel": item.channel,
            "source": item.source,
            "external_ref": item.external_ref,
            "store_id": item.store_id,
            "customer_id": item.customer_id,
            "anonymous_id": item.anonymous_id,
            "locale": "fr",
            "currency": item.currency,
            "subtotal": subtotal,
            "discount_total": sum(line.discount for line in item.lines),
            "delivery_total": item.delivery_fee,
            "total": subtotal + item.delivery_fee,
            "vat_total": vat_total,
            "promo_codes": [],
            "status": "cancelled" if item.cancelled else "completed",
            "payment_status": "refunded" if item.cancelled else "captured",
            "placed_at": at,
            "updated_at": at if item.cancelled else handed_at,
        }
    )
    rows.fulfilments.append(
        {
            "id": fulfilment_id,
            "order_id": order_id,
            "mode": item.mode,
            "location_id": item.location_id,
            "pickup_store_id": item.location_id if pickup else None,
            "status": final,
            "delivery_fee": item.delivery_fee,
            "promised_at": handed_at,
            "pickup_attempts": 0,
            "reason": "imported history",
            "reason_data": dict(item.extra),
            "created_at": at,
            "updated_at": handed_at,
        }
    )
    line_ids = []
    for line_no, line in enumerate(item.lines, start=1):
        line_ids.append(new_id())
        rows.lines.append(
            {
                "id": line_ids[-1],
                "order_id": order_id,
                "fulfilment_id": fulfilment_id,
                "line_no": line_no,
                "sku": line.sku,
                "name": line.name,
                "category": line.category,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "vat_rate_bp": line.vat_rate_bp,
                "discount": line.discount,
                "total": line.unit_price * line.quantity - line.discount,
                "vat": _vat(line),
                "returned_quantity": 0 if item.cancelled else min(line.returned, line.quantity),
                "reservation_id": None,
            }
        )
    provider = "pos" if item.mode == "carry_out" else "history"
    rows.payments.append(
        {
            "id": new_id(),
            "order_id": order_id,
            "provider": provider,
            "provider_ref": f"{item.source}:{item.external_ref}"[:100],
            "method": item.payment_method,
            "status": "refunded" if item.cancelled else "captured",
            "amount": subtotal + item.delivery_fee,
            "refunded_amount": subtotal + item.delivery_fee if item.cancelled else 0,
            "currency": item.currency,
            "created_at": at,
            "updated_at": at,
        }
    )
    _timeline(rows, item, order_id, fulfilment_id, final, handed_at)
    if not item.cancelled and any(line.returned for line in item.lines):
        _return(numbers, rows, item, order_id, line_ids, handed_at + RETURN_DELAY)


def _vat(line: PastLine) -> int:
    return service.included_vat(line.unit_price * line.quantity - line.discount, line.vat_rate_bp)


def _timeline(
    rows: _Rows,
    item: PastOrder,
    order_id: uuid.UUID,
    fulfilment_id: uuid.UUID,
    final: str,
    handed_at: datetime,
) -> None:
    def step(at: datetime, kind: str, to_status: str, from_status: str | None = None) -> None:
        rows.events.append(
            {
                "id": new_id(),
                "order_id": order_id,
                "fulfilment_id": fulfilment_id if kind == "status" else None,
                "at": at,
                "kind": kind,
                "from_status": from_status,
                "to_status": to_status,
                "actor": item.source,
                "note": "",
                "data": {},
            }
        )

    if item.mode == "carry_out":
        step(item.placed_at, "placed", "completed")
        return
    step(item.placed_at, "placed", "allocated")
    if item.cancelled:
        step(item.placed_at + timedelta(hours=2), "status", "cancelled", "allocated")
        return
    step(handed_at, "status", final, "allocated")


def _return(
    numbers: _Numbers,
    rows: _Rows,
    item: PastOrder,
    order_id: uuid.UUID,
    line_ids: list[uuid.UUID],
    at: datetime,
) -> None:
    return_id = new_id()
    refund = 0
    for line, line_id in zip(item.lines, line_ids, strict=True):
        units = min(line.returned, line.quantity)
        if not units:
            continue
        amount = (line.unit_price * line.quantity - line.discount) * units // line.quantity
        refund += amount
        rows.return_lines.append(
            {
                "id": new_id(),
                "return_id": return_id,
                "order_line_id": line_id,
                "sku": line.sku,
                "quantity": units,
                "reason": item.return_reason,
                "condition": "resaleable",
                "refund_amount": amount,
                "restocked": True,
            }
        )
    where = item.return_location_id or item.store_id or item.location_id
    rows.returns.append(
        {
            "id": return_id,
            "number": numbers.take(service.RETURN_LETTER, at.year),
            "order_id": order_id,
            "channel": "post" if where == item.location_id and item.store_id is None else "store",
            "location_id": where,
            "resolution": "refund",
            "status": "refunded",
            "refund_amount": refund,
            "currency": item.currency,
            "exchange_order_id": None,
            "received_by": item.source,
            "created_at": at,
            "updated_at": at,
        }
    )
    rows.events.append(
        {
            "id": new_id(),
            "order_id": order_id,
            "fulfilment_id": None,
            "at": at,
            "kind": "return",
            "from_status": None,
            "to_status": None,
            "actor": item.source,
            "note": "",
            "data": {"refund": refund},
        }
    )
