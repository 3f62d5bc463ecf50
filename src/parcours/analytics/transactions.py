"""Sales history import: line-level sales from the old tills and web shop become past
orders (`parcours import transactions FILE.csv[.gz] --map COLUMN=FIELD ...`).

One row is one sold line. FIELDS says what each row may hold; `--map` names the file's
column for a field when the header differs (`--map InvoiceNo=invoice`). Rows sharing an
invoice become one order (its date is the earliest of its rows). A row with a negative
quantity, or an invoice starting with `C` (a credit note), is a return: it is matched to
the latest earlier sale of the same SKU to the same customer in the file, and recorded
as units brought back on that line. Unknown SKUs become products (catalog facade),
unknown customer numbers become customers (customers facade); stores must exist.

The file is read and checked in columns (pyarrow, pandas), never row by row, and written
through `orders.load_history_frames`: bad rows are reported as (row, column, message)
and kept out; importing the same file again adds nothing (orders are keyed by source
and invoice).
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy.orm import Session

from parcours import catalog, customers, orders, stores
from parcours.analytics.names import DEFAULT_SOURCE, TRANSACTION_FIELDS
from parcours.core.errors import InvalidInput
from parcours.core.imports import ImportRejected, RowError, collector_paused

FIELDS = TRANSACTION_FIELDS
REQUIRED = ("invoice", "sku", "quantity", "date")
MAX_QUANTITY = 100_000
MAX_CUSTOMER_NUMBER = 32  # customers.customer_number
MAX_INVOICE = 100  # orders.external_ref


@dataclass
class TransactionsReport:
    """What an import did: rows read; orders stored (new ones only: a re-import stores
    none); good sale lines and those with returned units, in the file; products and
    customers created; the rows refused."""

    rows: int = 0
    orders: int = 0
    lines: int = 0
    returns: int = 0
    new_products: int = 0
    new_customers: int = 0
    rejected_rows: int = 0
    errors: list[RowError] = field(default_factory=list)


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """`COLUMN=FIELD` pairs as {column: field}; an unknown field is refused."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, name = pair.partition("=")
        if not sep or not column.strip() or name.strip() not in FIELDS:
            raise InvalidInput(
                f"--map {pair!r}: write COLUMN=FIELD with FIELD one of {', '.join(FIELDS)}."
            )
        mapping[column.strip()] = name.strip()
    return mapping


def read_transactions(path: Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The file's rows as text columns named after FIELDS (plus `row`, the CSV line
    number); `.gz` files are read compressed. Unmapped columns are ignored."""
    names = dict(mapping or {})
    renamed = {c: names.get(c, c) for c in _header(path)}
    if len(set(renamed.values())) < len(renamed):
        raise InvalidInput("Two columns map to the same field: check --map.")
    fields = set(renamed.values())
    missing = [f for f in REQUIRED if f not in fields]
    if "unit_price" not in fields and "line_total" not in fields:
        missing.append("unit_price or line_total")
    if missing:
        raise InvalidInput(
            f"{path.name} has no column for {', '.join(missing)}: name them in the header "
            "or map them with --map COLUMN=FIELD."
        )
    # Only the columns of a field are converted, and all as text (a SKU like 00123 keeps
    # its zeros); types come after.
    wanted = [column for column, name in renamed.items() if name in FIELDS]
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(wanted, pa.string()),
                include_columns=wanted,
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"Cannot read {path.name} as CSV: {exc}") from None
    table = table.rename_columns([renamed[c] for c in table.column_names])
    # Trimmed in Arrow (vectorised), blanks as nulls: pandas' string methods are loops.
    trimmed = [pc.utf8_trim_whitespace(column) for column in table.columns]
    blanks = [pc.if_else(pc.equal(c, ""), pa.scalar(None, pa.string()), c) for c in trimmed]
    frame = pa.table(blanks, names=table.column_names).to_pandas()
    frame.insert(0, "row", np.arange(2, len(frame) + 2))
    return frame


def import_transactions(
    session: Session,
    now: datetime,
    frame: pd.DataFrame,
    source: str = DEFAULT_SOURCE,
    keep_good_rows: bool = False,
    warehouse: str | None = None,
) -> TransactionsReport:
    """Load the rows of `read_transactions` as past orders (see the module docstring).
    All-or-nothing unless `keep_good_rows`. Web sales leave from `warehouse` (a code;
    default: the first warehouse of the network)."""
    with collector_paused():
        return _import(session, now, frame, source, keep_good_rows, warehouse)


def _import(
    session: Session,
    now: datetime,
    frame: pd.DataFrame,
    source: str,
    keep_good_rows: bool,
    warehouse: str | None,
) -> TransactionsReport:
    report = TransactionsReport(rows=len(frame))
    errors: list[pd.DataFrame] = []
    lines = _parse(frame, errors)
    lines = _resolve_stores(session, lines, errors)
    sales = _with_returns(lines, errors)
    bad = pd.concat(errors) if errors else pd.DataFrame(columns=["row", "column", "message"])
    bad = bad.sort_values("row", kind="stable")
    report.errors = [RowError(int(r), c, m) for r, c, m in bad.itertuples(index=False)]
    report.rejected_rows = int(bad["row"].nunique())
    if report.errors and not keep_good_rows:
        raise ImportRejected(report.errors, report.rows)
    # An invoice with a bad row is kept out whole: half an order is worse than none.
    if not bad.empty:
        sales = _rows(sales, ~sales["invoice"].isin(_invoices_of(frame, bad)).to_numpy())
    if sales.empty:
        return report
    first = ~sales["sku"].duplicated()  # the first description of each SKU names it
    names = dict(zip(sales["sku"][first], sales["description"][first].fillna(""), strict=True))
    report.new_products = catalog.add_imported_products(session, now, names)
    sales, report.new_customers = _resolve_customers(session, now, sales)
    past_orders, past_lines = _frames(session, sales, source, warehouse)
    report.orders = orders.load_history_frames(session, past_orders, past_lines)
    report.lines = len(past_lines)
    report.returns = int((past_lines["returned"] > 0).sum())
    return report


# ------------------------------------------------------------------ parsing in columns


def _header(path: Path) -> list[str]:
    """The names of the file's columns (none for an empty or unreadable file)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as stream:
            return next(csv.reader(stream), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"Cannot read {path.name} as CSV: {exc}") from None


def _reject(
    errors: list[pd.DataFrame], frame: pd.DataFrame, bad: pd.Series, column: str, message: Any
) -> None:
    """Report the rows of `frame` where `bad` holds (`message`: one text, or one per bad
    row, aligned on the frame's index)."""
    if bad.any():
        rows = frame.loc[bad, "row"]
        if isinstance(message, pd.Series):
            message = message[bad]
        errors.append(pd.DataFrame({"row": rows.to_numpy(), "column": column, "message": message}))


def _parse(frame: pd.DataFrame, errors: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.DataFrame({"row": frame["row"]})
    ok = pd.Series(True, index=frame.index)
    for name, longest in (("invoice", MAX_INVOICE), ("sku", 64)):
        length = _lengths(frame[name])  # 0 when missing or blank
        _reject(errors, frame, length == 0, name, "is required")
        too_long = length > longest
        _reject(errors, frame, too_long, name, f"is longer than {longest} characters")
        out[name] = frame[name]
        ok &= (length > 0) & ~too_long
    if "customer" in frame:
        long_number = _lengths(frame["customer"]) > MAX_CUSTOMER_NUMBER
        message = f"is longer than {MAX_CUSTOMER_NUMBER} characters"
        _reject(errors, frame, long_number, "customer", message)
        ok &= ~long_number
    quantity = _numbers(frame["quantity"])
    bad_q = quantity.isna() | (quantity != quantity.round()) | (quantity == 0)
    bad_q |= quantity.abs() > MAX_QUANTITY
    _reject(errors, frame, bad_q, "quantity", "must be a non-zero whole number")
    ok &= ~bad_q
    out["quantity"] = quantity.fillna(0).astype(np.int64)
    out["amount"], out["unit"] = _money(frame, out["quantity"], errors)
    ok &= out["amount"].notna()
    dates = pd.to_datetime(frame["date"], errors="coerce", utc=True, format="ISO8601")
    _reject(errors, frame, dates.isna(), "date", "is not a date (ISO 8601)")
    ok &= dates.notna()
    out["placed_at"] = dates
    out["description"] = frame.get("description", pd.Series(None, index=frame.index))
    for name in ("customer", "store", "country", "channel"):
        out[name] = frame[name] if name in frame else pd.Series(None, index=frame.index)
    default = pd.Series(np.where(out["store"].notna(), "store", "web"), index=frame.index)
    channel = out["channel"].where(out["channel"].notna(), default)
    bad_c = ~channel.isin(orders.ORDER_CHANNELS)
    _reject(errors, frame, bad_c, "channel", f"must be one of {', '.join(orders.ORDER_CHANNELS)}")
    out["channel"] = channel
    return _rows(out, (ok & ~bad_c).to_numpy())


def _lengths(text: pd.Series) -> pd.Series:
    """The characters of each text, 0 for a missing one (in Arrow: pandas' `.str.len()`
    is a Python loop, seven times slower)."""
    lengths = pc.utf8_length(pa.array(text, pa.string(), from_pandas=True)).fill_null(0)
    return pd.Series(lengths.to_numpy(), index=text.index)


def _numbers(text: pd.Series) -> pd.Series:
    """Text as numbers, NaN where a value is not one. Arrow's cast is five times faster
    than pandas' but refuses a whole column for one bad value: pandas then judges each."""
    try:
        numbers = pc.cast(pa.array(text, pa.string(), from_pandas=True), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.to_numeric(text, errors="coerce")
    return pd.Series(numbers.to_numpy(zero_copy_only=False), index=text.index)


def _money(
    frame: pd.DataFrame, quantity: pd.Series, errors: list[pd.DataFrame]
) -> tuple[pd.Series, pd.Series]:
    """Line amount and unit price in cents (both positive; the sign is in the quantity).
    From a line total, the unit price is rounded up and the difference is a discount."""
    given = "line_total" if "line_total" in frame.columns else "unit_price"
    value = _numbers(frame[given])
    bad = value.isna() | (value < 0) | (value > 1e9)
    _reject(errors, frame, bad, given, "must be an amount ≥ 0, e.g. 12.90")
    cents = (value.abs() * 100).round()
    units = quantity.abs().replace(0, 1)
    if given == "unit_price":
        amount, unit = cents * units, cents
    else:
        amount, unit = cents, np.ceil(cents / units)
    return amount.where(~bad), unit.where(~bad)


def _resolve_stores(
    session: Session, lines: pd.DataFrame, errors: list[pd.DataFrame]
) -> pd.DataFrame:
    codes, distinct = pd.factorize(lines["store"])
    ids = stores.store_ids_by_code(session, distinct.tolist())
    store_id = _by_code(codes, distinct, ids)
    unknown = pd.Series((codes >= 0) & pd.isna(store_id), index=lines.index)
    if unknown.any():
        named = "unknown store " + lines.loc[unknown, "store"].map(repr)
        _reject(errors, lines, unknown, "store", named + ": import the stores first")
    lines["store_id"] = store_id  # `lines` is this import's own frame (`_parse`)
    return _rows(lines, ~unknown.to_numpy())


def _rows(frame: pd.DataFrame, keep: Any) -> pd.DataFrame:
    """The rows of `frame` where `keep` (a boolean array) holds, as a frame of their own
    (`take`, not a boolean index: columns can then be added without pandas' copy
    warning, instead of through `assign`, which copies every column: 0.7 s for the
    1.5 million lines of the Complete Journey); `frame` itself when all are kept."""
    return frame if keep.all() else frame.take(np.flatnonzero(keep))


def _by_code(codes: Any, distinct: Any, found: Mapping[str, Any]) -> Any:
    """`found`'s value for each row (None when absent or missing), from `pd.factorize`'s
    codes and distinct values: pandas' `.map(dict)` and `.isin` hash every row again."""
    table = np.array([found.get(value) for value in distinct] + [None], dtype=object)
    return table[codes]  # a missing value's code, -1, takes the last entry


def _with_returns(lines: pd.DataFrame, errors: list[pd.DataFrame]) -> pd.DataFrame:
    """The sale lines, each with the units later returned (`returned`) by the return
    lines matched to it; returns matched to no sale are reported."""
    credit = pc.starts_with(pa.array(lines["invoice"], pa.string()), "C")  # not a Python loop
    is_return = (lines["quantity"] < 0) | credit.to_numpy(zero_copy_only=False)
    if not is_return.any():  # `lines` is this import's own frame (`_resolve_stores`)
        lines["returned"] = 0
        return lines
    sales, returns = lines[~is_return].copy(), lines[is_return].copy()
    sales["returned"] = 0
    returns["quantity"] = returns["quantity"].abs()
    if returns.empty:
        return sales
    # Each return goes to the latest earlier sale of its SKU to its customer.
    keyed = sales.reset_index(drop=True).assign(sale=lambda f: np.arange(len(f)))
    keyed = keyed[keyed["customer"].notna()].sort_values("placed_at")
    wanted = returns[returns["customer"].notna()].sort_values("placed_at")
    matched = pd.merge_asof(
        wanted, keyed[["placed_at", "customer", "sku", "sale"]],
        on="placed_at", by=["customer", "sku"], direction="backward",
    )  # fmt: skip
    orphan = returns["row"].isin(
        set(returns["row"]) - set(matched.loc[matched["sale"].notna(), "row"])
    )
    _reject(
        errors, returns, orphan, "quantity",
        "a return of a sale that is not in the file (same customer and SKU, earlier date)",
    )  # fmt: skip
    matched = matched[matched["sale"].notna()]
    sales = sales.reset_index(drop=True)
    back = matched.groupby("sale")["quantity"].sum()
    sales.loc[back.index.astype(int), "returned"] = back.to_numpy()
    return sales


def _invoices_of(frame: pd.DataFrame, bad: pd.DataFrame) -> set[str]:
    # The invoice column alone, by row number: `set_index` would copy every column.
    rows = pd.Series(frame["invoice"].to_numpy(), index=frame["row"].to_numpy())
    return set(rows.reindex(bad["row"].unique()).dropna().str.strip())


def _resolve_customers(
    session: Session, now: datetime, sales: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    codes, distinct = pd.factorize(sales["customer"])
    numbers = distinct.tolist()
    known = customers.customer_ids_by_number(session, numbers)
    new = [n for n in numbers if n not in known]
    if new:
        countries = sales.drop_duplicates("customer").set_index("customer")["country"]
        rows = []
        for number in new:
            row: dict[str, Any] = {"customer_number": number}
            country = countries.get(number)
            if isinstance(country, str) and len(country) == 2 and country.isalpha():
                row["country"] = country.upper()
            rows.append(row)
        ids = customers.add_customers(session, now, rows)
        known.update(zip(new, ids, strict=True))
    sales["customer_id"] = _by_code(codes, distinct, known)  # the import's own frame
    return sales, len(new)


def _frames(
    session: Session, sales: pd.DataFrame, source: str, warehouse: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    web_location = _warehouse(session, warehouse) if sales["store_id"].isna().any() else None
    heads = _heads(sales)
    heads["mode"] = np.where(heads["store_id"].notna(), "carry_out", "home_delivery")
    heads["location_id"] = heads["store_id"].where(heads["store_id"].notna(), web_location)
    past_orders = pd.DataFrame(
        {
            "source": source, "external_ref": heads["invoice"], "channel": heads["channel"],
            "mode": heads["mode"], "placed_at": heads["placed_at"],
            "location_id": heads["location_id"], "store_id": heads["store_id"],
            "customer_id": heads["customer_id"], "currency": "EUR",
        }
    )  # fmt: skip
    unit = sales["unit"].astype(np.int64)
    quantity = sales["quantity"].astype(np.int64)
    past_lines = pd.DataFrame(
        {
            "external_ref": sales["invoice"], "sku": sales["sku"],
            "name": sales["description"].fillna(sales["sku"]).str.slice(0, 300),
            "category": None, "quantity": quantity, "unit_price": unit,
            "discount": unit * quantity - sales["amount"].astype(np.int64),
            "vat_rate_bp": 2000, "returned": sales["returned"].astype(np.int64),
        }
    )  # fmt: skip
    return past_orders, past_lines


def _heads(sales: pd.DataFrame) -> pd.DataFrame:
    """One row per invoice: its earliest date and the first channel, store and customer
    its rows give (rows by date, file order within a date), invoices in order of their
    first row. In numpy on the invoices' codes: a sort and a group-by of the whole frame
    took four times as long."""
    codes, invoices = pd.factorize(sales["invoice"])
    order = np.argsort(sales["placed_at"].to_numpy(np.dtype("datetime64[ns]")), kind="stable")
    codes = codes[order]
    seen, first = np.unique(codes, return_index=True)
    appearance = np.argsort(first, kind="stable")  # the invoices in order of first row
    rows = order[first[appearance]]
    heads = pd.DataFrame(
        {
            "invoice": invoices[seen[appearance]],
            "placed_at": sales["placed_at"].iloc[rows].reset_index(drop=True),
        }
    )
    for name in ("channel", "store_id", "customer_id"):
        given = sales[name].notna().to_numpy()[order]
        values = np.full(len(invoices), None, dtype=object)
        at = np.flatnonzero(given)
        which, where = np.unique(codes[at], return_index=True)
        values[which] = sales[name].to_numpy(object)[order[at[where]]]
        heads[name] = values[seen[appearance]]
    return heads


def _warehouse(session: Session, code: str | None) -> Any:
    network = stores.all_locations(session)
    for location in network:
        if (code is None and location.kind == "warehouse") or location.code == code:
            return location.id
    where = f"the warehouse {code!r}" if code else "a warehouse"
    raise InvalidInput(f"Web sales need {where} to leave from: add it to the stores first.")
