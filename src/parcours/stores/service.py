"""Store network use cases."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.db import bulk_insert
from parcours.core.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    Refused,
    SaidNotFound,
    refusal,
)
from parcours.core.geo import GeoPoint
from parcours.core.ids import new_id
from parcours.core.pagination import Page, paginate
from parcours.stores.hours import OpeningSchedule, validate_ranges, validate_weekly_hours
from parcours.stores.models import Store, StoreException
from parcours.stores.spatial import network_changed

SERVICES = (
    "click_and_collect",
    "reserve_in_store",
    "drive",
    "ship_from_store",
    "returns",
    "after_sales",
)
KINDS = ("store", "warehouse")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PHONE = re.compile(r"\+?[0-9 .()-]{6,20}")
EDITABLE = (
    "code",
    "name",
    "kind",
    "address",
    "postcode",
    "city",
    "country",
    "lat",
    "lon",
    "timezone",
    "phone",
    "email",
    "opening_hours",
    "services",
)

# What the store pages can be refused, as `message % values` for the console (see
# `core.errors.refusal`); the API says the same in English.
REQUIRED = "is required"
NOT_AN_EMAIL = "is not an email address"
NOT_A_PHONE = "is not a phone number"
UNKNOWN_SERVICE = "unknown service %(service)s; use any of %(choices)s"
NOT_A_DATE = "must be a date (YYYY-MM-DD)"
LABEL_TOO_LONG = "must hold at most 120 characters"
CHANGES_INVALID = "The changes to store %(code)s are invalid."
EXCEPTION_INVALID = "The exception for store %(code)s is invalid."
NO_SUCH_CODE = "No store or warehouse has the code %(code)s."
NO_EXCEPTION = "The store has no exception on %(day)s."
MESSAGES = (
    REQUIRED, NOT_AN_EMAIL, NOT_A_PHONE, UNKNOWN_SERVICE, NOT_A_DATE, LABEL_TOO_LONG,
    CHANGES_INVALID, EXCEPTION_INVALID, NO_SUCH_CODE, NO_EXCEPTION,
)  # fmt: skip


def validate_store(row: dict[str, Any]) -> list[FieldError]:
    """Every problem with one store record, as pointers into it (empty when valid)."""
    errors = []
    for name in ("code", "name", "address", "postcode", "city"):
        if not str(row.get(name) or "").strip():
            errors.append(refusal(REQUIRED, pointer=f"#/{name}"))
    try:
        GeoPoint(float(row.get("lat", "nan")), float(row.get("lon", "nan")))
    except (TypeError, ValueError) as exc:
        errors.append(FieldError(str(exc), pointer="#/lat"))
    try:
        ZoneInfo(str(row.get("timezone", "Europe/Paris")))
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(FieldError("unknown IANA time zone", pointer="#/timezone"))
    if row.get("kind", "store") not in KINDS:
        errors.append(FieldError("must be store or warehouse", pointer="#/kind"))
    if row.get("email") and not EMAIL.fullmatch(str(row["email"])):
        errors.append(refusal(NOT_AN_EMAIL, pointer="#/email"))
    if row.get("phone") and not PHONE.fullmatch(str(row["phone"])):
        errors.append(refusal(NOT_A_PHONE, pointer="#/phone"))
    services = row.get("services", [])
    if not isinstance(services, list):
        errors.append(FieldError("must be a list of services", pointer="#/services"))
        services = []
    for service in services:
        if service not in SERVICES:
            choices = ", ".join(SERVICES)
            errors.append(
                refusal(
                    UNKNOWN_SERVICE, pointer="#/services", service=repr(service), choices=choices
                )
            )
    errors.extend(validate_weekly_hours(row.get("opening_hours", {})))
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
        network_changed(session)
    return len(prepared)


def count_stores(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Store)) or 0


def list_stores(session: Session, cursor: str | None = None, limit: int = 50) -> Page[Store]:
    return paginate(session, select(Store), Store.id, cursor, limit)


def all_locations(session: Session) -> list[Store]:
    """Every store and warehouse, active or not, in one query (in the order `list_stores`
    pages them), for callers that must consider the whole network at once."""
    return list(session.scalars(select(Store).order_by(Store.id)))


def get_store_by_code(session: Session, code: str) -> Store:
    store = session.scalar(select(Store).where(Store.code == code))
    if store is None:
        raise SaidNotFound(NO_SUCH_CODE, code=repr(code))
    return store


def store_ids_by_code(session: Session, codes: Iterable[str]) -> dict[str, uuid.UUID]:
    """Ids of the given store codes (unknown codes are absent from the answer)."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = session.execute(select(Store.code, Store.id).where(Store.code.in_(wanted)))
    return dict(rows.all())


@dataclass(frozen=True)
class Location:
    """What other contexts need to name a stock location."""

    id: uuid.UUID
    code: str
    name: str
    kind: str  # store | warehouse
    active: bool


def locations(session: Session, location_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Location]:
    """Stores and warehouses by id, in one query (unknown ids are absent)."""
    wanted = set(location_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(Store.id, Store.code, Store.name, Store.kind, Store.active).where(
            Store.id.in_(wanted)
        )
    )
    return {row.id: Location(row.id, row.code, row.name, row.kind, row.active) for row in rows}


def get_store(session: Session, store_id: uuid.UUID) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound(f"No store has the id {store_id}.")
    return store


def _existing_code(session: Session, code: str, other_than: uuid.UUID | None = None) -> bool:
    query = select(Store.id).where(Store.code == code)
    if other_than is not None:
        query = query.where(Store.id != other_than)
    return session.scalar(query) is not None


def create_store(session: Session, now: datetime, actor: Actor, row: Mapping[str, Any]) -> Store:
    """Open one store or warehouse; its code must be new."""
    values = {name: row[name] for name in EDITABLE if name in row}
    errors = validate_store(values)
    if errors:
        raise InvalidInput(f"The store {values.get('code')!r} is invalid.", errors)
    if _existing_code(session, str(values["code"])):
        raise Conflict(f"A store or warehouse already has the code {values['code']!r}.")
    store = Store(id=new_id(), created_at=now, active=True, **values)
    session.add(store)
    session.flush()
    network_changed(session)
    audit.record(session, now, actor, "store.create", "store", str(store.id), code=store.code)
    return store


def update_store(
    session: Session, now: datetime, actor: Actor, store_id: uuid.UUID, changes: Mapping[str, Any]
) -> Store:
    """Change some fields of a store; the whole record is checked before anything changes."""
    store = get_store(session, store_id)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed: {', '.join(unknown)}.",
            [FieldError("cannot be changed", pointer=f"#/{name}") for name in unknown],
        )
    merged = {name: getattr(store, name) for name in EDITABLE} | dict(changes)
    errors = validate_store(merged)
    if errors:
        code = repr(store.code)
        raise Refused.of(CHANGES_INVALID, errors, code=code)
    if "code" in changes and _existing_code(session, str(changes["code"]), store.id):
        raise Conflict(f"Another store or warehouse already has the code {changes['code']!r}.")
    for name, value in changes.items():
        setattr(store, name, value)
    network_changed(session)
    audit.record(
        session, now, actor, "store.update", "store", str(store.id), fields=sorted(changes)
    )
    return store


def deactivate_store(session: Session, now: datetime, actor: Actor, store_id: uuid.UUID) -> Store:
    """Take a store out of the network (locator, lists of open stores); its history stays."""
    store = get_store(session, store_id)
    if store.active:
        store.active = False
        network_changed(session)
        audit.record(session, now, actor, "store.deactivate", "store", str(store.id))
    return store


def validate_exception(row: Mapping[str, Any], pointer: str = "#") -> list[FieldError]:
    """Problems with one dated exception: {"day", "closed", "hours", "label"}."""
    errors: list[FieldError] = []
    if not isinstance(row.get("day"), date):
        errors.append(refusal(NOT_A_DATE, pointer=f"{pointer}/day"))
    hours = row.get("hours") or []
    if row.get("closed", not hours):
        if hours:
            errors.append(
                FieldError(
                    "a closed day has no hours; drop them or set closed to false",
                    pointer=f"{pointer}/hours",
                )
            )
    elif not hours:
        errors.append(
            FieldError(
                "special hours need at least one range, or set closed to true",
                pointer=f"{pointer}/hours",
            )
        )
    else:
        day = row.get("day")
        named = day.isoformat() if isinstance(day, date) else "that day"
        errors.extend(validate_ranges(hours, f"{pointer}/hours", named))
    if len(str(row.get("label") or "")) > 120:
        errors.append(refusal(LABEL_TOO_LONG, pointer=f"{pointer}/label"))
    return errors


def set_exception(
    session: Session, now: datetime, actor: Actor, store_id: uuid.UUID, row: Mapping[str, Any]
) -> StoreException:
    """Declare (or replace) the exception of one local date: closed, or special hours."""
    store = get_store(session, store_id)
    errors = validate_exception(row)
    if errors:
        code = repr(store.code)
        raise Refused.of(EXCEPTION_INVALID, errors, code=code)
    hours = list(row.get("hours") or [])
    closed = bool(row.get("closed", not hours))
    exception = session.scalar(
        select(StoreException).where(
            StoreException.store_id == store.id, StoreException.day == row["day"]
        )
    )
    if exception is None:
        exception = StoreException(id=new_id(), store_id=store.id, day=row["day"])
        session.add(exception)
    exception.closed = closed
    exception.hours = [] if closed else [list(pair) for pair in hours]
    exception.label = str(row.get("label") or "")
    session.flush()
    audit.record(
        session, now, actor, "store.exception.set", "store", str(store.id), day=str(row["day"])
    )
    return exception


def remove_exception(
    session: Session, now: datetime, actor: Actor, store_id: uuid.UUID, day: date
) -> None:
    """Drop the exception of a date: the weekly hours apply again."""
    exception = session.scalar(
        select(StoreException).where(StoreException.store_id == store_id, StoreException.day == day)
    )
    if exception is None:
        raise SaidNotFound(NO_EXCEPTION, day=day.isoformat())
    session.delete(exception)
    audit.record(
        session, now, actor, "store.exception.remove", "store", str(store_id), day=str(day)
    )


def add_exceptions(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert many exceptions in one statement (imports, demo); all-or-nothing."""
    prepared = []
    for index, row in enumerate(rows):
        errors = validate_exception(row, f"#/{index}")
        if errors:
            raise InvalidInput(f"exception #{index} is invalid", errors)
        hours = [list(pair) for pair in row.get("hours") or []]
        prepared.append(
            {
                "id": row.get("id") or new_id(),
                "store_id": row["store_id"],
                "day": row["day"],
                "closed": not hours,
                "hours": hours,
                "label": str(row.get("label") or ""),
            }
        )
    if prepared:
        session.execute(bulk_insert(StoreException), prepared)
    return len(prepared)


def list_exceptions(
    session: Session, store_id: uuid.UUID, since: date | None = None
) -> list[StoreException]:
    """A store's exceptions by date, from `since` on when given."""
    query = select(StoreException).where(StoreException.store_id == store_id)
    if since is not None:
        query = query.where(StoreException.day >= since)
    return list(session.scalars(query.order_by(StoreException.day)))


# Built once: the store locator runs this on every search.
_EXCEPTIONS_QUERY = select(StoreException.store_id, StoreException.day, StoreException.hours).where(
    StoreException.store_id.in_(bindparam("store_ids", expanding=True)),
    StoreException.day >= bindparam("since"),
)


def exception_hours(
    session: Session, store_ids: Sequence[uuid.UUID], since: date
) -> dict[uuid.UUID, dict[date, list[list[str]]]]:
    """The exceptions from `since` on of many stores, in one query, by store then date."""
    found: dict[uuid.UUID, dict[date, list[list[str]]]] = {sid: {} for sid in store_ids}
    if not store_ids:
        return found
    rows = session.connection().execute(
        _EXCEPTIONS_QUERY, {"store_ids": list(store_ids), "since": since}
    )
    for store_id, day, hours in rows:
        found[store_id][day] = hours
    return found


def opening_schedule(session: Session, store: Store, now: datetime) -> OpeningSchedule:
    """The store's weekly hours and its exceptions from yesterday on (local dates)."""
    since = now.date() - timedelta(days=1)
    exceptions = exception_hours(session, [store.id], since)[store.id]
    return OpeningSchedule.build(store.timezone, store.opening_hours, exceptions)
