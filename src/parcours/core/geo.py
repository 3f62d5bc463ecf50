"""Geographic points and great-circle distance."""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """A WGS 84 latitude/longitude in decimal degrees, validated on creation."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (isinstance(self.lat, int | float) and math.isfinite(self.lat)):
            raise ValueError(f"latitude must be a finite number, got {self.lat!r}")
        if not (isinstance(self.lon, int | float) and math.isfinite(self.lon)):
            raise ValueError(f"longitude must be a finite number, got {self.lon!r}")
        if not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"latitude {self.lat} is outside [-90, 90]")
        if not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"longitude {self.lon} is outside [-180, 180]")


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance between two points in kilometres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def bounding_box(center: GeoPoint, radius_km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) holding every point within `radius_km`.

    A cheap index pre-filter. The longitude half-width is asin(sin(r/R) / cos(lat)), the
    circle's true extent (r/R / cos(lat) falls a little short away from the equator). A
    circle reaching a pole spans every longitude; one crossing the antimeridian gets
    longitude bounds past +-180, which the caller wraps.
    """
    if radius_km < 0:
        raise ValueError("radius must be non-negative")
    angle = radius_km / EARTH_RADIUS_KM
    min_lat = center.lat - math.degrees(angle)
    max_lat = center.lat + math.degrees(angle)
    if min_lat <= -90.0 or max_lat >= 90.0:
        return max(-90.0, min_lat), min(90.0, max_lat), -180.0, 180.0
    ratio = math.sin(min(angle, math.pi / 2)) / math.cos(math.radians(center.lat))
    if ratio >= 1.0:
        return min_lat, max_lat, -180.0, 180.0
    half_width = math.degrees(math.asin(ratio))
    return min_lat, max_lat, center.lon - half_width, center.lon + half_width
