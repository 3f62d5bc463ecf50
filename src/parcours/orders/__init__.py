"""Orders context: carts and checkout, orders from every channel, fulfilment, payments
and returns (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.orders.facts import order_facts, sales_line_facts
from parcours.orders.history import PastLine, PastOrder, load_history, load_history_frames
from parcours.orders.lifecycle import EXPIRE_PICKUPS_JOB, expire_pickups_job
from parcours.orders.models import (
    FULFILMENT_MODES,
    FULFILMENT_STATUSES,
    ORDER_CHANNELS,
    ORDER_STATUSES,
    PAYMENT_STATUSES,
    RETURN_CONDITIONS,
    RETURN_REASONS,
)
from parcours.orders.notifications import notification_consumer
from parcours.orders.privacy import personal_data_handler
from parcours.orders.service import ORDER_EVENT_TYPES, find_order, get_order, tracking_consumer

if TYPE_CHECKING:
    import typer


def cli_app() -> typer.Typer:
    """The `parcours orders` command group."""
    from parcours.orders.cli import app

    return app


__all__ = [
    "EXPIRE_PICKUPS_JOB",
    "FULFILMENT_MODES",
    "FULFILMENT_STATUSES",
    "ORDER_CHANNELS",
    "ORDER_EVENT_TYPES",
    "ORDER_STATUSES",
    "PAYMENT_STATUSES",
    "RETURN_CONDITIONS",
    "RETURN_REASONS",
    "PastLine",
    "PastOrder",
    "cli_app",
    "expire_pickups_job",
    "find_order",
    "get_order",
    "load_history",
    "load_history_frames",
    "notification_consumer",
    "order_facts",
    "personal_data_handler",
    "sales_line_facts",
    "tracking_consumer",
]
