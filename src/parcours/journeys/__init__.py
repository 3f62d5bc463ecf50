"""Journeys context: automated, multi-step customer journeys (abandoned cart, birthday,
post-purchase survey, back in stock, drive-to-store, welcome, win-back) with durable
state run by the worker; they orchestrate segments, engagement and loyalty (facade).

A journey is a JSON definition (docs/journeys.md): a trigger, ordered steps with ids,
exit rules and a re-entry rule. Saving a change makes a new version; people already
inside finish on theirs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.journeys.engine import Actions
from parcours.journeys.ready_made import Installed, install_ready_made
from parcours.journeys.service import (
    JourneyStats,
    JourneyView,
    StepCount,
    count_active_journeys,
    create_journey,
    get_journey,
    journey_stats,
    list_instances,
    list_journeys,
    set_status,
    update_journey,
)
from parcours.journeys.worker import run_all, run_due

if TYPE_CHECKING:
    import typer

    from parcours.core.clock import Clock
    from parcours.core.events import Consumer, PeriodicJob
    from parcours.customers import PersonalDataHandler, TimelineSource


def cli_app() -> typer.Typer:
    """The `parcours journeys` command group."""
    from parcours.journeys.cli import app

    return app


def consumers(clock: Clock | None = None) -> list[Consumer]:
    """Outbox consumers of this context, run by the worker: `Segment Entered` and
    `Segment Exited` (segment triggers and exit rules) and `Back In Stock` (inventory).
    `clock` stamps entries (default: the system clock)."""
    from parcours.journeys.worker import journey_consumer

    return [journey_consumer(clock)]


def periodic_jobs(actions: Actions | None = None) -> list[PeriodicJob]:
    """Time-driven jobs of this context, run by the worker: the tracking-log reader
    (event and geo triggers, exit events, awaited events; every 2 s), date triggers
    (every 10 min) and the due instances (every 5 s). `actions` holds the engagement
    outlets (default: from the settings)."""
    from parcours.journeys.worker import periodic_jobs as jobs

    return jobs(actions)


def personal_data_handlers() -> list[PersonalDataHandler]:
    """What this context holds about a person: their journey instances, step log and
    tags (exported; erased)."""
    from parcours.journeys.privacy import personal_data_handler

    return [personal_data_handler()]


def timeline_sources() -> list[TimelineSource]:
    """Journeys entered and left, on the customer's timeline."""
    from parcours.journeys.privacy import timeline_source

    return [timeline_source]


def console_msgids() -> set[str]:
    """Words this context's pages translate from Python data (for the translation tests)."""
    from parcours.journeys.pages import MSGIDS

    return set(MSGIDS)


__all__ = [
    "Actions",
    "Installed",
    "JourneyStats",
    "JourneyView",
    "StepCount",
    "cli_app",
    "console_msgids",
    "consumers",
    "count_active_journeys",
    "create_journey",
    "get_journey",
    "install_ready_made",
    "journey_stats",
    "list_instances",
    "list_journeys",
    "periodic_jobs",
    "personal_data_handlers",
    "run_all",
    "run_due",
    "set_status",
    "timeline_sources",
    "update_journey",
]
