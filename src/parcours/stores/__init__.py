"""Stores context: the network of stores and warehouses (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

from parcours.stores.facts import store_codes
from parcours.stores.hours import OpeningSchedule, closes_at, is_open, next_opening
from parcours.stores.locator import (
    NearbyStore,
    StockLookup,
    nearest_store_rows,
    nearest_stores,
    resolve_place,
)
from parcours.stores.places import City, city_for_postcode, city_named, french_cities
from parcours.stores.service import (
    SERVICES,
    Location,
    add_exceptions,
    add_stores,
    all_locations,
    count_stores,
    create_store,
    deactivate_store,
    get_store,
    get_store_by_code,
    list_exceptions,
    list_stores,
    locations,
    opening_schedule,
    remove_exception,
    set_exception,
    store_ids_by_code,
    update_store,
    validate_store,
)
from parcours.stores.spatial import network_version


def console_msgids() -> set[str]:
    """Words this context's pages translate from Python data (for the translation tests)."""
    from parcours.stores.pages import CONSOLE_WORDS, SERVICE_MESSAGES

    return set(SERVICE_MESSAGES) | set(CONSOLE_WORDS)


def cli_app() -> typer.Typer:
    """The `parcours stores` command group."""
    from parcours.stores.cli import app

    return app


__all__ = [
    "SERVICES",
    "City",
    "Location",
    "NearbyStore",
    "OpeningSchedule",
    "StockLookup",
    "add_exceptions",
    "add_stores",
    "all_locations",
    "city_for_postcode",
    "city_named",
    "cli_app",
    "closes_at",
    "console_msgids",
    "count_stores",
    "create_store",
    "deactivate_store",
    "french_cities",
    "get_store",
    "get_store_by_code",
    "is_open",
    "list_exceptions",
    "list_stores",
    "locations",
    "nearest_store_rows",
    "nearest_stores",
    "network_version",
    "next_opening",
    "opening_schedule",
    "remove_exception",
    "resolve_place",
    "set_exception",
    "store_codes",
    "store_ids_by_code",
    "update_store",
    "validate_store",
]
