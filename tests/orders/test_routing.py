"""Routing over plain data: one parcel when possible, cheapest then nearest, splits with reasons."""

from __future__ import annotations

import uuid

from parcours.core.geo import GeoPoint
from parcours.orders.routing import Need, Network, Site, route

LYON = GeoPoint(45.7640, 4.8357)
SFS = ("click_and_collect", "ship_from_store")


def site(
    code: str, kind: str = "store", lat: float = 45.76, lon: float = 4.83, **kw: object
) -> Site:
    return Site(
        uuid.uuid5(uuid.NAMESPACE_DNS, code),
        code,
        f"Maison Lavande {code}",
        kind,
        lat,
        lon,
        tuple(kw.get("services", SFS)),  # type: ignore[arg-type]
        kw.get("left"),  # type: ignore[arg-type]
    )


WH = site("WH-1", "warehouse", 47.95, 1.876, services=())
LYO1 = site("LYO-1", lat=45.7578, lon=4.8320)
LYO2 = site("LYO-2", lat=45.7719, lon=4.8902)
PAR1 = site("PAR-1", lat=48.8606, lon=2.3376)


def network(stock: dict[str, dict[Site, int]], *sites: Site) -> Network:
    return Network(
        {sku: {s.id: units for s, units in where.items()} for sku, where in stock.items()},
        {s.id: s for s in sites},
    )


def test_a_warehouse_holding_everything_sends_one_parcel() -> None:
    net = network({"A": {WH: 5, LYO1: 5}, "B": {WH: 1, LYO1: 3}}, WH, LYO1)
    plan = route("home_delivery", [Need("A", 2), Need("B", 1)], net, LYON)
    [shipment] = plan.shipments
    assert shipment.site == WH
    assert shipment.units == {"A": 2, "B": 1}
    assert "warehouse" in shipment.reason
    assert shipment.reason_data["chosen"] == "WH-1"
    assert {c["code"] for c in shipment.reason_data["candidates"]} == {"WH-1", "LYO-1"}


def test_a_store_ships_when_the_warehouse_lacks_stock_and_says_it_was_the_only_one() -> None:
    net = network({"A": {WH: 0, LYO1: 2, PAR1: 9}}, WH, LYO1, PAR1)
    plan = route("home_delivery", [Need("A", 2)], net, LYON)
    [shipment] = plan.shipments
    assert shipment.site == LYO1
    assert (
        shipment.reason == "shipped from Maison Lavande LYO-1: only store with stock within 50 km"
    )
    assert shipment.reason_data["distance_km"] < 1


def test_the_nearest_of_two_able_stores_ships() -> None:
    net = network({"A": {LYO1: 2, LYO2: 2}}, LYO1, LYO2)
    plan = route("ship_from_store", [Need("A", 1)], net, GeoPoint(45.772, 4.889))
    assert plan.shipments[0].site == LYO2
    assert "nearest store" in plan.shipments[0].reason


def test_an_order_no_location_can_send_whole_is_split() -> None:
    net = network({"A": {WH: 3, LYO1: 0}, "B": {WH: 0, LYO1: 1}}, WH, LYO1)
    plan = route("home_delivery", [Need("A", 3), Need("B", 1)], net, LYON)
    assert [(s.site.code, s.units) for s in plan.shipments] == [
        ("WH-1", {"A": 3}),
        ("LYO-1", {"B": 1}),
    ]
    assert all("parcel" in s.reason for s in plan.shipments)
    assert plan.shipments[1].reason_data["split"] == {"part": 2, "of": 2}


def test_one_line_may_come_from_two_places() -> None:
    net = network({"A": {WH: 2, LYO1: 1}}, WH, LYO1)
    plan = route("home_delivery", [Need("A", 3)], net, LYON)
    assert [(s.site.code, s.units["A"]) for s in plan.shipments] == [("WH-1", 2), ("LYO-1", 1)]


def test_stores_beyond_50_km_or_without_parcel_capacity_do_not_ship() -> None:
    full = site("LYO-9", left=0)
    net = network({"A": {PAR1: 5, full: 5}}, PAR1, full)
    plan = route("home_delivery", [Need("A", 1)], net, LYON)
    assert plan.shipments == []
    assert plan.shortages[0].message() == "not enough stock of A: 0 of 1"


def test_a_pickup_takes_everything_from_the_chosen_store_or_names_the_shortage() -> None:
    net = network({"A": {LYO2: 1, LYO1: 5}}, LYO1, LYO2)
    plan = route("click_and_collect", [Need("A", 2)], net, store_id=LYO2.id)
    assert not plan.possible
    assert plan.shortages[0].message() == "not enough stock of A at LYO-2: 1 of 2"
    plan = route("click_and_collect", [Need("A", 2)], net, store_id=LYO1.id)
    assert plan.shipments[0].site == LYO1
    assert "the store the customer chose" in plan.shipments[0].reason


def test_without_a_customer_place_routing_still_prefers_the_warehouse() -> None:
    net = network({"A": {WH: 1, LYO1: 1}}, WH, LYO1)
    plan = route("home_delivery", [Need("A", 1)], net)
    assert plan.shipments[0].site == WH
    assert plan.shipments[0].reason_data["distance_km"] is None
