"""Stores context: the network of stores and warehouses (facade)."""

from parcours.stores.service import (
    SERVICES,
    add_stores,
    count_stores,
    get_store,
    list_stores,
    validate_store,
)

__all__ = ["SERVICES", "add_stores", "count_stores", "get_store", "list_stores", "validate_store"]
