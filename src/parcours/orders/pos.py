"""Store tills: each receipt a till posts becomes a completed order of the store channel.

A receipt is a sale that already happened: the customer left with the goods and paid.
So a receipt is never refused for stock: when the books hold fewer units than the till
sold (a delivery not booked yet, a miscount), the shortfall is recorded as an
`adjustment` movement (reason "till sold more than the books held") right before the
sale, so the ledger says what happened, levels never go below zero and the gap shows
in the store's movements for the next count. Reserved units are not taken from other
orders' holds for the same reason: the correction makes room for the sale instead.

Each receipt is identified by `<store code>/<till>/<receipt number>` (the order's
`external_ref`, unique for the source "pos"): a receipt sent twice is stored once, and
the replay answers the order already made. A till that was offline sends its receipts
in one batch; each is judged on its own, the good ones kept and the bad ones reported
with a JSON pointer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from parcours import catalog, customers, inventory, stores
from parcours.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    MalformedRequest,
    NotFound,
    ParcoursError,
)
from parcours.orders.models import Fulfilment, Order, OrderLine, Payment
from parcours.orders.service import ORDER_COMPLETED, add_event, emit, included_vat, order_number

SOURCE = "pos"
MAX_BATCH = 500
# A till's clock may run a little ahead; a sale further in the future is a mistake.
FUTURE_TOLERANCE = timedelta(minutes=10)
SHORTFALL_REASON = "till sold more than the books held"
RETURNS_HINT = (
    "Returns are not taken as receipts: record them through the returns API "
    "(docs/orders.md, 'Lifecycle, payments and returns')."
)


@dataclass(frozen=True)
class ReceiptLine:
    """One SKU sold: `unit_price` in cents VAT included, `discount` on the whole line."""

    sku: str
    quantity: int
    unit_price: int
    discount: int = 0

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity - self.discount


@dataclass(frozen=True)
class Tender:
    """One way the customer paid (`card`, `cash`, `gift_card`, …), in cents, change
    already given back."""

    method: str
    amount: int


@dataclass(frozen=True)
class Receipt:
    """A receipt as the till states it. `store` is the store's id or code; `sold_at` is
    timezone-aware. The customer, when identified, comes as a customer id or as one of
    loyalty card, email or phone."""

    store: str
    till: str
    cashier: str
    number: str
    sold_at: datetime
    lines: Sequence[ReceiptLine]
    payments: Sequence[Tender]
    currency: str = "EUR"
    customer_id: uuid.UUID | None = None
    loyalty_card: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str = "fr"


@dataclass(frozen=True)
class RecordedReceipt:
    """The order a receipt became; `created` is False for a receipt already recorded."""

    order: Order
    created: bool


@dataclass(frozen=True)
class RejectedReceipt:
    """A receipt of a batch that was not kept: its index, reference and problem."""

    index: int
    reference: str
    status: int
    detail: str
    errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True)
class BatchResult:
    accepted: list[tuple[int, RecordedReceipt]]
    rejected: list[RejectedReceipt]


class TotalsMismatch(MalformedRequest):
    """The payments of a receipt do not add up to its lines: the receipt is not kept."""

    def __init__(self, detail: str, errors: list[FieldError]) -> None:
        super().__init__(detail, errors=[e.as_dict() for e in errors])
        self.errors = errors


@dataclass(frozen=True)
class SkuInfo:
    """What an order line snapshots of a catalogue SKU."""

    name: str
    category: str | None
    vat_rate_bp: int


# ------------------------------------------------------------------ shared with imports


def sku_details(session: Session, skus: Sequence[str]) -> dict[str, SkuInfo]:
    """Name, category and VAT rate of the known SKUs among `skus` (unknown ones absent),
    in one query."""
    return {
        sku: SkuInfo(label.name_fr, label.category, label.vat_rate_bp)
        for sku, label in catalog.sku_labels(session, skus).items()
    }


def store_by_reference(session: Session, reference: str) -> Any:
    """A store by id or code, or None."""
    try:
        return stores.get_store(session, uuid.UUID(reference))
    except ValueError:
        pass
    except NotFound:
        return None
    try:
        return stores.get_store_by_code(session, reference.strip())
    except NotFound:
        return None


# ------------------------------------------------------------------ checks


def _check_lines(session: Session, receipt: Receipt, pointer: str) -> dict[str, SkuInfo]:
    errors: list[FieldError] = []
    if not receipt.lines:
        errors.append(FieldError("a receipt has at least one line", pointer=f"{pointer}/lines"))
    for i, line in enumerate(receipt.lines):
        where = f"{pointer}/lines/{i}"
        if line.quantity <= 0:
            errors.append(FieldError(RETURNS_HINT, pointer=f"{where}/quantity"))
        if line.unit_price < 0:
            errors.append(FieldError("must be 0 or more cents", pointer=f"{where}/unit_price"))
        if line.discount < 0 or line.discount > max(line.unit_price * line.quantity, 0):
            errors.append(
                FieldError("must be between 0 and the line's amount", pointer=f"{where}/discount")
            )
    details = sku_details(session, [line.sku for line in receipt.lines])
    errors += [
        FieldError(f"SKU {line.sku!r} is not in the catalogue", pointer=f"{pointer}/lines/{i}/sku")
        for i, line in enumerate(receipt.lines)
        if line.sku not in details
    ]
    if errors:
        raise InvalidInput(
            f"Receipt {receipt.number!r} has {len(errors)} invalid field(s).", errors
        )
    return details


def _check_totals(receipt: Receipt, pointer: str) -> int:
    total = sum(line.total for line in receipt.lines)
    paid = sum(p.amount for p in receipt.payments)
    errors = [
        FieldError("must be more than 0 cents", pointer=f"{pointer}/payments/{i}/amount")
        for i, p in enumerate(receipt.payments)
        if p.amount <= 0
    ]
    if paid != total or not receipt.payments:
        errors.append(
            FieldError(
                f"the payments add up to {paid} cents but the lines to {total} cents",
                pointer=f"{pointer}/payments",
            )
        )
    if errors:
        raise TotalsMismatch(
            f"Receipt {receipt.number!r}: the payments ({paid} cents) do not match the lines "
            f"({total} cents); nothing was recorded. Send the amounts kept, change deducted.",
            errors,
        )
    return total


def _check_time(receipt: Receipt, now: datetime, pointer: str) -> None:
    if receipt.sold_at.tzinfo is None:
        raise InvalidInput(
            "The time of sale needs a time zone (UTC `Z` or an offset such as +01:00).",
            [FieldError("needs a time zone", pointer=f"{pointer}/sold_at")],
        )
    if receipt.sold_at > now + FUTURE_TOLERANCE:
        raise InvalidInput(
            f"Receipt {receipt.number!r} is dated in the future ({receipt.sold_at.isoformat()}).",
            [FieldError("is in the future: check the till's clock", pointer=f"{pointer}/sold_at")],
        )


def _store(session: Session, receipt: Receipt, pointer: str, allowed: Sequence[str] = ()) -> Any:
    store = store_by_reference(session, receipt.store)
    if store is None or store.kind != "store":
        what = "No store" if store is None else "A warehouse has no till: no store"
        raise InvalidInput(
            f"{what} has the id or code {receipt.store!r}; receipt {receipt.number!r} was not "
            "recorded. Check the till's store setting.",
            [FieldError("is not a known store", pointer=f"{pointer}/store")],
        )
    if allowed and store.code not in allowed and str(store.id) not in allowed:
        raise Forbidden(
            f"This API key may post receipts for {', '.join(allowed)} only, not {store.code}."
        )
    return store


# ------------------------------------------------------------------ the customer


def _customer(session: Session, receipt: Receipt) -> tuple[uuid.UUID | None, list[str]]:
    """The identified customer, and notes about identifiers that led nowhere."""
    notes: list[str] = []
    if receipt.customer_id is not None:
        # The live profile (a merged one answers its survivor); no audited read.
        live = customers.canonical_profile_id(session, receipt.customer_id)
        if live is not None:
            return live, notes
        notes.append("the customer id given by the till is unknown")
    for kind, value in (
        ("loyalty_card", receipt.loyalty_card),
        ("email", receipt.email),
        ("phone", receipt.phone),
    ):
        if not value:
            continue
        try:
            found = customers.resolve(session, kind, value)
        except InvalidInput:
            notes.append(f"the {kind.replace('_', ' ')} given by the till is not valid")
            continue
        if found is not None:
            return found, notes
        notes.append(f"no customer has this {kind.replace('_', ' ')}")
    return None, notes


def _contact(kind: str, value: str | None) -> str | None:
    return customers.normalise(kind, value) if value else None


# ------------------------------------------------------------------ recording


def existing_receipt(session: Session, reference: str) -> Order | None:
    return session.scalar(
        select(Order).where(Order.source == SOURCE, Order.external_ref == reference)
    )


def record_receipt(
    session: Session,
    now: datetime,
    receipt: Receipt,
    pointer: str = "#",
    allowed_stores: Sequence[str] = (),
) -> RecordedReceipt:
    """Record one till receipt as a completed store order, in the caller's transaction.

    Raises `InvalidInput` (unknown store or SKU, a return line, a bad time),
    `TotalsMismatch` (400: payments differ from the lines) or `Conflict` (the same
    receipt reference was recorded with another total); nothing is written then.
    `allowed_stores` (codes or ids) limits a till's key to its own store(s).
    """
    _check_time(receipt, now, pointer)
    store = _store(session, receipt, pointer, allowed_stores)
    reference = f"{store.code}/{receipt.till}/{receipt.number}"
    if len(reference) > 100:
        raise InvalidInput(
            "The till and receipt number are too long (100 characters with the store code).",
            [FieldError("is too long", pointer=f"{pointer}/number")],
        )
    total = _check_totals(receipt, pointer)
    existing = existing_receipt(session, reference)
    if existing is not None:
        return _replay(existing, total)
    details = _check_lines(session, receipt, pointer)
    try:
        with session.begin_nested():
            order = _create(session, now, receipt, store, reference, total, details)
    except IntegrityError:  # the same receipt, sent twice at once: the other one won
        existing = existing_receipt(session, reference)
        if existing is None:
            raise
        return _replay(existing, total)
    return RecordedReceipt(order, True)


def _replay(order: Order, total: int) -> RecordedReceipt:
    if order.total != total:
        raise Conflict(
            f"Receipt {order.external_ref} was already recorded (order {order.number}) with a "
            f"total of {order.total} cents, not {total}: a corrected receipt needs a new number.",
            order_id=str(order.id),
            number=order.number,
        )
    return RecordedReceipt(order, False)


def _create(
    session: Session,
    now: datetime,
    receipt: Receipt,
    store: Any,
    reference: str,
    total: int,
    details: dict[str, SkuInfo],
) -> Order:
    sold_at = receipt.sold_at.astimezone(now.tzinfo)
    customer_id, notes = _customer(session, receipt)
    number = order_number(session, "store", sold_at)
    lines = [_line(i, line, details[line.sku]) for i, line in enumerate(receipt.lines, start=1)]
    order = Order(
        number=number,
        channel="store",
        source=SOURCE,
        external_ref=reference,
        store_id=store.id,
        till=receipt.till,
        cashier=receipt.cashier,
        customer_id=customer_id,
        email=_contact("email", receipt.email),
        phone=_contact("phone", receipt.phone),
        locale=receipt.locale,
        currency=receipt.currency,
        subtotal=total,
        discount_total=sum(line.discount for line in receipt.lines),
        delivery_total=0,
        total=total,
        vat_total=sum(line.vat for line in lines),
        promo_codes=[],
        status="completed",
        payment_status="captured",
        placed_at=sold_at,
        updated_at=now,
    )
    session.add(order)
    session.flush()
    fulfilment = Fulfilment(
        order_id=order.id,
        mode="carry_out",
        location_id=store.id,
        pickup_store_id=store.id,
        status="collected",
        reason=f"Sold at till {receipt.till} of {store.name}",
        reason_data={"till": receipt.till, "cashier": receipt.cashier},
        created_at=now,
        updated_at=now,
    )
    session.add(fulfilment)
    session.flush()
    for line in lines:
        line.order_id, line.fulfilment_id = order.id, fulfilment.id
    session.add_all(lines)
    session.add_all(_payments(order, receipt, now))
    shortfalls = _record_sales(session, now, order, store.id, receipt)
    actor = f"till {reference} ({receipt.cashier})"
    add_event(session, now, order.id, "placed", actor, to_status="completed")
    for note in [*notes, *shortfalls]:
        add_event(session, now, order.id, "note", actor, note=note)
    session.flush()
    # Dated at the sale, so an offline till's receipts count on the day they were made.
    emit(session, sold_at, order, ORDER_COMPLETED, lines=lines)
    return order


def _line(line_no: int, line: ReceiptLine, info: SkuInfo) -> OrderLine:
    return OrderLine(
        line_no=line_no,
        sku=line.sku,
        name=info.name,
        category=info.category,
        quantity=line.quantity,
        unit_price=line.unit_price,
        vat_rate_bp=info.vat_rate_bp,
        discount=line.discount,
        total=line.total,
        vat=included_vat(line.total, info.vat_rate_bp),
        returned_quantity=0,
    )


def _payments(order: Order, receipt: Receipt, now: datetime) -> list[Payment]:
    return [
        Payment(
            order_id=order.id,
            provider=SOURCE,
            provider_ref=f"{order.external_ref}#{i}",
            method=tender.method,
            status="captured",
            amount=tender.amount,
            refunded_amount=0,
            currency=order.currency,
            created_at=now,
            updated_at=now,
        )
        for i, tender in enumerate(receipt.payments, start=1)
    ]


def _record_sales(
    session: Session, now: datetime, order: Order, store_id: uuid.UUID, receipt: Receipt
) -> list[str]:
    """Sale movements for the receipt; a shortfall in the books is corrected first (see
    the module docstring). Returns a timeline note per correction."""
    sold: dict[str, int] = {}
    for line in receipt.lines:
        sold[line.sku] = sold.get(line.sku, 0) + line.quantity
    sales = [
        inventory.MovementInput(
            sku, store_id, "sale", qty, "till sale", order.number, order.placed_at
        )
        for sku, qty in sold.items()
    ]
    corrections: list[inventory.MovementInput] = []
    notes: list[str] = []
    for _ in range(len(sales) + 1):
        try:
            with session.begin_nested():
                inventory.record_movements(session, now, [*corrections, *sales])
            return notes
        except Conflict as exc:
            sku, takeable = str(exc.extensions["sku"]), int(exc.extensions["available"])
            shortfall = sold[sku] - takeable
            corrections.append(
                inventory.MovementInput(
                    sku, store_id, "adjustment", shortfall, SHORTFALL_REASON, order.number
                )
            )
            notes.append(
                f"Sold {sold[sku]} of {sku} while the books held {takeable} free: "
                f"recorded an adjustment of +{shortfall}."
            )
    raise ParcoursError(f"The sales of receipt {order.external_ref} could not be recorded.")


def record_receipts(
    session: Session,
    now: datetime,
    receipts: Sequence[Receipt | ParcoursError],
    allowed_stores: Sequence[str] = (),
    offset: int = 0,
) -> BatchResult:
    """Record a till's offline batch: each receipt on its own (a savepoint each), so the
    good ones are kept and each bad one reported with its index and pointers. An item
    may already be a `ParcoursError` (it failed to parse): it is reported as is.
    `offset` numbers the items of a chunk of a longer file (index = offset + position)."""
    if len(receipts) > MAX_BATCH:
        raise InvalidInput(
            f"A batch holds at most {MAX_BATCH} receipts ({len(receipts)} sent): split it.",
            [FieldError(f"at most {MAX_BATCH} items", pointer="#/receipts")],
        )
    accepted: list[tuple[int, RecordedReceipt]] = []
    rejected: list[RejectedReceipt] = []
    for index, item in enumerate(receipts, start=offset):
        pointer = f"#/receipts/{index}"
        if isinstance(item, ParcoursError):
            rejected.append(_rejection(index, "", item))
            continue
        try:
            with session.begin_nested():
                recorded = record_receipt(session, now, item, pointer, allowed_stores)
            accepted.append((index, recorded))
        except ParcoursError as exc:
            rejected.append(_rejection(index, f"{item.store}/{item.till}/{item.number}", exc))
    return BatchResult(accepted, rejected)


def _rejection(index: int, reference: str, exc: ParcoursError) -> RejectedReceipt:
    errors = list(getattr(exc, "errors", []))
    return RejectedReceipt(index, reference, exc.status, exc.detail, errors)
