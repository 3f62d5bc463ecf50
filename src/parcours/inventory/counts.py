"""Stock counts from store files: count movements of the difference, and a reconciliation.

A count file is CSV (comma, semicolon or tab) with the columns `sku` and
`counted_quantity`, one row per SKU counted at one store. Each SKU gets a `count`
movement of `counted - expected`, where expected is the on-hand before the count.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.core.errors import FieldError, InvalidInput
from parcours.core.ids import new_id
from parcours.core.imports import RowError
from parcours.inventory.models import StockLevel
from parcours.inventory.service import (
    MAX_QUANTITY,
    NOT_IN_CATALOGUE,
    MovementInput,
    record_movements,
    unknown_skus,
)

REQUIRED_COLUMNS = ("sku", "counted_quantity")


@dataclass(frozen=True)
class CountedRow:
    line: int  # line number in the file (the header is line 1)
    sku: str
    counted: int


@dataclass(frozen=True)
class CountLine:
    """One reconciled SKU: what the ledger expected, what was counted, the difference."""

    sku: str
    expected: int
    counted: int

    @property
    def delta(self) -> int:
        return self.counted - self.expected


@dataclass
class CountReport:
    reference: str
    lines: list[CountLine] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False

    @property
    def movements(self) -> int:
        return sum(1 for line in self.lines if line.delta)


def parse_count_file(text: str) -> tuple[list[CountedRow], list[RowError]]:
    """Rows and per-row errors of a count file; a file without the columns is refused."""
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InvalidInput(
            f"The count file lacks the column(s) {', '.join(missing)}; its first line must "
            f"name the columns {', '.join(REQUIRED_COLUMNS)}.",
            [FieldError("missing column", parameter=c) for c in missing],
        )
    reader.fieldnames = columns
    rows: list[CountedRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for line, record in enumerate(reader, start=2):
        parsed = _parse_row(line, record, seen, errors)
        if parsed is not None:
            rows.append(parsed)
    return rows, errors


def _parse_row(
    line: int, record: dict[str, str | None], seen: dict[str, int], errors: list[RowError]
) -> CountedRow | None:
    sku = (record.get("sku") or "").strip()
    raw = (record.get("counted_quantity") or "").strip()
    found = len(errors)
    if not sku or len(sku) > 64:
        errors.append(RowError(line, "sku", "must hold 1 to 64 characters"))
    elif sku in seen:
        errors.append(RowError(line, "sku", f"counted twice (first on line {seen[sku]})"))
    if not raw.isdigit() or int(raw) > MAX_QUANTITY:
        errors.append(
            RowError(line, "counted_quantity", f"must be a whole number from 0, not {raw!r}")
        )
    if len(errors) > found:
        return None
    seen[sku] = line
    return CountedRow(line, sku, int(raw))


def expected_on_hand(
    session: Session, location_id: uuid.UUID, skus: Iterable[str]
) -> dict[str, int]:
    """On-hand per SKU at a location, locked until commit on PostgreSQL (SQLite's
    write lock already covers the transaction)."""
    wanted = sorted(set(skus))
    out = dict.fromkeys(wanted, 0)
    for start in range(0, len(wanted), 500):
        stmt = select(StockLevel.sku, StockLevel.on_hand).where(
            StockLevel.location_id == location_id, StockLevel.sku.in_(wanted[start : start + 500])
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        out.update((sku, on_hand) for sku, on_hand in session.execute(stmt))
    return out


def import_count(
    session: Session,
    now: datetime,
    location_id: uuid.UUID,
    rows: list[CountedRow],
    errors: list[RowError],
    keep_good_rows: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CountReport:
    """Record the count: nothing when any row is bad (unless `keep_good_rows`).

    A SKU the catalogue never declared is a bad row (one query checks them all).
    """
    report = CountReport(reference=f"count-{new_id()}", errors=list(errors))
    unknown = unknown_skus(session, (r.sku for r in rows))
    if unknown:
        report.errors += [
            RowError(r.line, "sku", NOT_IN_CATALOGUE.format(sku=r.sku))
            for r in rows
            if r.sku in unknown
        ]
        report.errors.sort(key=lambda e: e.row)
        rows = [r for r in rows if r.sku not in unknown]
    if report.errors and not keep_good_rows:
        return report
    expected = expected_on_hand(session, location_id, (r.sku for r in rows))
    report.lines = [CountLine(r.sku, expected[r.sku], r.counted) for r in rows]
    movements = [
        MovementInput(
            line.sku,
            location_id,
            "count",
            line.delta,
            reason="stock count",
            reference=report.reference,
            occurred_at=now,
        )
        for line in report.lines
        if line.delta
    ]
    batch = 1000
    for start in range(0, len(movements), batch):
        record_movements(session, now, movements[start : start + batch], skus_checked=True)
        if progress:
            progress(min(start + batch, len(movements)), len(movements))
    report.applied = True
    return report
