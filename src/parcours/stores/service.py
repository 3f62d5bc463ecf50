"""Store network use cases."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours.core.db import bulk_insert
from parcours.core.errors import FieldError, InvalidInput, NotFound
from parcours.core.geo import GeoPoint
from parcours.core.ids import new_id
from parcours.core.pagination import Page, paginate
from parcours.stores.models import Store

SERVICES = (
    "click_and_collect",
    "reserve_in_store",
    "drive",
    "ship_from_store",
    "returns",
    "after_sales",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def validate_store(row: dict[str, Any]) -> list[FieldError]:
    """Every problem with one store record, as pointers into it (empty when valid)."""
    errors = []
    for name in ("code", "name", "address", "postcode", "city"):
        if not str(row.get(name) or "").strip():
            errors.append(FieldError("is required", pointer=f"#/{name}"))
    try:
        GeoPoint(float(row.get("lat", "nan")), float(row.get("lon", "nan")))
    except (TypeError, ValueError) as exc:
        errors.append(FieldError(str(exc), pointer="#/lat"))
    try:
        ZoneInfo(str(row.get("timezone", "Europe/Paris")))
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(FieldError("unknown IANA time zone", pointer="#/timezone"))
    for service in row.get("services", []):
        if service not in SERVICES:
            errors.append(FieldError(f"unknown service {service!r}", pointer="#/services"))
    for day in row.get("opening_hours", {}):
        if day not in WEEKDAYS:
            errors.append(FieldError(f"unknown weekday {day!r}", pointer="#/opening_hours"))
    return errors


def add_stores(session: Session, now: datetime, rows: Iterable[dict[str, Any]]) -> int:
    """Insert many stores in one statement; all-or-nothing on invalid rows."""
    prepared = []
    for index, row in enumerate(rows):
        errors = validate_store(row)
        if errors:
            raise InvalidInput(f"store #{index} ({row.get('code')!r}) is invalid", errors)
        prepared.append({"id": new_id(), "created_at": now, "active": True, **row})
    if prepared:
        session.execute(bulk_insert(Store), prepared)
    return len(prepared)


def count_stores(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Store)) or 0


def list_stores(session: Session, cursor: str | None = None, limit: int = 50) -> Page[Store]:
    return paginate(session, select(Store), Store.id, cursor, limit)


def get_store_by_code(session: Session, code: str) -> Store:
    store = session.scalar(select(Store).where(Store.code == code))
    if store is None:
        raise NotFound(f"No store or warehouse has the code {code!r}.")
    return store


def store_ids_by_code(session: Session, codes: Iterable[str]) -> dict[str, uuid.UUID]:
    """Ids of the given store codes (unknown codes are absent from the answer)."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = session.execute(select(Store.code, Store.id).where(Store.code.in_(wanted)))
    return dict(rows.tuples())


def get_store(session: Session, store_id: uuid.UUID) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound(f"No store has the id {store_id}.")
    return store
