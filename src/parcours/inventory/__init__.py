"""Inventory context: one stock ledger with reservations and availability per channel (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.inventory.jobs import EXPIRE_RESERVATIONS_JOB, expire_reservations_job
from parcours.inventory.models import MOVEMENT_KINDS, RESERVATION_KINDS
from parcours.inventory.service import (
    BACK_IN_STOCK,
    STOCK_LOW,
    ChannelRule,
    MovementInput,
    ReservationResult,
    available_at_location,
    available_by_location,
    available_to_promise,
    consume,
    count_stock_levels,
    load_opening_ledger,
    record_movements,
    release,
    release_expired_reservations,
    reserve,
    set_channel_rule,
    set_stock_policy,
    stock_for_sku,
    track_skus,
    transfer,
)

if TYPE_CHECKING:
    import typer


def cli_app() -> typer.Typer:
    """The `parcours inventory` command group."""
    from parcours.inventory.cli import app

    return app


__all__ = [
    "BACK_IN_STOCK",
    "EXPIRE_RESERVATIONS_JOB",
    "MOVEMENT_KINDS",
    "RESERVATION_KINDS",
    "STOCK_LOW",
    "ChannelRule",
    "MovementInput",
    "ReservationResult",
    "available_at_location",
    "available_by_location",
    "available_to_promise",
    "cli_app",
    "consume",
    "count_stock_levels",
    "expire_reservations_job",
    "load_opening_ledger",
    "record_movements",
    "release",
    "release_expired_reservations",
    "reserve",
    "set_channel_rule",
    "set_stock_policy",
    "stock_for_sku",
    "track_skus",
    "transfer",
]
