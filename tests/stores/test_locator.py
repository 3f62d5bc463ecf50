"""The store locator: nearest stores to a point, a postcode or a city, with opening and stock."""

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput, NotFound
from parcours.core.geo import GeoPoint, haversine_km
from tests import builders

# A Tuesday, 10:00 in Paris.
NOW = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)
WEEKDAYS_OPEN = {day: [["09:30", "19:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}


def network(db: Database, clock: ManualClock) -> None:
    """Stores in Lyon, Villeurbanne, Paris, Marseille, Fort-de-France, and a warehouse."""
    rows = [
        ("LYO-1", 45.7578, 4.8320, "69002", "Lyon", ["click_and_collect", "returns"]),
        ("VIL-1", 45.7719, 4.8902, "69100", "Villeurbanne", ["click_and_collect", "drive"]),
        ("PAR-1", 48.8566, 2.3522, "75001", "Paris", ["click_and_collect"]),
        ("MRS-1", 43.2965, 5.3698, "13001", "Marseille", ["after_sales"]),
    ]
    for code, lat, lon, postcode, city, services in rows:
        builders.add_store(
            db,
            clock,
            code,
            lat=lat,
            lon=lon,
            postcode=postcode,
            city=city,
            services=services,
            opening_hours=WEEKDAYS_OPEN,
        )
    builders.add_store(
        db,
        clock,
        "FDF-1",
        lat=14.6161,
        lon=-61.0588,
        postcode="97200",
        city="Fort-de-France",
        timezone="America/Martinique",
        opening_hours={"tue": [["08:00", "17:00"]]},
    )
    builders.add_store(db, clock, "WH-01", kind="warehouse", lat=45.76, lon=4.84)


def nearest(db: Database, centre: GeoPoint, **options: object) -> list[stores.NearbyStore]:
    with db.transaction() as session:
        return stores.nearest_stores(session, centre, NOW, **options)  # type: ignore[arg-type]


def test_nearest_stores_come_nearest_first_with_their_distance(
    db: Database, clock: ManualClock
) -> None:
    network(db, clock)
    found = nearest(db, GeoPoint(45.7640, 4.8357), limit=3)
    assert [s.code for s in found] == ["LYO-1", "VIL-1", "MRS-1"]
    assert found[0].distance_km == pytest.approx(0.75, abs=0.05)
    assert found[2].distance_km == pytest.approx(278, rel=0.02)
    assert "WH-01" not in [s.code for s in nearest(db, GeoPoint(45.76, 4.84), limit=10)]


def test_opening_state_is_given_in_each_stores_own_zone(db: Database, clock: ManualClock) -> None:
    network(db, clock)
    by_code = {s.code: s for s in nearest(db, GeoPoint(46.0, 3.0), limit=5)}
    assert by_code["LYO-1"].open_now
    assert by_code["LYO-1"].closes_at == datetime(2026, 3, 17, 18, 0, tzinfo=UTC)
    # 05:00 in Martinique: opens at 08:00 local, 12:00 UTC.
    assert not by_code["FDF-1"].open_now
    assert by_code["FDF-1"].next_opening == datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def test_a_holiday_closes_the_store_in_the_locator(db: Database, clock: ManualClock) -> None:
    network(db, clock)
    builders.store_exception(db, "LYO-1", date(2026, 3, 17), label="Fermeture exceptionnelle")
    lyon = nearest(db, GeoPoint(45.7578, 4.8320), limit=1)[0]
    assert not lyon.open_now
    assert lyon.next_opening == datetime(2026, 3, 18, 8, 30, tzinfo=UTC)


def test_the_service_filter_keeps_only_stores_offering_it(db: Database, clock: ManualClock) -> None:
    network(db, clock)
    found = nearest(db, GeoPoint(45.7640, 4.8357), limit=2, service="after_sales")
    assert [s.code for s in found] == ["MRS-1"]  # fewer than asked: no other store has it
    with pytest.raises(InvalidInput, match="Unknown service"):
        nearest(db, GeoPoint(45.7640, 4.8357), service="teleportation")


def test_inactive_stores_are_not_found(db: Database, clock: ManualClock) -> None:
    network(db, clock)
    with db.transaction() as session:
        lyon = stores.get_store_by_code(session, "LYO-1")
        stores.deactivate_store(session, NOW, builders.CLI_ACTOR, lyon.id)
    assert nearest(db, GeoPoint(45.7578, 4.8320), limit=1)[0].code == "VIL-1"


def test_stock_of_a_sku_comes_from_the_injected_lookup(db: Database, clock: ManualClock) -> None:
    network(db, clock)
    asked: list[tuple[str, list[uuid.UUID]]] = []

    def lookup(session: Session, sku: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        asked.append((sku, list(ids)))
        return {ids[0]: 4}

    found = nearest(db, GeoPoint(45.7640, 4.8357), limit=2, sku="LAV-001", stock_lookup=lookup)
    assert [(s.code, s.stock) for s in found] == [("LYO-1", 4), ("VIL-1", 0)]
    assert asked == [("LAV-001", [s.id for s in found])]
    assert all(s.stock is None for s in nearest(db, GeoPoint(45.7640, 4.8357)))


def test_a_sku_without_a_stock_lookup_is_refused(db: Database, clock: ManualClock) -> None:
    network(db, clock)
    with pytest.raises(InvalidInput, match="Stock"):
        nearest(db, GeoPoint(45.7640, 4.8357), sku="LAV-001")


def test_a_warm_locator_answers_in_three_queries(db: Database, clock: ManualClock) -> None:
    network(db, clock)
    nearest(db, GeoPoint(45.7640, 4.8357), limit=1)  # builds the in-memory index
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    found = nearest(db, GeoPoint(48.8566, 2.3522), limit=3)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(found) == 3
    assert len(selects) == 3  # the network version, the winners' details, their exceptions


def test_the_index_follows_store_changes_made_by_any_process(
    db: Database, clock: ManualClock
) -> None:
    network(db, clock)
    before = [hit.code for _, hit in _rows(db, GeoPoint(45.7640, 4.8357), 1)]
    # Another process changes the network: only the database tells this one.
    with db.transaction() as session:
        stores.add_stores(
            session, clock.now(), [builders.store_row("NEW-1", lat=45.7641, lon=4.8358)]
        )
    after = [hit.code for _, hit in _rows(db, GeoPoint(45.7640, 4.8357), 1)]
    assert after == ["NEW-1"]
    assert before != after
    with db.transaction() as session:
        store = stores.get_store_by_code(session, "NEW-1")
        stores.deactivate_store(session, clock.now(), CLI_ACTOR, store.id)
    assert [hit.code for _, hit in _rows(db, GeoPoint(45.7640, 4.8357), 1)] == before


def _rows(db: Database, centre: GeoPoint, limit: int) -> list[tuple[float, Any]]:
    with db.transaction() as session:
        return stores.nearest_store_rows(session, centre, limit)


def test_the_widening_search_finds_exactly_the_brute_force_nearest(
    db: Database, clock: ManualClock
) -> None:
    rng = random.Random(4)
    rows = [
        builders.store_row(
            f"S-{i}",
            lat=round(rng.uniform(42.3, 51.0), 5),
            lon=round(rng.uniform(-4.7, 8.2), 5),
            services=rng.sample(stores.SERVICES, 2),
        )
        for i in range(300)
    ] + [  # and a cluster far north, where the box's longitude reach matters most
        builders.store_row(
            f"N-{i}", lat=round(rng.uniform(69, 71), 5), lon=round(rng.uniform(18, 30), 5)
        )
        for i in range(40)
    ]
    with db.transaction() as session:
        stores.add_stores(session, NOW, rows)
    for index in range(40):
        north = index % 4 == 0
        centre = (
            GeoPoint(rng.uniform(68.0, 72.0), rng.uniform(15.0, 33.0))
            if north
            else GeoPoint(rng.uniform(41.0, 52.0), rng.uniform(-6.0, 10.0))
        )
        service = rng.choice([None, *stores.SERVICES])
        limit = rng.choice([1, 5, 12])
        with db.transaction() as session:
            found = stores.nearest_store_rows(session, centre, limit, service)
            got = [row.code for _, row in found]
        eligible = [r for r in rows if service is None or service in r["services"]]
        expected = sorted(
            eligible, key=lambda r: haversine_km(centre, GeoPoint(r["lat"], r["lon"]))
        )
        assert got == [r["code"] for r in expected[:limit]]


def test_far_away_points_still_find_the_nearest_store(db: Database, clock: ManualClock) -> None:
    network(db, clock)
    sydney = GeoPoint(-33.9, 151.2)
    found = nearest(db, sydney, limit=6)
    assert len(found) == 5  # every store, after widening to the whole earth
    assert [s.distance_km for s in found] == sorted(s.distance_km for s in found)
    assert found[0].distance_km > 15_000


def test_the_search_sees_across_the_antimeridian(db: Database, clock: ManualClock) -> None:
    builders.add_store(db, clock, "WEST", lat=-17.7, lon=178.5, timezone="Pacific/Fiji")
    builders.add_store(db, clock, "EAST", lat=-17.7, lon=-175.0, timezone="Pacific/Fiji")
    found = nearest(db, GeoPoint(-17.7, -179.5), limit=1)
    assert found[0].code == "WEST"
    assert found[0].distance_km == pytest.approx(212, rel=0.02)


@pytest.mark.parametrize("limit", [0, 51])
def test_the_limit_is_bounded(db: Database, limit: int) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        nearest(db, GeoPoint(45.0, 4.0), limit=limit)


# ------------------------------------------------------------------ places


def test_a_postcode_finds_its_city_then_its_department() -> None:
    assert stores.city_for_postcode("69001").name == "Lyon"
    # 69005 is not in the table: the largest city of the Rhône stands in.
    assert stores.city_for_postcode("69005").name == "Lyon"
    assert stores.city_for_postcode("97 200").name == "Fort-de-France"
    assert stores.city_for_postcode("20090").department_code in {"2A", "2B"}


@pytest.mark.parametrize("postcode", ["6900", "69OO1", "690011"])
def test_a_malformed_postcode_is_refused(postcode: str) -> None:
    with pytest.raises(InvalidInput, match="five digits"):
        stores.city_for_postcode(postcode)


def test_a_postcode_outside_every_known_department_is_not_found() -> None:
    with pytest.raises(NotFound, match="00000"):
        stores.city_for_postcode("00000")


@pytest.mark.parametrize(
    "name", ["Saint-Étienne", "saint etienne", "SAINT-ETIENNE", " saint-étienne "]
)
def test_a_city_is_found_whatever_its_accents_and_case(name: str) -> None:
    assert stores.city_named(name).name == "Saint-Étienne"


def test_an_unknown_city_is_not_found() -> None:
    with pytest.raises(NotFound, match="Atlantis"):
        stores.city_named("Atlantis")


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({}, "postcode"),
        ({"lat": 45.0}, "lon"),
        ({"lon": 4.0}, "lat"),
        ({"lat": 45.0, "lon": 4.0, "city": "Lyon"}, "city"),
        ({"postcode": "69001", "city": "Lyon"}, "city"),
    ],
)
def test_the_place_must_be_given_once(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        stores.resolve_place(**kwargs)  # type: ignore[arg-type]
    assert caught.value.errors[0].parameter == parameter


def test_the_demo_still_reads_the_city_table_through_the_stores_context() -> None:
    from parcours.demo.cities import french_cities

    assert french_cities() is stores.french_cities()
    assert french_cities()[0].name == "Paris"
