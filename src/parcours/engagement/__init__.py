"""Engagement context: message templates, sends on every channel under one set of rules
(consent, frequency caps, quiet hours), the delivery log and campaigns (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.engagement.campaigns import (
    CampaignInput,
    Variant,
    conversions,
    create_campaign,
    results,
)
from parcours.engagement.channels import (
    LoggingPushGateway,
    LoggingSmsGateway,
    Outlets,
    PushGateway,
    SmsGateway,
    WebhookPoster,
)
from parcours.engagement.context import BestSellers, CartSource, OrdersCartSource, Recommender
from parcours.engagement.jobs import run_due
from parcours.engagement.sending import (
    SendOutcome,
    SendRequest,
    record_click,
    record_open,
    send_batch,
    send_message,
    send_messages,
)
from parcours.engagement.templates_service import TemplateInput, get_template, save_template

if TYPE_CHECKING:
    import typer

    from parcours.core.events import Consumer, PeriodicJob
    from parcours.customers import PersonalDataHandler, TimelineSource


def cli_app() -> typer.Typer:
    """The `parcours engagement` command group."""
    from parcours.engagement.cli import app

    return app


def consumers() -> list[Consumer]:
    """Outbox consumers of this context, run by the worker (none: sends are direct)."""
    return []


def periodic_jobs() -> list[PeriodicJob]:
    """Time-driven jobs of this context: due campaigns, then queued and deferred
    messages whose time has come (every 30 s)."""
    from parcours.engagement.jobs import deliveries_job

    return [deliveries_job()]


def personal_data_handlers() -> list[PersonalDataHandler]:
    """A person's deliveries in access exports; erasure pseudonymises them."""
    from parcours.engagement.deliveries import personal_data_handler

    return [personal_data_handler()]


def timeline_sources() -> list[TimelineSource]:
    """The messages sent to (or refused for) a customer, on their timeline."""
    from parcours.engagement.deliveries import timeline_source

    return [timeline_source]


def console_msgids() -> set[str]:
    """Words this context's pages translate from Python data (for the translation tests)."""
    from parcours.engagement.pages import console_msgids as words

    return words()


__all__ = [
    "BestSellers",
    "CampaignInput",
    "CartSource",
    "LoggingPushGateway",
    "LoggingSmsGateway",
    "OrdersCartSource",
    "Outlets",
    "PushGateway",
    "Recommender",
    "SendOutcome",
    "SendRequest",
    "SmsGateway",
    "TemplateInput",
    "Variant",
    "WebhookPoster",
    "cli_app",
    "console_msgids",
    "consumers",
    "conversions",
    "create_campaign",
    "get_template",
    "periodic_jobs",
    "personal_data_handlers",
    "record_click",
    "record_open",
    "results",
    "run_due",
    "save_template",
    "send_batch",
    "send_message",
    "send_messages",
    "timeline_sources",
]
