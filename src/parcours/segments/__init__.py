"""Segments context: audiences defined in JSON over traits, events, orders, RFM,
geography and consent, kept fresh in real time (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    from parcours.core.events import Consumer, PeriodicJob
    from parcours.customers import PersonalDataHandler, TimelineSource


def cli_app() -> typer.Typer:
    """The `parcours segments` command group."""
    from parcours.segments.cli import app

    return app


def consumers() -> list[Consumer]:
    """Outbox consumers of this context, run by the worker."""
    return []


def periodic_jobs() -> list[PeriodicJob]:
    """Time-driven jobs of this context, run by the worker."""
    return []


def personal_data_handlers() -> list[PersonalDataHandler]:
    """What this context holds about a person, for access exports and erasures."""
    return []


def timeline_sources() -> list[TimelineSource]:
    """What this context adds to a customer's timeline."""
    return []


def console_msgids() -> set[str]:
    """Words this context's pages translate from Python data (for the translation tests)."""
    return set()


__all__ = [
    "cli_app",
    "console_msgids",
    "consumers",
    "periodic_jobs",
    "personal_data_handlers",
    "timeline_sources",
]
