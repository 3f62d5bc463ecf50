import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcours.core.clock import ManualClock
from parcours.core.geo import GeoPoint, bounding_box, haversine_km
from parcours.core.ids import id_at, id_timestamp_ms, new_hex_ids, new_id, new_ids

PARIS = GeoPoint(48.8566, 2.3522)
LYON = GeoPoint(45.7640, 4.8357)


def test_paris_to_lyon_is_about_392_km() -> None:
    assert haversine_km(PARIS, LYON) == pytest.approx(391.5, abs=1.0)
    assert haversine_km(PARIS, PARIS) == 0


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [(91, 0, "latitude"), (0, -181, "longitude"), (math.nan, 0, "finite"), (0, math.inf, "finite")],
)
def test_points_outside_the_globe_are_refused(lat: float, lon: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GeoPoint(lat, lon)


@given(
    lat=st.floats(-80, 80),
    lon=st.floats(-170, 170),
    radius=st.floats(0.1, 500),
    bearing=st.floats(0, 2 * math.pi),
    fraction=st.floats(0, 1),
)
def test_bounding_box_contains_every_point_of_the_circle(
    lat: float, lon: float, radius: float, bearing: float, fraction: float
) -> None:
    center = GeoPoint(lat, lon)
    distance = radius * fraction / 6371.0088
    lat2 = math.asin(
        math.sin(math.radians(lat)) * math.cos(distance)
        + math.cos(math.radians(lat)) * math.sin(distance) * math.cos(bearing)
    )
    lon2 = math.radians(lon) + math.atan2(
        math.sin(bearing) * math.sin(distance) * math.cos(math.radians(lat)),
        math.cos(distance) - math.sin(math.radians(lat)) * math.sin(lat2),
    )
    point = GeoPoint(math.degrees(lat2), math.degrees(lon2))
    min_lat, max_lat, min_lon, max_lon = bounding_box(center, radius)
    assert min_lat - 1e-9 <= point.lat <= max_lat + 1e-9
    # Longitudes past +-180 mean the box wraps the antimeridian.
    assert any(min_lon - 1e-9 <= point.lon + turn <= max_lon + 1e-9 for turn in (-360, 0, 360))


def test_ids_sort_in_creation_order_and_carry_their_time() -> None:
    ids = [new_id() for _ in range(1000)]
    stamps = [id_timestamp_ms(i) for i in ids]
    assert stamps == sorted(stamps)
    assert all(i.version == 7 for i in ids)
    moment = datetime(2025, 6, 1, 12, tzinfo=UTC)
    fixed = id_at(int(moment.timestamp() * 1000), 12345)
    assert fixed.version == 7
    assert fixed.variant == "specified in RFC 4122"
    assert id_timestamp_ms(fixed) == int(moment.timestamp() * 1000)


def test_ids_made_together_are_distinct_increasing_uuid7_after_earlier_ones() -> None:
    import uuid

    before = new_id()
    made = new_ids(70_000)  # more than 2**16: the counter is wider than a short
    hexes = new_hex_ids(70_000)
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert hexes == sorted(hexes)
    assert len(set(hexes)) == len(hexes)
    assert before < made[0]
    assert made[-1].hex < hexes[0]
    assert {u.version for u in made} == {uuid.UUID(h).version for h in hexes[::999]} == {7}
    assert {u.variant for u in made} == {uuid.RFC_4122}
    assert new_ids(0) == []
    assert new_hex_ids(0) == []


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    clock.advance(timedelta(hours=2))
    assert clock.now() == datetime(2026, 1, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
