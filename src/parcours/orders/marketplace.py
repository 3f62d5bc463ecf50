"""Marketplace orders imported from the marketplace's CSV export.

One order per marketplace order id (its rows are its lines), channel `marketplace`,
source `marketplace:<name>`, `external_ref` the marketplace's id: importing the same
file again skips the orders already there and says so. The marketplace has taken the
payment, so each order is paid (a captured payment of provider `marketplace:<name>`);
it ships from one warehouse holding stock for every line, with a reservation per line
(kind `order_allocation`, until placed, or imported if later, + 30 days). An order no
warehouse can serve is reported, row by row, never dropped silently. As with every import
(`parcours.core.imports`), bad rows are reported with their line and column; with
all-or-nothing, one bad row means nothing is imported.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours import customers, inventory, stores
from parcours.core.errors import Conflict, InvalidInput
from parcours.core.imports import ImportRejected, RowError, read_rows
from parcours.orders.models import Fulfilment, Order, OrderLine, Payment
from parcours.orders.pos import SkuInfo, sku_details
from parcours.orders.service import ORDER_COMPLETED, add_event, emit, included_vat, order_number

COLUMNS = (
    "order_id", "date", "sku", "quantity", "unit_price", "email",
    "shipping_name", "shipping_address", "shipping_postcode", "shipping_city",
)  # fmt: skip
HOLD = timedelta(days=30)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")


@dataclass(frozen=True)
class MarketplaceLine:
    row: int
    order_id: str
    placed_at: datetime
    sku: str
    quantity: int
    unit_price: int
    email: str | None
    address: dict[str, str]


@dataclass
class MarketplaceReport:
    rows: int = 0
    imported: list[str] = field(default_factory=list)  # order numbers
    skipped: list[str] = field(default_factory=list)  # marketplace ids already imported
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected_orders(self) -> int:
        return len({e.row for e in self.errors})


def parse_price(text: str) -> int:
    """Cents from `1290` (cents) or `12.90` / `12,90` (euros)."""
    value = text.strip().replace("\u202f", "").replace(" ", "")
    if re.fullmatch(r"\d+", value):
        return int(value)
    if not re.fullmatch(r"\d+[.,]\d{1,2}", value):
        raise ValueError(f"{text!r} is neither cents (1290) nor euros (12.90)")
    return int(Decimal(value.replace(",", ".")) * 100)


def parse_row(row_no: int, row: dict[str, Any]) -> tuple[MarketplaceLine | None, list[RowError]]:
    """One CSV row as a line, or the problems of each of its columns."""
    errors: list[RowError] = []
    text = {c: str(row.get(c) or "").strip() for c in COLUMNS}
    for column in ("order_id", "date", "sku", "quantity", "unit_price", "shipping_name",
                   "shipping_address", "shipping_postcode", "shipping_city"):  # fmt: skip
        if not text[column]:
            errors.append(RowError(row_no, column, "is required"))
    placed_at = quantity = price = None
    try:
        placed_at = datetime.fromisoformat(text["date"]) if text["date"] else None
        if placed_at is not None and placed_at.tzinfo is None:
            errors.append(RowError(row_no, "date", "needs a time zone (Z or +01:00)"))
    except ValueError:
        errors.append(RowError(row_no, "date", "is not an ISO 8601 date and time"))
    if text["quantity"]:
        quantity = int(text["quantity"]) if text["quantity"].isdigit() else 0
        if quantity <= 0:
            errors.append(RowError(row_no, "quantity", "must be a whole number above 0"))
    try:
        price = parse_price(text["unit_price"]) if text["unit_price"] else None
    except (ValueError, InvalidOperation) as exc:
        errors.append(RowError(row_no, "unit_price", str(exc)))
    email = customers.normalise("email", text["email"]) if text["email"] else None
    if text["email"] and email is None:
        errors.append(RowError(row_no, "email", "is not an email address"))
    if errors or placed_at is None or quantity is None or price is None:
        return None, errors
    address = {
        "name": text["shipping_name"],
        "address": text["shipping_address"],
        "postcode": text["shipping_postcode"],
        "city": text["shipping_city"],
        "country": "FR",
    }
    line = MarketplaceLine(
        row_no, text["order_id"], placed_at, text["sku"], quantity, price, email, address
    )
    return line, []


def import_marketplace(
    session: Session,
    now: datetime,
    stream: IO[str],
    marketplace: str,
    all_or_nothing: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> MarketplaceReport:
    """Import a marketplace CSV in the caller's transaction (see the module docstring).

    Raises `ImportRejected` (nothing imported) when `all_or_nothing` and a row is bad.
    """
    if not _NAME.match(marketplace):
        raise InvalidInput("A marketplace name is lower-case letters, digits, - or _.")
    source = f"marketplace:{marketplace}"
    report = MarketplaceReport()
    grouped: dict[str, list[MarketplaceLine]] = defaultdict(list)
    bad_orders: set[str] = set()
    for row_no, row in read_rows(stream, "csv"):
        report.rows += 1
        line, errors = parse_row(row_no, row)
        report.errors += errors
        if line is not None:
            grouped[line.order_id].append(line)
        else:
            bad_orders.add(str(row.get("order_id") or "").strip())
    with session.begin_nested():
        _import_orders(session, now, source, grouped, report, bad_orders, progress)
        if report.errors and all_or_nothing:
            raise ImportRejected(report.errors, report.rows)
    return report


def _import_orders(
    session: Session,
    now: datetime,
    source: str,
    grouped: dict[str, list[MarketplaceLine]],
    report: MarketplaceReport,
    bad_orders: set[str],
    progress: Callable[[int, int], None] | None,
) -> None:
    existing = set(
        session.scalars(
            select(Order.external_ref).where(
                Order.source == source, Order.external_ref.in_(list(grouped))
            )
        )
    )
    details = sku_details(session, [line.sku for lines in grouped.values() for line in lines])
    for done, (order_id, lines) in enumerate(grouped.items(), start=1):
        if progress is not None:
            progress(done, len(grouped))
        if order_id in existing:
            report.skipped.append(order_id)
            continue
        if order_id in bad_orders:  # never half an order: its other rows wait too
            report.errors += [
                RowError(line.row, "order_id", "another row of this order is invalid")
                for line in lines
            ]
            continue
        problems = [
            RowError(line.row, "sku", f"SKU {line.sku!r} is not in the catalogue")
            for line in lines
            if line.sku not in details
        ]
        if problems:
            report.errors += problems
            continue
        try:
            with session.begin_nested():
                order = _create(session, now, source, order_id, lines, details)
            report.imported.append(order.number)
        except Conflict as exc:
            report.errors += [RowError(line.row, "sku", exc.detail) for line in lines]


def _pick_warehouse(session: Session, lines: Iterable[MarketplaceLine]) -> uuid.UUID:
    """The warehouse (first by id, for a stable choice) with stock for every line."""
    wanted: dict[str, int] = defaultdict(int)
    for line in lines:
        wanted[line.sku] += line.quantity
    candidates: set[uuid.UUID] | None = None
    for sku, quantity in wanted.items():
        available = inventory.available_by_location(session, sku)
        enough = {where for where, units in available.items() if units >= quantity}
        candidates = enough if candidates is None else candidates & enough
    places = stores.locations(session, candidates or ())
    candidates = {p.id for p in places.values() if p.kind == "warehouse" and p.active}
    if not candidates:
        short = ", ".join(f"{q} × {s}" for s, q in wanted.items())
        raise Conflict(f"No warehouse has {short} in stock: the order was not imported.")
    return sorted(candidates, key=str)[0]


def _create(
    session: Session,
    now: datetime,
    source: str,
    order_id: str,
    lines: list[MarketplaceLine],
    details: dict[str, SkuInfo],
) -> Order:
    warehouse = _pick_warehouse(session, lines)
    first = lines[0]
    placed_at = first.placed_at.astimezone(now.tzinfo)
    rows = [_line(i, line, details[line.sku]) for i, line in enumerate(lines, start=1)]
    total = sum(r.total for r in rows)
    order = Order(
        number=order_number(session, "marketplace", placed_at),
        channel="marketplace", source=source, external_ref=order_id, email=first.email,
        locale="fr", shipping_address=first.address, currency="EUR", subtotal=total,
        discount_total=0, delivery_total=0, total=total, vat_total=sum(r.vat for r in rows),
        promo_codes=[], status="paid", payment_status="captured", placed_at=placed_at,
        updated_at=now,
    )  # fmt: skip
    session.add(order)
    session.flush()
    fulfilment = Fulfilment(
        order_id=order.id, mode="home_delivery", location_id=warehouse, status="allocated",
        reason="Shipped from the warehouse holding every line",
        reason_data={"warehouse_id": str(warehouse), "lines": len(rows)},
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(fulfilment)
    session.flush()
    for row in rows:
        held = inventory.reserve(
            session, now, row.sku, warehouse, row.quantity, "order_allocation",
            reference=order.number, expires_at=max(placed_at, now) + HOLD,
        )  # fmt: skip
        row.order_id, row.fulfilment_id = order.id, fulfilment.id
        row.reservation_id = held.reservation.id
    session.add_all(rows)
    session.add(
        Payment(
            order_id=order.id, provider=source, provider_ref=order_id, method="marketplace",
            status="captured", amount=total, refunded_amount=0, currency="EUR",
            created_at=now, updated_at=now,
        )
    )  # fmt: skip
    add_event(session, now, order.id, "placed", source, to_status="paid")
    session.flush()
    emit(session, now, order, ORDER_COMPLETED, lines=rows)
    return order


def _line(line_no: int, line: MarketplaceLine, info: SkuInfo) -> OrderLine:
    total = line.unit_price * line.quantity
    return OrderLine(
        line_no=line_no, sku=line.sku, name=info.name, category=info.category,
        quantity=line.quantity, unit_price=line.unit_price, vat_rate_bp=info.vat_rate_bp,
        discount=0, total=total, vat=included_vat(total, info.vat_rate_bp), returned_quantity=0,
    )  # fmt: skip
