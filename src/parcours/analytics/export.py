"""`parcours export parquet DIR`: the facts as Parquet files for DuckDB and Spark.

Layout: one folder per fact (`DIR/orders/`, `DIR/sales_lines/`, …) of Parquet files,
and `DIR/manifest.json`, which records what was exported. A later run is incremental:

- events are append-only: only those logged after the last exported `seq` are written,
  as a new file `events/seq-<first>-<last>.parquet`;
- orders and sales lines change after the sale (status, returns, refunds) and history
  imports add back-dated ones: they are written one file per month of `placed_at`; the
  manifest keeps each month's signature (order count, latest `updated_at`) and a run
  rewrites the months whose signature moved;
- customers and footfall are small and rewritten whole.

An event's `profile` is the one resolved when it was exported: after identity merges,
`--full` re-exports everything with today's resolution.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from parcours import customers, orders
from parcours.analytics.facts import FACT_COLUMNS, footfall_facts
from parcours.core.db import Database

MANIFEST = "manifest.json"
_ARROW = {
    "string": pa.string(),
    "int64": pa.int64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us"),
}


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote: rows per fact, the files rewritten, whether it was full."""

    rows: dict[str, int]
    files: int
    full: bool


def arrow_schema(name: str) -> pa.Schema:
    return pa.schema([(c, _ARROW[t]) for c, t in FACT_COLUMNS[name].items()])


def _naive_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _write(session: Session, stmt: Select[Any], name: str, path: Path) -> int:
    """Run a fact select and write its rows to one Parquet file; the row count."""
    columns = list(FACT_COLUMNS[name])
    result = session.execute(stmt)
    keys = list(result.keys())
    data: dict[str, list[Any]] = {c: [] for c in columns}
    for row in result:
        values = dict(zip(keys, row, strict=True))
        for c in columns:
            data[c].append(_naive_utc(values[c]))
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(data, schema=arrow_schema(name))
    pq.write_table(table, path)
    return int(table.num_rows)


def _months(start: datetime, end: datetime) -> Iterable[tuple[datetime, datetime]]:
    month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while month < end:
        following = (month + timedelta(days=32)).replace(day=1)
        yield month, following
        month = following


def _month_file(folder: Path, month: datetime) -> Path:
    return folder / f"month-{month:%Y-%m}.parquet"


def _month_key(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def month_signatures(session: Session, dialect: str) -> dict[str, list[Any]]:
    """Per month of `placed_at` ("2026-03"): [orders, latest updated_at] — a month whose
    signature moved has new, back-dated or changed orders."""
    facts = orders.order_facts(dialect).subquery("signed")
    month = _month_key(facts.c.placed_at, dialect)
    rows = session.execute(
        select(month, func.count(), func.max(facts.c.updated_at)).group_by(month)
    )
    return {key: [count, str(_naive_utc(latest))] for key, count, latest in rows}


def _changed_months(
    signatures: dict[str, list[Any]], previous: dict[str, list[Any]]
) -> list[datetime]:
    """First days (UTC) of the months whose signature differs from the last export's."""
    return [
        datetime.strptime(key, "%Y-%m").replace(tzinfo=UTC)
        for key, signature in sorted(signatures.items())
        if previous.get(key) != signature
    ]


def _export_orders(
    session: Session, dialect: str, directory: Path, months: list[datetime]
) -> tuple[dict[str, int], int]:
    rows = {"orders": 0, "sales_lines": 0}
    files = 0
    for month in months:
        _, following = next(iter(_months(month, month + timedelta(days=1))))
        period = (month, following)
        rows["orders"] += _write(
            session,
            orders.order_facts(dialect, placed=period),
            "orders",
            _month_file(directory / "orders", month),
        )
        rows["sales_lines"] += _write(
            session,
            orders.sales_line_facts(dialect, placed=period),
            "sales_lines",
            _month_file(directory / "sales_lines", month),
        )
        files += 2
    return rows, files


def _export_events(
    session: Session, dialect: str, directory: Path, after: int
) -> tuple[int, int, int]:
    """New events as one file; (rows, files, last seq)."""
    stmt = customers.event_facts(dialect, after_seq=after).subquery("new_events")
    last = session.execute(select(func.max(stmt.c.seq))).scalar_one_or_none()
    if last is None:
        return 0, 0, after
    path = directory / "events" / f"seq-{after + 1:012d}-{last:012d}.parquet"
    bounded = customers.event_facts(dialect, after_seq=after, up_to_seq=last)
    count = _write(session, bounded, "events", path)
    return count, 1, last


def _empty_files(directory: Path) -> int:
    """An empty file with the schema for each fact that has none yet (engines read them)."""
    written = 0
    for name in FACT_COLUMNS:
        folder = directory / name
        if not folder.is_dir() or not any(folder.glob("*.parquet")):
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(arrow_schema(name).empty_table(), folder / "empty.parquet")
            written += 1
    return written


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    if not path.exists():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def export_parquet(
    database: Database, directory: Path, *, now: datetime, full: bool = False
) -> ExportResult:
    """Export the facts to `directory` (incremental unless `full` or first time)."""
    manifest = None if full else _read_manifest(directory)
    if manifest is None and directory.exists():
        for name in FACT_COLUMNS:
            shutil.rmtree(directory / name, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    previous: dict[str, list[Any]] = {} if manifest is None else manifest["months"]
    after = 0 if manifest is None else int(manifest["events_seq"])
    dialect = database.dialect
    with database.sessions() as session:
        signatures = month_signatures(session, dialect)
        months = _changed_months(signatures, previous)
        rows, files = _export_orders(session, dialect, directory, months)
        rows["events"], event_files, last_seq = _export_events(session, dialect, directory, after)
        rows["customers"] = _write(
            session,
            customers.customer_facts(dialect),
            "customers",
            directory / "customers" / "all.parquet",
        )
        rows["footfall"] = _write(
            session, footfall_facts(dialect), "footfall", directory / "footfall" / "all.parquet"
        )
    _drop_empty_placeholders(directory)
    files += event_files + 2 + _empty_files(directory)
    record = {
        "version": 1,
        "exported_at": now.isoformat(),
        "events_seq": last_seq,
        "months": signatures,
        "rows": rows,
    }
    (directory / MANIFEST).write_text(json.dumps(record, indent=2))
    return ExportResult(rows, files, manifest is None)


def _drop_empty_placeholders(directory: Path) -> None:
    for name in FACT_COLUMNS:
        placeholder = directory / name / "empty.parquet"
        others = [p for p in (directory / name).glob("*.parquet") if p != placeholder]
        if placeholder.exists() and others:
            placeholder.unlink()


def exported_rows(directory: Path) -> dict[str, int]:
    """Rows per fact now in an export directory."""
    counts: dict[str, int] = {}
    for name in FACT_COLUMNS:
        files: Sequence[Path] = sorted((directory / name).glob("*.parquet"))
        counts[name] = sum(pq.read_metadata(p).num_rows for p in files)
    return counts
