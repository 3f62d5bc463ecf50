"""Keeping memberships fresh: an incremental pass over what changed, and a full pass
for the windows that slide without any event.

The incremental pass reads the tracking log (customers' `events`, where order events
arrive too through the orders tracking consumer) after its own cursor, and the profiles
whose record, computed traits or consents changed since its last run. Only the segments
that depend on what changed (the event names they count, orders, profile traits, a used
segment whose members moved) are re-evaluated, for the touched profiles only, and every
such segment of a dependency level in ONE statement (over temporary tables holding the
touched profiles' event links and merge walk); a segment using another one runs in a
later level. Definitions are parsed once per segment version; the statements are built
ahead of the events (`warm`, at the start of the job when the catalogue or the store
network changed, and at the worker's first run), one per group of segments sharing a
trigger and per kind of pass, so that a pass only runs cached statements.
The tracking log is not the outbox, so this is a PeriodicJob run every second by the
worker, like the computed traits' `refresh_recent`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, Update, bindparam, select
from sqlalchemy.orm import Session

from parcours import customers
from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.events import PeriodicJob
from parcours.core.models import ConsumerCursor
from parcours.segments.service import (
    Entry,
    catalogue,
    keys_of,
    refresh_entries,
    refresh_everything,
    warm,
)

EVENTS_CURSOR = "segments@events"
# Its `updated_at` is the time up to which profile changes have been looked at.
CHANGES_CURSOR = "segments@profiles"
INCREMENTAL_EVERY_S = 1.0
FULL_EVERY_S = 3600.0


_CURSORS = cast(Table, ConsumerCursor.__table__)
_NAMES = (EVENTS_CURSOR, CHANGES_CURSOR)


@cache
def _read_cursors(dialect_name: str) -> Select[Any]:
    stmt = select(_CURSORS.c.consumer, _CURSORS.c.position, _CURSORS.c.updated_at).where(
        _CURSORS.c.consumer.in_(_NAMES)
    )
    return stmt.with_for_update() if dialect_name == "postgresql" else stmt


@cache
def _move_cursor() -> Update:
    return (
        _CURSORS.update()
        .where(_CURSORS.c.consumer == bindparam("name"))
        .values(position=bindparam("position"), updated_at=bindparam("now"))
    )


def _cursors(connection: Connection, now: datetime) -> tuple[int, int, datetime]:
    """(events position, changes position, profile changes time) of the pass's two
    cursors, locked on
    PostgreSQL; made at `now` when missing. Core statements built once: the ORM's
    objects cost a flush per pass."""
    found = {
        row.consumer: row for row in connection.execute(_read_cursors(connection.dialect.name))
    }
    missing = [name for name in _NAMES if name not in found]
    if missing:
        connection.execute(
            _CURSORS.insert(),
            [{"consumer": n, "position": 0, "updated_at": now, "failures": 0} for n in missing],
        )
    events = found.get(EVENTS_CURSOR)
    changes = found.get(CHANGES_CURSOR)
    return (
        events.position if events is not None else 0,
        changes.position if changes is not None else 0,
        changes.updated_at if changes is not None else now,
    )


def refresh_touched(session: Session, now: datetime) -> int:
    """One incremental pass in the caller's transaction; how many (segment, profile)
    re-evaluations it ran."""
    connection = session.connection()
    position, changes_position, changed_since = _cursors(connection, now)
    head = customers.event_log_head(session, now)
    by_events: set[uuid.UUID] = set()
    names: set[str] = set()
    if head > position:
        by_events = set(customers.touched_profiles(session, position, head))
        names = customers.logged_event_names(session, position, head)
    by_changes = set(customers.changed_profiles(session, changed_since, now))
    connection.execute(
        _move_cursor(),
        [
            {"name": EVENTS_CURSOR, "position": max(head, position), "now": now},
            {"name": CHANGES_CURSOR, "position": changes_position, "now": now},
        ],
    )
    touched = by_events | by_changes
    if not touched:
        return 0
    entries = catalogue(session)
    done = 0

    def wanted(entry: Entry, moved: Mapping[str, set[uuid.UUID]]) -> bool:
        nonlocal done
        deps = entry.deps
        profiles: set[uuid.UUID] = set()
        if deps.touched_by_events(names):
            profiles |= by_events
        if deps.profile:
            profiles |= by_changes
        for used in deps.segments:
            profiles |= moved.get(used, set())
        done += len(profiles)
        return bool(profiles)

    # Only the wanted segments of a level are evaluated, in one statement for every
    # touched profile (a profile evaluated without need keeps its membership, or gets it
    # right); the statement of each such set of segments is built once and cached.
    refresh_entries(session, now, entries, sorted(touched), wanted, keys_of(entries))
    return done


def refresh_recent(db: Database, clock: Clock) -> int:
    """The incremental pass in its own transaction (the worker's job), after building
    the statements of a catalogue this process has not warmed yet (its first run, or a
    segment or store changed since) in a transaction of their own, before any event is
    read."""
    with db.transaction() as session:
        warm(session, clock.now())
    with db.transaction() as session:
        return refresh_touched(session, clock.now())


def refresh_all(db: Database, clock: Clock) -> int:
    """Fully evaluate every segment in dependency order; how many segments."""
    with db.transaction() as session:
        return refresh_everything(session, clock.now())


def periodic_jobs() -> list[PeriodicJob]:
    return [
        PeriodicJob("segments.refresh_recent", INCREMENTAL_EVERY_S, refresh_recent),
        PeriodicJob("segments.refresh_all", FULL_EVERY_S, refresh_all),
    ]
