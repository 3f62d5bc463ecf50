"""Customers context: tracking, identity, profiles, consent and privacy (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    import typer

    from parcours.core.events import PeriodicJob


def cli_app() -> typer.Typer:
    """The `parcours customers` command group."""
    from parcours.customers.cli import app

    return app


def periodic_jobs() -> list[PeriodicJob]:
    """Time-driven jobs of this context (retention, ...), run by the worker."""
    return []


__all__ = [
    "CHANNELS",
    "PURPOSES",
    "add_consents",
    "add_customers",
    "cli_app",
    "count_customers",
    "current_consents",
    "get_customer",
    "list_customers",
    "normalise_email",
    "periodic_jobs",
    "validate_customer",
]
