"""The store locator: the stores nearest a point, a postcode or a city.

The nearest stores come from the in-memory spatial index of `parcours.stores.spatial`
(exact great-circle ranking, rebuilt when the store network changes); the winners'
details, exceptional hours and, for a SKU, their stock then come in one query each.
`bench/store_locator.py` measures it against a brute-force scan.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from parcours.core.errors import FieldError, InvalidInput, Refused, refusal
from parcours.core.geo import GeoPoint
from parcours.stores.hours import OpeningSchedule, closes_at, is_open, next_opening
from parcours.stores.models import Store
from parcours.stores.places import city_for_postcode, city_named
from parcours.stores.service import SERVICES, exception_hours
from parcours.stores.spatial import StoreHit, store_index

StockLookup = Callable[[Session, str, Sequence[uuid.UUID]], dict[uuid.UUID, int]]

MAX_LIMIT = 50
# What the locator page can be refused besides placing the search (`places.MESSAGES`),
# as `message % values` for the page (see `core.errors.refusal`).
UNKNOWN_SERVICE = "Unknown service %(service)s; use one of %(choices)s."
UNKNOWN_SERVICE_FIELD = "unknown service"
MESSAGES = (UNKNOWN_SERVICE, UNKNOWN_SERVICE_FIELD)

_COLUMNS = (
    Store.id,
    Store.code,
    Store.name,
    Store.kind,
    Store.address,
    Store.postcode,
    Store.city,
    Store.lat,
    Store.lon,
    Store.timezone,
    Store.phone,
    Store.email,
    Store.opening_hours,
    Store.services,
)


_DETAILS_QUERY = select(*_COLUMNS).where(Store.code.in_(bindparam("codes", expanding=True)))


@dataclass(frozen=True)
class NearbyStore:
    """One locator answer; times are UTC instants (shown in `timezone` by callers)."""

    id: uuid.UUID
    code: str
    name: str
    kind: str
    address: str
    postcode: str
    city: str
    lat: float
    lon: float
    timezone: str
    phone: str | None
    email: str | None
    opening_hours: dict[str, list[list[str]]]
    services: list[str]
    distance_km: float
    open_now: bool
    closes_at: datetime | None
    next_opening: datetime | None
    stock: int | None = None


def resolve_place(
    lat: float | None = None,
    lon: float | None = None,
    postcode: str | None = None,
    city: str | None = None,
) -> GeoPoint:
    """The point to search around: coordinates, else a postcode, else a city name."""
    if lat is not None and lon is not None:
        if postcode or city:
            raise InvalidInput(
                "Give coordinates, a postcode or a city, not several.",
                [FieldError("give only one place", parameter="postcode" if postcode else "city")],
            )
        try:
            return GeoPoint(lat, lon)
        except ValueError as exc:
            raise InvalidInput(str(exc), [FieldError(str(exc), parameter="lat")]) from None
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise InvalidInput(
            "Coordinates need both lat and lon.", [FieldError("is required", parameter=missing)]
        )
    if postcode and city:
        raise InvalidInput(
            "Give a postcode or a city, not both.", [FieldError("give only one", parameter="city")]
        )
    if postcode:
        return city_for_postcode(postcode).point
    if city:
        return city_named(city).point
    raise InvalidInput(
        "Say where to search: lat and lon, a postcode or a city.",
        [FieldError("is required", parameter="postcode")],
    )


def nearest_store_rows(
    session: Session, centre: GeoPoint, limit: int = 5, service: str | None = None
) -> list[tuple[float, StoreHit]]:
    """The `limit` nearest active stores (offering `service`) as (km, hit), nearest first."""
    if service is not None and service not in SERVICES:
        raise Refused.of(
            UNKNOWN_SERVICE,
            [refusal(UNKNOWN_SERVICE_FIELD, parameter="service")],
            service=repr(service),
            choices=", ".join(SERVICES),
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}.",
            [FieldError(f"must be between 1 and {MAX_LIMIT}", parameter="limit")],
        )
    return store_index(session).nearest(centre, limit, service)


def nearest_stores(
    session: Session,
    centre: GeoPoint,
    now: datetime,
    limit: int = 5,
    service: str | None = None,
    sku: str | None = None,
    stock_lookup: StockLookup | None = None,
) -> list[NearbyStore]:
    """The nearest stores with distance, opening state and, for a SKU, the stock there.

    `now` is UTC; the stock of `sku` comes from `stock_lookup` (the inventory context's
    available-by-location, injected so the stores context does not depend on it).
    """
    found = nearest_store_rows(session, centre, limit, service)
    codes = [row.code for _, row in found]
    details = {
        row.code: row for row in session.connection().execute(_DETAILS_QUERY, {"codes": codes})
    }
    ids = [details[code].id for code in codes]
    exceptions = exception_hours(session, ids, now.date() - timedelta(days=1))
    stock: dict[uuid.UUID, int] | None = None
    if sku:
        if stock_lookup is None:
            raise InvalidInput(
                "Stock by store is not available here.",
                [FieldError("unsupported", parameter="sku")],
            )
        stock = stock_lookup(session, sku, ids) if ids else {}
    return [_answer(distance, details[row.code], exceptions, now, stock) for distance, row in found]


def _answer(
    distance: float,
    r: Row[Any],
    exceptions: dict[uuid.UUID, dict[date, list[list[str]]]],
    now: datetime,
    stock: dict[uuid.UUID, int] | None,
) -> NearbyStore:
    schedule = OpeningSchedule.build(r.timezone, r.opening_hours, exceptions.get(r.id))
    return NearbyStore(
        id=r.id,
        code=r.code,
        name=r.name,
        kind=r.kind,
        address=r.address,
        postcode=r.postcode,
        city=r.city,
        lat=r.lat,
        lon=r.lon,
        timezone=r.timezone,
        phone=r.phone,
        email=r.email,
        opening_hours=r.opening_hours,
        services=r.services,
        distance_km=round(distance, 3),
        open_now=is_open(schedule, now),
        closes_at=closes_at(schedule, now),
        next_opening=next_opening(schedule, now),
        stock=None if stock is None else stock.get(r.id, 0),
    )
