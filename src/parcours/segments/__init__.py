"""Segments context: audiences defined in JSON over traits, events, orders, RFM,
geography and consent, kept fresh in real time (facade).

Other contexts (campaigns, journeys) use segments through these functions; membership
changes reach them as `Segment Entered` / `Segment Exited` domain events in the outbox,
payload `{"segment_id", "segment_key", "profile_id"}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.segments.realtime import refresh_all, refresh_recent
from parcours.segments.service import (
    SEGMENT_ENTERED,
    SEGMENT_EXITED,
    MembershipChange,
    Preview,
    SegmentInfo,
    count_segments,
    create_segment,
    delete_segment,
    find_segment,
    is_member,
    list_segments,
    members_of,
    preview,
    refresh_segment,
    update_segment,
)

if TYPE_CHECKING:
    import typer

    from parcours.core.events import Consumer, PeriodicJob
    from parcours.customers import PersonalDataHandler, TimelineSource


def cli_app() -> typer.Typer:
    """The `parcours segments` command group."""
    from parcours.segments.cli import app

    return app


def consumers() -> list[Consumer]:
    """Outbox consumers of this context: none; order events reach segments through the
    tracking log, which `periodic_jobs` reads with its own cursor."""
    return []


def periodic_jobs() -> list[PeriodicJob]:
    """Time-driven jobs of this context, run by the worker: the incremental refresh
    every second, a full re-evaluation every hour (time windows slide without events)."""
    from parcours.segments.realtime import periodic_jobs as jobs

    return jobs()


def personal_data_handlers() -> list[PersonalDataHandler]:
    """What this context holds about a person, for access exports and erasures: the
    segments a profile is in (memberships)."""
    from parcours.segments.privacy import personal_data_handler

    return [personal_data_handler()]


def timeline_sources() -> list[TimelineSource]:
    """What this context adds to a customer's timeline."""
    return []


def console_msgids() -> set[str]:
    """Words this context's pages translate from Python data (for the translation tests)."""
    from parcours.segments.pages import MSGIDS

    return set(MSGIDS)


__all__ = [
    "SEGMENT_ENTERED",
    "SEGMENT_EXITED",
    "MembershipChange",
    "Preview",
    "SegmentInfo",
    "cli_app",
    "console_msgids",
    "consumers",
    "count_segments",
    "create_segment",
    "delete_segment",
    "find_segment",
    "is_member",
    "list_segments",
    "members_of",
    "periodic_jobs",
    "personal_data_handlers",
    "preview",
    "refresh_all",
    "refresh_recent",
    "refresh_segment",
    "timeline_sources",
    "update_segment",
]
