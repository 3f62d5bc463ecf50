"""Importing a store network from a CSV or JSON file.

CSV columns: code, name, kind (store|warehouse), address, postcode, city, country, lat,
lon, timezone, phone, email, services (separated by `|`), and one column per weekday
(mon … sun) holding ranges such as `09:30-12:30, 14:00-19:00` (empty: closed). JSON: an
array of objects shaped like the API's store, with `opening_hours` as
`{"mon": [["09:30", "19:00"]], …}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.imports import ImportRejected, RowError
from parcours.stores.hours import WEEKDAYS, parse_hours_text
from parcours.stores.service import EDITABLE, add_stores, store_ids_by_code, validate_store


@dataclass
class StoreImportReport:
    rows: int = 0
    created: int = 0
    errors: list[RowError] = field(default_factory=list)


def _from_csv(raw: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    row: dict[str, Any] = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
    problems: list[tuple[str, str]] = []
    for name in ("lat", "lon"):
        try:
            row[name] = float(row.get(name) or "nan")
        except ValueError:
            problems.append((name, f"must be a number, not {raw.get(name)!r}"))
    row["services"] = [s.strip() for s in str(row.get("services") or "").split("|") if s.strip()]
    row["opening_hours"] = {
        day: parse_hours_text(str(row.pop(day))) for day in WEEKDAYS if str(row.get(day) or "")
    }
    for day in WEEKDAYS:
        row.pop(day, None)
    return row, problems


def _column(pointer: str | None) -> str:
    return (pointer or "#").removeprefix("#/").split("/", 1)[0] or "row"


def import_stores(
    session: Session,
    now: datetime,
    actor: Actor,
    rows: Iterable[tuple[int, dict[str, Any]]],
    fmt: str,
    keep_good_rows: bool = False,
) -> StoreImportReport:
    """Validate every row, then create the good stores in one bulk insert.

    All-or-nothing unless `keep_good_rows`: one bad row rejects the file.
    """
    report = StoreImportReport()
    good: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for number, raw in rows:
        report.rows += 1
        row, problems = _from_csv(raw) if fmt == "csv" else (dict(raw), [])
        values = {name: row[name] for name in EDITABLE if row.get(name) not in (None, "")}
        errors = [RowError(number, column, message) for column, message in problems]
        if not problems:
            errors += [
                RowError(number, _column(e.pointer), e.detail) for e in validate_store(values)
            ]
        code = str(values.get("code", ""))
        if code in seen:
            errors.append(RowError(number, "code", f"appears twice (first on row {seen[code]})"))
        seen.setdefault(code, number)
        report.errors += errors
        if not errors:
            good.append((number, values))
    taken = store_ids_by_code(session, [values["code"] for _, values in good])
    for number, values in good:
        if values["code"] in taken:
            report.errors.append(RowError(number, "code", "a store already has this code"))
    good = [(n, v) for n, v in good if v["code"] not in taken]
    if report.errors and not keep_good_rows:
        raise ImportRejected(report.errors, report.rows)
    report.created = add_stores(session, now, [values for _, values in good])
    if report.created:
        audit.record(session, now, actor, "store.import", "store", None, created=report.created)
    return report
