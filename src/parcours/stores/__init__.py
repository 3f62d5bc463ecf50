"""Stores context: the network of stores and warehouses (facade)."""

from parcours.stores.service import (
    SERVICES,
    add_stores,
    count_stores,
    get_store,
    get_store_by_code,
    list_stores,
    store_ids_by_code,
    validate_store,
)

__all__ = [
    "SERVICES",
    "add_stores",
    "count_stores",
    "get_store",
    "get_store_by_code",
    "list_stores",
    "store_ids_by_code",
    "validate_store",
]
