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

from parcours.core.db import Same, bulk_insert, insert_columns_sqlite
from parcours.core.ids import new_hex_ids, new_id
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


# ------------------------------------------------------------------ columnar bulk path
# `load_history` builds a dict per row and goes through SQLAlchemy's executemany: about
# 30k lines/s on SQLite. Imports of years of till history (`parcours import transactions`)
# need more, so `load_history_frames` takes whole columns (pandas), computes every row
# with numpy and writes each table through the driver (SQLite) in INSERTs of 500 rows
# each (`core.db.insert_columns_sqlite`). Same rows as `load_history` for orders that
# are neither cancelled nor delivered for a fee.

FRAME_CHUNK = 50_000  # rows per bulk insert on PostgreSQL
ID_COLUMNS = frozenset(
    ("id", "order_id", "fulfilment_id", "store_id", "customer_id", "location_id",
     "pickup_store_id", "return_id", "order_line_id", "reservation_id", "exchange_order_id")
)  # fmt: skip


def load_history_frames(session: Session, orders: Any, lines: Any) -> int:
    """Store past orders given as columns; how many were new (already stored
    `(source, external_ref)` pairs are skipped, so a load can be run again).

    `orders` (pandas DataFrame, one row per order): source, external_ref, channel, mode,
    placed_at (UTC timestamps), location_id, store_id, customer_id (UUIDs or None),
    currency. `lines` (one row per line): external_ref (its order's), sku, name, category,
    quantity, unit_price (cents, VAT included), discount (cents off the line), vat_rate_bp,
    returned (units brought back). Lines of an order keep their order in the frame; all
    orders of one call share one source.
    """
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped]

    if orders["source"].nunique() > 1:
        raise ValueError("load_history_frames takes the orders of one source at a time")
    bad_modes = set(orders["mode"].unique()) - set(FULFILMENT_MODES)
    if bad_modes:
        raise ValueError(f"unknown fulfilment mode {sorted(bad_modes)[0]!r}")
    orders = _new_frames_only(session, orders)
    if orders.empty:
        return 0
    orders = orders.sort_values("placed_at", kind="stable").reset_index(drop=True)
    n = len(orders)
    placed = pd.to_datetime(orders["placed_at"], utc=True)
    orders["id"] = new_hex_ids(n)
    orders["fulfilment_id"] = new_hex_ids(n)
    letters = orders["channel"].map(lambda c: service.NUMBER_LETTERS.get(c, "O"))
    orders["number"] = _numbers(session, letters, placed.dt.year)
    # Each line's order by its position in `orders` (lines of orders already stored drop
    # out), then the lines in their orders' order (stable: an order keeps its lines'
    # order) and ids drawn in that order: the primary key and the (order_id, line_no)
    # index both grow at their right end, as `load_history` writes them, instead of at
    # random. In numpy on the positions, not a merge and group-bys on ids.
    where = lines["external_ref"].map(pd.Series(np.arange(n), index=orders["external_ref"]))
    kept = np.flatnonzero(where.notna().to_numpy())
    where = where.to_numpy()[kept].astype(np.int64)
    order = np.argsort(where, kind="stable")
    where = where[order]
    lines = lines.take(kept[order]).reset_index(drop=True)
    lines["id"] = orders["id"].to_numpy()[where]
    lines["fulfilment_id"] = orders["fulfilment_id"].to_numpy()[where]
    lines["line_id"] = new_hex_ids(len(lines))
    starts = np.flatnonzero(np.diff(where, prepend=-1))  # each order's first line
    lines["line_no"] = (
        np.arange(len(where)) - np.repeat(starts, np.diff(starts, append=len(where))) + 1
    )
    if "discount" not in lines:
        lines["discount"] = 0
    gross = lines["unit_price"].to_numpy(np.int64) * lines["quantity"].to_numpy(np.int64)
    gross = gross - lines["discount"].to_numpy(np.int64)
    lines["total"] = gross
    lines["vat"] = _included_vat(gross, lines["vat_rate_bp"].to_numpy(np.int64))
    lines["returned"] = np.minimum(lines["returned"].to_numpy(np.int64), lines["quantity"])
    for name in ("total", "vat", "discount"):
        orders[name] = _per_order(lines[name].to_numpy(np.int64), where, starts, n)
    handed = placed + orders["mode"].map(HANDOVER_DELAY)
    orders["final"] = orders["mode"].map(FINAL_STATUS)
    at, handed_at = _times(session, placed), _times(session, handed)
    writer = _FrameWriter(session)
    writer.write(Order, _order_rows(orders, at, handed_at))
    writer.write(Fulfilment, _fulfilment_rows(orders, at, handed_at))
    writer.write(OrderLine, _line_rows(lines))
    writer.write(Payment, _payment_rows(orders, at))
    writer.write(OrderEvent, _event_rows(orders, at, handed_at))
    returned = lines[lines["returned"] > 0]
    if not returned.empty:
        _frame_returns(
            session, writer, orders, returned, placed + orders["mode"].map(HANDOVER_DELAY)
        )
    return n


def _new_frames_only(session: Session, orders: Any) -> Any:
    orders = orders.drop_duplicates(["source", "external_ref"])
    known: set[tuple[str, str]] = set()
    for source in orders["source"].unique():
        refs = session.execute(
            select(Order.source, Order.external_ref).where(Order.source == str(source))
        )
        known.update((s, r) for s, r in refs if r is not None)
    if not known:
        return orders.copy()
    keys = list(zip(orders["source"], orders["external_ref"], strict=True))
    return orders[[key not in known for key in keys]].copy()


def _per_order(values: Any, where: Any, starts: Any, count: int) -> Any:
    """Sums of `values` (int64, one per line, lines grouped by order) per order position
    (`where`: each line's, sorted; `starts`: each group's first line); 0 for an order
    without lines."""
    import numpy as np

    sums = np.zeros(count, np.int64)
    if len(starts):
        sums[where[starts]] = np.add.reduceat(values, starts)
    return sums


def _numbers(session: Session, letters: Any, years: Any) -> list[str]:
    """Gap-free numbers in the orders' placed_at order, one counter block per prefix."""
    out: list[str] = [""] * len(letters)
    positions: dict[tuple[str, int], list[int]] = {}
    for index, key in enumerate(zip(letters, years, strict=True)):
        positions.setdefault((str(key[0]), int(key[1])), []).append(index)
    for (letter, year), where in positions.items():
        block = service.number_block(session, letter, year, len(where))
        for index, number in zip(where, block, strict=True):
            out[index] = number
    return out


def _included_vat(total: Any, vat_rate_bp: Any) -> Any:
    """`service.included_vat` on arrays: the net part rounded half to even, in cents."""
    import numpy as np

    scaled = total * 10_000
    divisor = 10_000 + vat_rate_bp
    quotient, remainder = np.divmod(scaled, divisor)
    up = (2 * remainder > divisor) | ((2 * remainder == divisor) & (quotient % 2 == 1))
    return total - (quotient + up)


def _times(session: Session, values: Any) -> list[Any]:
    """Timestamps as the driver takes them: SQLite's text form (as SQLAlchemy writes
    it, microseconds included), else aware datetimes."""
    import numpy as np

    utc = values.dt.tz_convert("UTC")
    if session.get_bind().dialect.name == "sqlite":
        # numpy's ISO text with a space for the T: a third of Arrow's strftime.
        stamps = utc.dt.tz_localize(None).to_numpy("datetime64[us]")
        return [text[:10] + " " + text[11:] for text in np.datetime_as_string(stamps).tolist()]
    return [at.to_pydatetime() for at in utc]


class _FrameWriter:
    """Writes rows given as columns: SQLite gets them through the driver, many rows per
    INSERT (ids as 32 hex digits, JSON as text, as SQLAlchemy stores them there); PostgreSQL
    through SQLAlchemy's bulk insert. A column is a list, a Series or an array of one
    value per row, or one value for all (`Same`, or a plain str, int or None), which
    SQLite binds once per statement."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    def write(self, model: Any, columns: dict[str, Any]) -> None:
        names = list(columns)
        count = len(next(v for v in columns.values() if not _constant(v)))
        if not self.sqlite:
            values = [self._column(columns[name], count) for name in names]
            values = [
                _as_uuids(v) if name in ID_COLUMNS else v
                for name, v in zip(names, values, strict=True)
            ]
            rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
            for start in range(0, len(rows), FRAME_CHUNK):
                self.session.execute(bulk_insert(model), rows[start : start + FRAME_CHUNK])
            return
        insert_columns_sqlite(
            self.session,
            model.__tablename__,
            {name: self._sqlite(columns[name], count) for name in names},
        )

    @staticmethod
    def _column(value: Any, count: int) -> list[Any]:
        if isinstance(value, Same):
            return [value.value] * count
        if isinstance(value, list):
            return value
        if hasattr(value, "tolist"):
            return value.tolist()  # type: ignore[no-any-return]
        return [value] * count

    @staticmethod
    def _sqlite(value: Any, count: int) -> list[Any] | Same:
        if _constant(value):
            # A value shared by all rows is converted and bound once, not per row.
            one = value.value if isinstance(value, Same) else value
            return Same(_FrameWriter._sqlite_values([one])[0])
        if _shared_number(value):
            return Same(value.tolist()[0])
        return _FrameWriter._sqlite_values(_FrameWriter._column(value, count))

    @staticmethod
    def _sqlite_values(values: list[Any]) -> list[Any]:
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, uuid.UUID):
            return [v.hex if v is not None else None for v in values]
        if isinstance(sample, dict | list):
            import json

            return [json.dumps(v) for v in values]
        if isinstance(sample, bool):
            return [int(v) for v in values]
        return values


def _source(orders: Any) -> Same:
    """The source of these orders, one per call (`load_history_frames`)."""
    return Same(str(orders["source"].iloc[0]))


def _shared_number(values: Any) -> bool:
    """Whether a numeric array or Series (a VAT rate, a fee) holds one value for all
    rows: found by numpy at once, unlike texts, whose columns are told by the caller."""
    import numpy as np

    array = np.asarray(values) if hasattr(values, "dtype") else None
    if array is None or array.dtype.kind not in "iu" or len(array) < 2:
        return False
    return bool((array == array[0]).all())


def _constant(value: Any) -> bool:
    if isinstance(value, Same):
        return True
    return not isinstance(value, list) and not hasattr(value, "tolist")


def _order_rows(orders: Any, at: list[Any], handed_at: list[Any]) -> dict[str, Any]:
    return {
        "id": orders["id"], "number": orders["number"], "channel": orders["channel"],
        "source": _source(orders), "external_ref": orders["external_ref"],
        "store_id": _uuids(orders["store_id"]), "customer_id": _uuids(orders["customer_id"]),
        "locale": "fr", "currency": orders["currency"], "subtotal": orders["total"],
        "discount_total": orders["discount"], "delivery_total": 0, "total": orders["total"],
        "vat_total": orders["vat"], "promo_codes": Same([]),
        "status": "completed", "payment_status": "captured", "placed_at": at,
        "updated_at": handed_at,
    }  # fmt: skip


def _fulfilment_rows(orders: Any, at: list[Any], handed_at: list[Any]) -> dict[str, Any]:
    pickup = orders["mode"].isin([*PICKUP_MODES, "carry_out"])
    locations = _uuids(orders["location_id"])
    return {
        "id": orders["fulfilment_id"], "order_id": orders["id"], "mode": orders["mode"],
        "location_id": locations,
        "pickup_store_id": [loc if p else None for loc, p in zip(locations, pickup, strict=True)],
        "status": orders["final"], "delivery_fee": 0, "promised_at": handed_at,
        "pickup_attempts": 0, "reason": "imported history",
        "reason_data": Same({}), "created_at": at,
        "updated_at": handed_at,
    }  # fmt: skip


def _line_rows(lines: Any) -> dict[str, Any]:
    return {
        "id": lines["line_id"], "order_id": lines["id"], "fulfilment_id": lines["fulfilment_id"],
        "line_no": lines["line_no"], "sku": lines["sku"], "name": lines["name"],
        "category": _texts(lines["category"]),
        "quantity": lines["quantity"], "unit_price": lines["unit_price"],
        "vat_rate_bp": lines["vat_rate_bp"], "discount": lines["discount"], "total": lines["total"],
        "vat": lines["vat"], "returned_quantity": lines["returned"], "reservation_id": None,
    }  # fmt: skip


def _payment_rows(orders: Any, at: list[Any]) -> dict[str, Any]:
    provider = ["pos" if m == "carry_out" else "history" for m in orders["mode"]]
    refs = [f"{s}:{r}"[:100] for s, r in zip(orders["source"], orders["external_ref"], strict=True)]
    return {
        "id": new_hex_ids(len(orders)), "order_id": orders["id"], "provider": provider,
        "provider_ref": refs, "method": "card", "status": "captured",
        "amount": orders["total"], "refunded_amount": 0, "currency": orders["currency"],
        "created_at": at, "updated_at": at,
    }  # fmt: skip


def _event_rows(orders: Any, at: list[Any], handed_at: list[Any]) -> dict[str, Any]:
    """The timeline: a till sale is placed and completed at once; any other order is
    placed (allocated), then reaches its final status when handed over."""
    columns: dict[str, list[Any]] = {
        k: [] for k in ("order_id", "fulfilment_id", "at", "kind", "from_status", "to_status")
    }
    rows = zip(orders["id"], orders["fulfilment_id"], orders["mode"], orders["final"], strict=True)
    for (order_id, fulfilment_id, mode, final), placed, handed in zip(
        rows, at, handed_at, strict=True
    ):
        steps: list[tuple[Any, str, str | None, str]] = [
            (placed, "placed", None, "completed" if mode == "carry_out" else "allocated")
        ]
        if mode != "carry_out":
            steps.append((handed, "status", "allocated", final))
        for when, kind, from_status, to_status in steps:
            columns["order_id"].append(order_id)
            columns["fulfilment_id"].append(fulfilment_id if kind == "status" else None)
            columns["at"].append(when)
            columns["kind"].append(kind)
            columns["from_status"].append(from_status)
            columns["to_status"].append(to_status)
    count = len(columns["order_id"])
    return {
        "id": new_hex_ids(count), **columns, "actor": _source(orders),
        "note": "", "data": Same({}),
    }  # fmt: skip


def _frame_returns(
    session: Session, writer: _FrameWriter, orders: Any, returned: Any, handed: Any
) -> None:
    """One refunded return per order with returned units, RETURN_DELAY after handover."""
    import numpy as np

    returned = returned.copy()
    returned["refund"] = (
        returned["total"].to_numpy(np.int64)
        * returned["returned"]
        // returned["quantity"].to_numpy(np.int64)
    )
    per_order = returned.groupby("id", sort=False)["refund"].sum()
    which = orders[orders["id"].isin(per_order.index)].copy()
    when = (handed + RETURN_DELAY)[which.index]
    which["return_id"] = new_hex_ids(len(which))
    which["return_number"] = _numbers(session, [service.RETURN_LETTER] * len(which), when.dt.year)
    which["refund"] = which["id"].map(per_order).astype(np.int64)
    at = _times(session, when)
    stores = _uuids(which["store_id"])
    locations = _uuids(which["location_id"])
    writer.write(
        Return,
        {
            "id": which["return_id"], "number": which["return_number"], "order_id": which["id"],
            "channel": ["post" if s is None else "store" for s in stores],
            "location_id": [s or loc for s, loc in zip(stores, locations, strict=True)],
            "resolution": "refund", "status": "refunded", "refund_amount": which["refund"],
            "currency": which["currency"], "exchange_order_id": None,
            "received_by": _source(which), "created_at": at, "updated_at": at,
        },
    )  # fmt: skip
    return_of = dict(zip(which["id"], which["return_id"], strict=True))
    writer.write(
        ReturnLine,
        {
            "id": new_hex_ids(len(returned)), "return_id": [return_of[o] for o in returned["id"]],
            "order_line_id": returned["line_id"], "sku": returned["sku"],
            "quantity": returned["returned"], "reason": "changed_mind",
            "condition": "resaleable", "refund_amount": returned["refund"], "restocked": True,
        },
    )  # fmt: skip
    writer.write(
        OrderEvent,
        {
            "id": new_hex_ids(len(which)), "order_id": which["id"], "fulfilment_id": None, "at": at,
            "kind": "return", "from_status": None, "to_status": None,
            "actor": _source(which), "note": "",
            "data": [{"refund": int(r)} for r in which["refund"]],
        },
    )  # fmt: skip


def _texts(values: Any) -> list[str | None] | None:
    """The strings of a text column, None for the rest (one None when all are)."""
    if values.isna().all():
        return None
    return [v if isinstance(v, str) else None for v in values]


def _uuids(values: Any) -> list[uuid.UUID | None]:
    return [v if isinstance(v, uuid.UUID) else None for v in values]


def _as_uuids(values: list[Any]) -> list[uuid.UUID | None]:
    return [uuid.UUID(v) if isinstance(v, str) else v for v in values]
