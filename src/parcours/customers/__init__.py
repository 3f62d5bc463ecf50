"""Customers context: profiles and consent (facade)."""

from parcours.customers.service import (
    CHANNELS,
    PURPOSES,
    add_consents,
    add_customers,
    count_customers,
    current_consents,
    get_customer,
    list_customers,
    normalise_email,
    validate_customer,
)

__all__ = [
    "CHANNELS",
    "PURPOSES",
    "add_consents",
    "add_customers",
    "count_customers",
    "current_consents",
    "get_customer",
    "list_customers",
    "normalise_email",
    "validate_customer",
]
