"""Orders context: carts and checkout, orders from every channel, fulfilment, payments
and returns (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.orders.carts import (
    NoPromotions,
    OpenCart,
    OpenCartLine,
    PricedCart,
    PricedLine,
    PromotionHook,
    PromotionResult,
    open_cart_lines,
    open_carts,
    set_promotion_hook,
)
from parcours.orders.facts import (
    customer_order_lines,
    customer_orders,
    order_facts,
    sales_line_facts,
    settled_orders,
)
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
from parcours.orders.service import (
    ORDER_CANCELLED,
    ORDER_COMPLETED,
    ORDER_EVENT_TYPES,
    ORDER_REFUNDED,
    find_order,
    get_order,
    order_segment_ids,
    tracking_consumer,
)

if TYPE_CHECKING:
    import typer


def cli_app() -> typer.Typer:
    """The `parcours orders` command group."""
    from parcours.orders.cli import app

    return app


def console_msgids() -> set[str]:
    """Words this context's pages translate from Python data (for the translation tests)."""
    from parcours.orders.account_pages import MESSAGES
    from parcours.orders.pages import CONSOLE_MSGIDS

    return {*CONSOLE_MSGIDS, *MESSAGES}


__all__ = [
    "EXPIRE_PICKUPS_JOB",
    "FULFILMENT_MODES",
    "FULFILMENT_STATUSES",
    "ORDER_CANCELLED",
    "ORDER_CHANNELS",
    "ORDER_COMPLETED",
    "ORDER_EVENT_TYPES",
    "ORDER_REFUNDED",
    "ORDER_STATUSES",
    "PAYMENT_STATUSES",
    "RETURN_CONDITIONS",
    "RETURN_REASONS",
    "NoPromotions",
    "OpenCart",
    "OpenCartLine",
    "PastLine",
    "PastOrder",
    "PricedCart",
    "PricedLine",
    "PromotionHook",
    "PromotionResult",
    "cli_app",
    "console_msgids",
    "customer_order_lines",
    "customer_orders",
    "expire_pickups_job",
    "find_order",
    "get_order",
    "load_history",
    "load_history_frames",
    "notification_consumer",
    "open_cart_lines",
    "open_carts",
    "order_facts",
    "order_segment_ids",
    "personal_data_handler",
    "sales_line_facts",
    "set_promotion_hook",
    "settled_orders",
    "tracking_consumer",
]
