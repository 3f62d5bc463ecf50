"""Delivery options: cost, promised time and availability of each way to get the goods.

The shop's clock reads Saturday 14 March 2026, 10:30 in Lyon; stores open 10:00-19:00
Monday to Saturday.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from parcours.core.errors import Conflict
from parcours.core.geo import GeoPoint
from parcours.orders import carts, delivery
from parcours.orders.routing import load_network
from tests import builders
from tests.builders import utc
from tests.orders.conftest import Shop

LYON = GeoPoint(45.7640, 4.8357)


def options_for(
    shop: Shop, place: GeoPoint | None = LYON, store: str | None = None, **lines: int
) -> dict[tuple[str, str | None], delivery.DeliveryOption]:
    now = shop.clock.now()
    with shop.db.transaction() as session:
        cart = carts.create_cart(session, now, "web", anonymous_id="v")
        for sku, quantity in lines.items():
            carts.set_line(session, now, cart.id, sku.replace("_", "-"), quantity)
        session.flush()
        priced = carts.price_cart(session, now, cart)
        network = load_network(session, [line.sku for line in priced.lines])
        store_id = shop.locations[store] if store else None
        found = delivery.delivery_options(session, now, priced, network, place, store_id)
    return {(o.mode, o.store_code): o for o in found}


def test_home_delivery_is_promised_in_two_working_days_and_free_from_60_euros(
    sqlite_shop: Shop,
) -> None:
    small = options_for(sqlite_shop, BOUGIE_S=1)[("home_delivery", None)]
    assert (small.available, small.cost) == (True, delivery.HOME_DELIVERY_FEE)
    assert small.promised_at == utc(2026, 3, 17, 18)  # Tuesday 19:00 in Paris
    large = options_for(sqlite_shop, ROBE_LIN_S=1)[("home_delivery", None)]
    assert large.cost == 0


def test_click_and_collect_is_ready_after_the_preparation_time(sqlite_shop: Shop) -> None:
    option = options_for(sqlite_shop, ROBE_LIN_S=1)[("click_and_collect", "LYO-1")]
    assert option.available
    assert option.cost == 0
    assert option.promised_at == sqlite_shop.clock.now() + timedelta(minutes=120)
    assert option.distance_km is not None
    assert option.distance_km < 1


def test_too_late_today_means_ready_after_the_next_opening(sqlite_shop: Shop) -> None:
    sqlite_shop.clock.advance(timedelta(hours=8))  # 18:30 in Lyon, closing at 19:00
    option = options_for(sqlite_shop, ROBE_LIN_S=1)[("click_and_collect", "LYO-1")]
    assert option.promised_at == utc(2026, 3, 16, 11)  # Monday 10:00 + 2 h (closed on Sunday)


def test_a_store_closed_today_is_ready_after_its_next_opening(sqlite_shop: Shop) -> None:
    builders.store_exception(sqlite_shop.db, "LYO-1", date(2026, 3, 14), (), "inventaire")
    option = options_for(sqlite_shop, ROBE_LIN_S=1)[("click_and_collect", "LYO-1")]
    assert option.promised_at == utc(2026, 3, 16, 11)


def test_reserve_in_store_is_held_the_store_hold_days(sqlite_shop: Shop) -> None:
    option = options_for(sqlite_shop, ROBE_LIN_S=1)[("reserve_in_store", "LYO-1")]
    assert option.available
    assert option.hold_until == option.promised_at + timedelta(days=3)  # type: ignore[operator]


def test_a_store_without_the_stock_says_how_much_it_has(sqlite_shop: Shop) -> None:
    option = options_for(sqlite_shop, ROBE_LIN_S=2)[("click_and_collect", "LYO-2")]
    assert not option.available
    assert option.why_not == "not enough stock of ROBE-LIN-S at LYO-2: 1 of 2"


def test_a_service_the_store_does_not_offer_is_said_so(sqlite_shop: Shop) -> None:
    option = options_for(sqlite_shop, ROBE_LIN_S=1)[("drive", "LYO-2")]
    assert option.why_not == "LYO-2 does not offer drive"


def test_drive_offers_slots_created_from_the_store_settings(shop: Shop) -> None:
    with shop.db.transaction() as session:
        delivery.configure_store(
            session, shop.clock.now(), shop.locations["LYO-1"], drive_slot_capacity=2
        )
    option = options_for(shop, store="LYO-1", ROBE_LIN_S=1)[("drive", "LYO-1")]
    assert option.available
    first = option.slots[0]
    assert (first.starts_at, first.ends_at, first.left) == (
        utc(2026, 3, 14, 11, 30),
        utc(2026, 3, 14, 12),
        2,
    )
    assert option.promised_at == first.starts_at
    # Saturday 12:30-19:00 and Monday 10:00-19:00 local (Sunday closed): 13 + 18 slots.
    assert len(option.slots) == 31
    again = options_for(shop, store="LYO-1", ROBE_LIN_S=1)[("drive", "LYO-1")]
    assert [s.id for s in again.slots] == [s.id for s in option.slots]


def test_a_drive_with_every_slot_full_is_not_offered(sqlite_shop: Shop) -> None:
    lyon = sqlite_shop.locations["LYO-1"]
    with sqlite_shop.db.transaction() as session:
        delivery.configure_store(session, sqlite_shop.clock.now(), lyon, drive_slot_capacity=1)
    option = options_for(sqlite_shop, store="LYO-1", ROBE_LIN_S=1)[("drive", "LYO-1")]
    with sqlite_shop.db.transaction() as session:
        for slot in option.slots:
            delivery.book_slot(session, lyon, slot.id)
    full = options_for(sqlite_shop, store="LYO-1", ROBE_LIN_S=1)[("drive", "LYO-1")]
    assert not full.available
    assert full.why_not == "no drive slot left at LYO-1 in the next 3 days"
    with pytest.raises(Conflict), sqlite_shop.db.transaction() as session:
        delivery.book_slot(session, lyon, option.slots[0].id)


def test_ship_from_store_needs_a_parcel_capacity(sqlite_shop: Shop) -> None:
    before = options_for(sqlite_shop, ROBE_LIN_M=1)[("ship_from_store", None)]
    assert not before.available
    with sqlite_shop.db.transaction() as session:
        delivery.configure_store(
            session, sqlite_shop.clock.now(), sqlite_shop.locations["LYO-1"], daily_ship_capacity=1
        )
    options = options_for(sqlite_shop, ROBE_LIN_M=1)
    after = options[("ship_from_store", "LYO-1")]
    assert after.available
    assert after.cost == delivery.SHIP_FROM_STORE_FEE
    # Home delivery falls back on the store too, since no warehouse holds the dress.
    assert options[("home_delivery", None)].available


def test_only_the_nearest_stores_are_offered(sqlite_shop: Shop) -> None:
    near_paris = options_for(sqlite_shop, GeoPoint(48.86, 2.34), ROBE_LIN_S=1)
    assert next(code for mode, code in near_paris if mode == "click_and_collect") == "PAR-1"


def test_unknown_settings_are_refused(sqlite_shop: Shop) -> None:
    from parcours.core.errors import InvalidInput

    with pytest.raises(InvalidInput), sqlite_shop.db.transaction() as session:
        delivery.configure_store(
            session, sqlite_shop.clock.now(), uuid.uuid4(), drive_slots=3, preparation_minutes=-1
        )


def test_a_store_without_drive_slots_set_up_offers_no_drive(sqlite_shop: Shop) -> None:
    option = options_for(sqlite_shop, ROBE_LIN_S=1)[("drive", "LYO-1")]
    assert option.why_not == "LYO-1 has no drive slots set up"
