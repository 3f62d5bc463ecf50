"""The table of French cities shipped in the package (true coordinates, INSEE codes)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class City:
    insee: str
    name: str
    postcode: str
    department_code: str
    department: str
    region: str
    lat: float
    lon: float
    timezone: str
    population: int


@lru_cache(maxsize=1)
def french_cities() -> tuple[City, ...]:
    """Cities by population, largest first."""
    source = resources.files("parcours.demo").joinpath("data/cities.csv")
    with source.open(encoding="utf-8") as handle:
        rows = [
            City(
                insee=row["insee"],
                name=row["city"],
                postcode=row["postcode"],
                department_code=row["department_code"],
                department=row["department"],
                region=row["region"],
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                timezone=row["timezone"],
                population=int(row["population"]),
            )
            for row in csv.DictReader(handle)
        ]
    return tuple(sorted(rows, key=lambda c: -c.population))
