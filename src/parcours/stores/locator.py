"""The store locator: the stores nearest a point, a postcode or a city.

Spatial index: a bounding box is a range scan on the `(lat, lon)` B-tree index, which
both SQLite and PostgreSQL serve without extensions. The search starts with a 1 km
radius and widens it, guided by how many stores the last box held, until the box holds
`limit` matching stores; the farthest of the `limit` nearest among them bounds the
answer, so at most one more box of that radius makes it exact (every store closer than
a radius lies in its box). Only codes and coordinates are read while searching; the
winners' details come in one primary-key query. Distances are great-circle (haversine).
`bench/store_locator.py` measures it against a brute-force scan.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.orm import Session

from parcours.core.errors import FieldError, InvalidInput
from parcours.core.geo import EARTH_RADIUS_KM, GeoPoint, bounding_box
from parcours.stores.hours import OpeningSchedule, closes_at, is_open, next_opening
from parcours.stores.models import Store
from parcours.stores.places import city_for_postcode, city_named
from parcours.stores.service import SERVICES, exception_hours

StockLookup = Callable[[Session, str, Sequence[uuid.UUID]], dict[uuid.UUID, int]]

FIRST_RADIUS_KM = 1.0
WHOLE_EARTH_KM = 20_100.0  # half the circumference: a box this wide holds every store
MAX_LIMIT = 50

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


def _box_query(with_services: bool, with_longitude: bool) -> Select[Any]:
    columns: list[Any] = [Store.code, Store.lat, Store.lon]
    if with_services:
        columns.append(Store.services)
    query = select(*columns).where(
        Store.lat.between(bindparam("min_lat"), bindparam("max_lat")),
        Store.active.is_(True),
        Store.kind == "store",
    )
    if with_longitude:
        query = query.where(Store.lon.between(bindparam("min_lon"), bindparam("max_lon")))
    return query


# Built once: constructing a statement costs more than SQLite takes to run it. Only the
# few columns the ranking needs are read (wide rows with JSON hours cost more to decode).
_BOX_QUERIES = {
    (services, longitude): _box_query(services, longitude)
    for services in (False, True)
    for longitude in (False, True)
}


def _candidates(
    session: Session, centre: GeoPoint, radius_km: float, service: str | None
) -> list[tuple[float, Row[Any]]]:
    """(distance km, row with the code) of the active stores in the radius's box, nearest first."""
    min_lat, max_lat, min_lon, max_lon = bounding_box(centre, radius_km)
    # A box reaching over the antimeridian (or a pole) would miss stores across it: keep
    # the latitude band only, which is still an index range.
    longitude = min_lon > -180.0 and max_lon < 180.0
    query = _BOX_QUERIES[(service is not None, longitude)]
    bounds = {"min_lat": min_lat, "max_lat": max_lat, "min_lon": min_lon, "max_lon": max_lon}
    # Core through the session's connection: the ORM layer would double the cost here.
    rows = session.connection().execute(query, bounds).all()
    if service is not None:
        rows = [row for row in rows if service in row.services]
    return _ranked(centre, rows)


def _ranked(centre: GeoPoint, rows: Sequence[Row[Any]]) -> list[tuple[float, Row[Any]]]:
    """Rows with their haversine distance to the centre, nearest first (inlined: hot loop)."""
    lat0, lon0 = math.radians(centre.lat), math.radians(centre.lon)
    cos0 = math.cos(lat0)
    ranked = []
    for row in rows:
        lat, lon = math.radians(row.lat), math.radians(row.lon)
        h = math.sin((lat - lat0) / 2) ** 2 + cos0 * math.cos(lat) * math.sin((lon - lon0) / 2) ** 2
        ranked.append((2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))), row))
    ranked.sort(key=lambda pair: pair[0])
    return ranked


def _next_radius(radius: float, found: int, limit: int) -> float:
    # Stores per box grow with its area: aim for `limit` from the density seen so far.
    factor = 2.5 if found == 0 else max(1.5, math.sqrt(limit / found) * 1.3)
    return min(radius * factor, WHOLE_EARTH_KM)


def nearest_store_rows(
    session: Session, centre: GeoPoint, limit: int = 5, service: str | None = None
) -> list[tuple[float, Row[Any]]]:
    """The `limit` nearest active stores as (distance km, row with the code), nearest first.

    Widen the box until it holds `limit` stores; the farthest of the `limit` nearest in it
    bounds the answer, so one last box of that radius holds the true nearest.
    """
    if service is not None and service not in SERVICES:
        raise InvalidInput(
            f"Unknown service {service!r}; use one of {', '.join(SERVICES)}.",
            [FieldError("unknown service", parameter="service")],
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}.",
            [FieldError(f"must be between 1 and {MAX_LIMIT}", parameter="limit")],
        )
    radius = FIRST_RADIUS_KM
    found = _candidates(session, centre, radius, service)
    while len(found) < limit and radius < WHOLE_EARTH_KM:
        radius = _next_radius(radius, len(found), limit)
        found = _candidates(session, centre, radius, service)
    bound = found[limit - 1][0] if len(found) >= limit else radius
    if bound > radius:  # a nearer store may lie just outside the box's sides
        found = _candidates(session, centre, bound, service)
    return found[:limit]


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
