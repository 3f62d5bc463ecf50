"""Sourcing and routing: which location(s) each line of an order leaves from, and why.

`route` is a pure function over plain data (the stock per SKU and location, the
locations, the customer's point), so every choice can be tested without a database;
`load_network` does the few queries it needs. The rules, in order:

- pickup modes (click & collect, reserve in store, drive) take everything from the
  chosen store: the customer walks in there;
- shipped modes prefer **one parcel**: the cheapest location able to send every unit
  (a warehouse costs less per parcel than a store), the nearest among equals;
- when no single location can, the order is **split**: the location covering the most
  units goes first (cheapest, then nearest, on a tie), then the next for what is left;
- home delivery ships from warehouses, and from stores offering ship-from-store
  (within `radius_km` of the customer, with parcel capacity left) only when the
  warehouses cannot; ship-from-store uses those stores only.

Every shipment carries a `reason` a person can read and `reason_data` with the figures
(candidates considered, their distance and units).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from parcours import inventory, stores
from parcours.core.geo import GeoPoint, haversine_km
from parcours.orders.models import PICKUP_MODES

RADIUS_KM = 50.0
# What sending one parcel costs the retailer, by kind of location (cents): a warehouse
# packs parcels all day; a store takes a salesperson off the floor.
PARCEL_COST = {"warehouse": 450, "store": 900}


@dataclass(frozen=True)
class Site:
    """A stock location as routing sees it."""

    id: uuid.UUID
    code: str
    name: str
    kind: str  # store | warehouse
    lat: float
    lon: float
    services: tuple[str, ...] = ()
    ship_capacity_left: int | None = None  # parcels it may still take today (stores)

    @property
    def point(self) -> GeoPoint:
        return GeoPoint(self.lat, self.lon)


@dataclass(frozen=True)
class Need:
    sku: str
    quantity: int


@dataclass
class Shipment:
    """The units leaving one location, and why that location."""

    site: Site
    units: dict[str, int]  # sku -> quantity
    reason: str = ""
    reason_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Shortage:
    sku: str
    location: Site | None  # the store asked for (pickup), else None: nowhere has enough
    requested: int
    available: int

    def message(self) -> str:
        where = f" at {self.location.code}" if self.location else ""
        return f"not enough stock of {self.sku}{where}: {self.available} of {self.requested}"


@dataclass
class Plan:
    mode: str
    shipments: list[Shipment]
    shortages: list[Shortage]

    @property
    def possible(self) -> bool:
        return not self.shortages and bool(self.shipments)


@dataclass(frozen=True)
class Network:
    """What routing reads: available units per SKU and location, and the locations."""

    stock: Mapping[str, Mapping[uuid.UUID, int]]
    sites: Mapping[uuid.UUID, Site]

    def units(self, sku: str, site_id: uuid.UUID) -> int:
        return self.stock.get(sku, {}).get(site_id, 0)


# ------------------------------------------------------------------ pure rules


def route(
    mode: str,
    needs: Sequence[Need],
    network: Network,
    customer: GeoPoint | None = None,
    store_id: uuid.UUID | None = None,
    radius_km: float = RADIUS_KM,
) -> Plan:
    """Where each unit of `needs` leaves from for `mode` (see the module docstring)."""
    if mode in PICKUP_MODES:
        return _pickup(mode, needs, network, store_id)
    candidates = _shipping_candidates(mode, network, customer, store_id, radius_km)
    return _ship(mode, needs, network, customer, candidates, radius_km)


def _pickup(mode: str, needs: Sequence[Need], network: Network, store_id: uuid.UUID | None) -> Plan:
    site = network.sites.get(store_id) if store_id else None
    if site is None:
        return Plan(mode, [], [Shortage(n.sku, None, n.quantity, 0) for n in needs])
    short = [
        Shortage(n.sku, site, n.quantity, network.units(n.sku, site.id))
        for n in needs
        if network.units(n.sku, site.id) < n.quantity
    ]
    if short:
        return Plan(mode, [], short)
    units = {n.sku: n.quantity for n in needs}
    total = sum(units.values())
    reason = f"collected at {site.name}: the store the customer chose, all {total} units in stock"
    data = {
        "mode": mode,
        "chosen": site.code,
        "units": units,
        "stock": {n.sku: network.units(n.sku, site.id) for n in needs},
    }
    return Plan(mode, [Shipment(site, units, reason, data)], [])


def _shipping_candidates(
    mode: str,
    network: Network,
    customer: GeoPoint | None,
    store_id: uuid.UUID | None,
    radius_km: float,
) -> list[Site]:
    stores_ok = [
        s
        for s in network.sites.values()
        if s.kind == "store"
        and "ship_from_store" in s.services
        and (s.ship_capacity_left is None or s.ship_capacity_left > 0)
        and (customer is None or haversine_km(customer, s.point) <= radius_km)
    ]
    if mode == "ship_from_store":
        if store_id is not None:
            return [s for s in stores_ok if s.id == store_id]
        return stores_ok
    warehouses = [s for s in network.sites.values() if s.kind == "warehouse"]
    return warehouses + stores_ok


def _distance(site: Site, customer: GeoPoint | None) -> float | None:
    return None if customer is None else round(haversine_km(customer, site.point), 1)


def _rank(site: Site, customer: GeoPoint | None) -> tuple[int, float, str]:
    """Cheaper first, then nearer, then by code (a stable answer)."""
    return (PARCEL_COST.get(site.kind, 900), _distance(site, customer) or 0.0, site.code)


def _ship(
    mode: str,
    needs: Sequence[Need],
    network: Network,
    customer: GeoPoint | None,
    candidates: list[Site],
    radius_km: float,
) -> Plan:
    candidates = sorted(candidates, key=lambda s: _rank(s, customer))
    table = _candidate_table(needs, network, customer, candidates)
    whole = [s for s in candidates if all(network.units(n.sku, s.id) >= n.quantity for n in needs)]
    if whole:
        site = whole[0]
        units = {n.sku: n.quantity for n in needs}
        reason = _single_reason(site, whole, candidates, customer, radius_km, mode)
        data = _data(mode, site, units, customer, table)
        return Plan(mode, [Shipment(site, units, reason, data)], [])
    return _split(mode, needs, network, customer, candidates, table)


def _split(
    mode: str,
    needs: Sequence[Need],
    network: Network,
    customer: GeoPoint | None,
    candidates: list[Site],
    table: list[dict[str, Any]],
) -> Plan:
    left = {n.sku: n.quantity for n in needs}
    shipments: list[Shipment] = []
    pool = list(candidates)
    while any(left.values()) and pool:

        def covers(site: Site) -> int:
            return sum(min(q, network.units(sku, site.id)) for sku, q in left.items())

        best = max(pool, key=lambda s: (covers(s), [-x for x in _rank(s, customer)[:2]]))
        if covers(best) == 0:
            break
        pool.remove(best)
        units = {}
        for sku, q in left.items():
            take = min(q, network.units(sku, best.id))
            if take:
                units[sku] = take
                left[sku] = q - take
        shipments.append(Shipment(best, units))
    shortages = [
        Shortage(
            sku,
            None,
            {n.sku: n.quantity for n in needs}[sku],
            _total(network, sku, candidates),
        )
        for sku, q in left.items()
        if q
    ]
    if shortages:
        return Plan(mode, [], shortages)
    total_parts = len(shipments)
    for index, shipment in enumerate(shipments, start=1):
        shipment.reason = _split_reason(shipment, index, total_parts, customer)
        shipment.reason_data = {
            **_data(mode, shipment.site, shipment.units, customer, table),
            "split": {"part": index, "of": total_parts},
        }
    return Plan(mode, shipments, [])


def _total(network: Network, sku: str, candidates: list[Site]) -> int:
    return sum(network.units(sku, s.id) for s in candidates)


def _candidate_table(
    needs: Sequence[Need], network: Network, customer: GeoPoint | None, candidates: list[Site]
) -> list[dict[str, Any]]:
    return [
        {
            "code": s.code,
            "kind": s.kind,
            "distance_km": _distance(s, customer),
            "parcel_cost": PARCEL_COST.get(s.kind, 900),
            "units": {n.sku: network.units(n.sku, s.id) for n in needs},
            "can_serve_all": all(network.units(n.sku, s.id) >= n.quantity for n in needs),
        }
        for s in candidates
    ]


def _data(
    mode: str,
    site: Site,
    units: dict[str, int],
    customer: GeoPoint | None,
    table: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "mode": mode,
        "chosen": site.code,
        "distance_km": _distance(site, customer),
        "units": dict(units),
        "candidates": table,
    }


def _single_reason(
    site: Site,
    whole: list[Site],
    candidates: list[Site],
    customer: GeoPoint | None,
    radius_km: float,
    mode: str,
) -> str:
    where = f"shipped from {site.name}"
    if site.kind == "warehouse":
        return f"{where}: a warehouse holds every item (parcels cost less from a warehouse)"
    within = f" within {radius_km:g} km" if customer is not None else ""
    distance = _distance(site, customer)
    if len([s for s in whole if s.kind == "store"]) == 1:
        return f"{where}: only store with stock{within}"
    return (
        f"{where}: nearest store with every item ({distance} km)"
        if distance is not None
        else (f"{where}: first store with every item")
    )


def _split_reason(shipment: Shipment, index: int, parts: int, customer: GeoPoint | None) -> str:
    items = ", ".join(f"{q} × {sku}" for sku, q in shipment.units.items())
    distance = _distance(shipment.site, customer)
    far = f", {distance} km away" if distance is not None and shipment.site.kind == "store" else ""
    return (
        f"shipped from {shipment.site.name} (parcel {index} of {parts}{far}): no single location "
        f"holds every item; this one covers the most of what was left ({items})"
    )


# ------------------------------------------------------------------ loading


def load_network(
    session: Session,
    skus: Sequence[str],
    ship_capacity_left: Mapping[uuid.UUID, int] | None = None,
) -> Network:
    """Available units of `skus` per location and the active locations holding them
    (one stock query per SKU, then one for the locations)."""
    stock = {sku: inventory.available_by_location(session, sku) for sku in sorted(set(skus))}
    return Network(stock, all_sites(session, ship_capacity_left or {}))


def all_sites(
    session: Session, ship_capacity_left: Mapping[uuid.UUID, int] | None = None
) -> dict[uuid.UUID, Site]:
    """Every active store and warehouse (one query)."""
    left = ship_capacity_left or {}
    return {
        s.id: Site(
            s.id, s.code, s.name, s.kind, s.lat, s.lon, tuple(s.services or ()), left.get(s.id)
        )
        for s in stores.all_locations(session)
        if s.active
    }
