"""French cities shipped with the package: where a postcode or a city name is on the map.

`data/cities.csv` holds the largest French cities (metropolitan and overseas) with their
INSEE code, main postcode, true coordinates and time zone. The store locator uses it to
turn a postcode or a city name into a point; the demo places its stores in these cities.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from parcours.core.errors import Refused, SaidNotFound, refusal
from parcours.core.geo import GeoPoint

POSTCODE = re.compile(r"\d{5}")

# What placing a search refuses, as `message % values` for the locator page (see
# `core.errors.refusal`); the API says the same in English.
NOT_A_POSTCODE = "%(postcode)s is not a French postcode: give five digits, such as 69002."
FIVE_DIGITS = "must be five digits"
NO_CITY_FOR_POSTCODE = (
    "No known city has the postcode %(postcode)s or lies in its department; "
    "search by city name or by coordinates instead."
)
NO_CITY_NAMED = (
    "No known city is called %(name)s; check the spelling or search by postcode instead."
)
MESSAGES = (NOT_A_POSTCODE, FIVE_DIGITS, NO_CITY_FOR_POSTCODE, NO_CITY_NAMED)


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

    @property
    def point(self) -> GeoPoint:
        return GeoPoint(self.lat, self.lon)


@lru_cache(maxsize=1)
def french_cities() -> tuple[City, ...]:
    """Cities by population, largest first."""
    source = resources.files("parcours.stores").joinpath("data/cities.csv")
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


def fold_name(text: str) -> str:
    """A city name folded for matching: no accents, no case, hyphens as spaces."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split())


@lru_cache(maxsize=1)
def _by_name() -> dict[str, City]:
    index: dict[str, City] = {}
    for city in reversed(french_cities()):  # the most populous wins a shared name
        index[fold_name(city.name)] = city
    return index


def _department_prefix(postcode: str) -> str:
    # Overseas departments share "97": their third digit tells them apart (972 Martinique).
    return postcode[:3] if postcode.startswith("97") else postcode[:2]


def city_for_postcode(postcode: str) -> City:
    """The city of an exact postcode, else the largest city of the postcode's department."""
    postcode = postcode.strip().replace(" ", "")
    if not POSTCODE.fullmatch(postcode):
        shown = repr(postcode)
        raise Refused.of(
            NOT_A_POSTCODE, [refusal(FIVE_DIGITS, parameter="postcode")], postcode=shown
        )
    for city in french_cities():
        if city.postcode == postcode:
            return city
    prefix = _department_prefix(postcode)
    for city in french_cities():  # largest first
        if _department_prefix(city.postcode) == prefix:
            return city
    raise SaidNotFound(NO_CITY_FOR_POSTCODE, postcode=postcode)


def city_named(name: str) -> City:
    """A city by name, ignoring accents, case and hyphens ("saint etienne")."""
    found = _by_name().get(fold_name(name))
    if found is None:
        raise SaidNotFound(NO_CITY_NAMED, name=repr(name.strip()))
    return found
