"""Loyalty and offers context: promotions, promo codes (unique single-use and shared)
and the loyalty programme with its append-only points ledger (facade)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from parcours.core.errors import NotFound
from parcours.loyalty.offers import (
    APPLIED,
    CodeCheck,
    IssuedCode,
    PromotionEngine,
    add_shared_code,
    check_code,
    generate_codes,
    issue_code,
)
from parcours.loyalty.programme import (
    LoyaltyStatus,
    award_points,
    count_members,
    credit_past_orders,
    points_balance,
)
from parcours.loyalty.promotions import Basket, BasketLine, get_promotion
from parcours.loyalty.promotions import add_promotion as _add_promotion

if TYPE_CHECKING:
    import typer
    from sqlalchemy.orm import Session

    from parcours.core.events import Consumer, PeriodicJob
    from parcours.customers import PersonalDataHandler, TimelineSource


def cli_app() -> typer.Typer:
    """The `parcours loyalty` command group."""
    from parcours.loyalty.cli import app

    return app


def promotion_engine() -> PromotionEngine:
    """The promotions engine to install in orders (`orders.set_promotion_hook`): automatic
    promotions and the cart's codes when a cart is priced; the codes redeemed, atomically,
    when its order is placed (409 naming a code used meanwhile)."""
    return PromotionEngine()


def add_promotion(session: Session, now: datetime, data: dict[str, Any]) -> str:
    """Create a promotion from its JSON description (as `POST /v1/promotions` takes it);
    returns its key. Raises InvalidInput naming each bad field, Conflict for a key in
    use."""
    return _add_promotion(session, now, data).key


def has_promotion(session: Session, key: str) -> bool:
    """Whether a promotion with this key exists (active or not)."""
    try:
        get_promotion(session, key)
    except NotFound:
        return False
    return True


def consumers() -> list[Consumer]:
    """Outbox consumers of this context, run by the worker: points from orders."""
    from parcours.loyalty.programme import points_consumer

    return [points_consumer()]


def periodic_jobs() -> list[PeriodicJob]:
    """Time-driven jobs of this context, run by the worker: points expiry (FIFO)."""
    from parcours.loyalty.programme import expiry_job

    return [expiry_job()]


def personal_data_handlers() -> list[PersonalDataHandler]:
    """What this context holds about a person, for access exports and erasures."""
    from parcours.loyalty.privacy import personal_data_handler

    return [personal_data_handler()]


def timeline_sources() -> list[TimelineSource]:
    """What this context adds to a customer's timeline: points earned and spent."""
    from parcours.loyalty.privacy import timeline_source

    return [timeline_source]


def console_msgids() -> set[str]:
    """Words this context's pages translate from Python data (for the translation tests)."""
    from parcours.loyalty.pages import CONSOLE_MSGIDS

    return set(CONSOLE_MSGIDS)


__all__ = [
    "APPLIED",
    "Basket",
    "BasketLine",
    "CodeCheck",
    "IssuedCode",
    "LoyaltyStatus",
    "PromotionEngine",
    "add_promotion",
    "add_shared_code",
    "award_points",
    "check_code",
    "cli_app",
    "console_msgids",
    "consumers",
    "count_members",
    "credit_past_orders",
    "generate_codes",
    "has_promotion",
    "issue_code",
    "periodic_jobs",
    "personal_data_handlers",
    "points_balance",
    "promotion_engine",
    "timeline_sources",
]
