"""Store footfall: visitors counted at the door, per store and hour.

Door counters report through the API (`POST /v1/analytics/footfall`) or a CSV export
(`parcours analytics import-footfall FILE.csv`, columns `store,hour,visitors`). Hours are
UTC starts of hours; a count for a store and hour already stored replaces it (an upsert),
so the same export can be imported again. Store codes are resolved through the stores
facade; an unknown code is a row error, never a silent drop.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from parcours import stores
from parcours.analytics.footfall_count import FootfallCount
from parcours.analytics.models import Footfall
from parcours.core import imports
from parcours.core.errors import FieldError, InvalidInput
from parcours.core.imports import ImportRejected, RowError

COLUMNS = ("store", "hour", "visitors")
SOURCES = ("api", "csv", "demo")
MAX_VISITORS = 1_000_000  # per store and hour: more is a counter fault, not a crowd
CHUNK = 5_000


@dataclass
class FootfallReport:
    """What an import did: rows read, counts stored (new or replaced), rows refused."""

    rows: int = 0
    stored: int = 0
    rejected_rows: int = 0
    errors: list[RowError] = field(default_factory=list)


def parse_hour(value: Any) -> datetime:
    """The UTC start of an hour from an ISO 8601 text or an aware datetime; a time
    without a zone, or not on the hour, is refused (ValueError says why)."""
    if isinstance(value, datetime):
        at = value
    else:
        text = str(value or "").strip().replace("Z", "+00:00")
        if not text:
            raise ValueError("is required")
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-03-14T10:00:00Z or +01:00")
    at = at.astimezone(UTC)
    if (at.minute, at.second, at.microsecond) != (0, 0, 0):
        raise ValueError("must be the start of an hour (minutes and seconds at 0)")
    return at


def parse_visitors(value: Any) -> int:
    """A count of visitors: a whole number from 0 to MAX_VISITORS."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    try:
        visitors = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if not 0 <= visitors <= MAX_VISITORS:
        raise ValueError(f"must be between 0 and {MAX_VISITORS}")
    return visitors


def record_footfall(
    session: Session, now: datetime, counts: Sequence[FootfallCount], source: str = "api"
) -> int:
    """Store visitor counts (all-or-nothing): each (store, hour) is inserted or replaces
    the count already there. Returns how many counts were written."""
    if source not in SOURCES:
        raise ValueError(f"unknown footfall source {source!r}")
    errors: list[FieldError] = []
    checked: list[FootfallCount] = []
    for index, count in enumerate(counts):
        try:
            checked.append(
                FootfallCount(count.store, parse_hour(count.hour), parse_visitors(count.visitors))
            )
        except ValueError as exc:
            errors.append(FieldError(str(exc), pointer=f"#/{index}"))
    ids = stores.store_ids_by_code(session, {c.store for c in counts})
    errors += [
        FieldError(f"unknown store {count.store!r}", pointer=f"#/{index}/store")
        for index, count in enumerate(counts)
        if count.store not in ids
    ]
    if errors:
        raise InvalidInput("Some footfall counts are invalid; none was stored.", errors)
    return _upsert(session, now, [(ids[c.store], c.hour, c.visitors) for c in checked], source)


def import_footfall(
    session: Session, now: datetime, stream: IO[str], keep_good_rows: bool = False
) -> FootfallReport:
    """Import a CSV of `store,hour,visitors` rows (see the module docstring). A bad row
    rejects the file (`ImportRejected`) unless `keep_good_rows`, which stores the good
    rows and reports the others."""
    report = FootfallReport()
    parsed: list[tuple[int, str, datetime, int]] = []
    for number, row in imports.read_rows(stream, "csv"):
        report.rows += 1
        problems = _row_problems(number, row)
        if problems:
            report.errors += problems
            continue
        hour, visitors = parse_hour(row["hour"]), parse_visitors(row["visitors"])
        parsed.append((number, str(row["store"]).strip(), hour, visitors))
    ids = stores.store_ids_by_code(session, {store for _, store, _, _ in parsed})
    good: dict[tuple[uuid.UUID, datetime], int] = {}
    for number, store, hour, visitors in parsed:
        if store not in ids:
            report.errors.append(RowError(number, "store", f"unknown store {store!r}"))
            continue
        good[(ids[store], hour)] = visitors  # the last row for a store and hour wins
    report.rejected_rows = len({e.row for e in report.errors})
    if report.errors and not keep_good_rows:
        raise ImportRejected(report.errors, report.rows)
    report.stored = _upsert(session, now, [(s, h, v) for (s, h), v in good.items()], "csv")
    return report


def footfall_of(
    session: Session, store: str, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """(hour, visitors) of one store from `start` (included) to `end` (excluded), UTC."""
    ids = stores.store_ids_by_code(session, [store])
    if store not in ids:
        raise InvalidInput(f"unknown store {store!r}", [FieldError("unknown", parameter="store")])
    rows = session.execute(
        select(Footfall.hour_start, Footfall.visitors)
        .where(Footfall.store_id == ids[store])
        .where(Footfall.hour_start >= start, Footfall.hour_start < end)
        .order_by(Footfall.hour_start)
    )
    return [(hour, visitors) for hour, visitors in rows]


def _row_problems(number: int, row: dict[str, Any]) -> list[RowError]:
    problems = []
    if not str(row.get("store") or "").strip():
        problems.append(RowError(number, "store", "is required"))
    for column, parse in (("hour", parse_hour), ("visitors", parse_visitors)):
        try:
            parse(row.get(column))
        except ValueError as exc:
            problems.append(RowError(number, column, str(exc)))
    return problems


def _upsert(
    session: Session,
    now: datetime,
    counts: Iterable[tuple[uuid.UUID, datetime, int]],
    source: str,
) -> int:
    rows = [
        {"store_id": s, "hour_start": h, "visitors": v, "source": source, "updated_at": now}
        for s, h, v in counts
    ]
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    for start in range(0, len(rows), CHUNK):
        stmt = insert(Footfall)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Footfall.store_id, Footfall.hour_start],
            set_={
                "visitors": stmt.excluded.visitors,
                "source": stmt.excluded.source,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        session.execute(stmt, rows[start : start + CHUNK])
    return len(rows)
