"""Where journeys read the tracking log from: a cursor that starts at the log's head when
the first journey is activated, so years of past events never trigger a journey that did
not exist when they happened."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours import customers
from parcours.core.models import ConsumerCursor

EVENTS_CURSOR = "journeys@events"


def events_cursor(session: Session, now: datetime) -> ConsumerCursor:
    """The journeys' position in the tracking log (locked on PostgreSQL), created at the
    current head the first time."""
    stmt = select(ConsumerCursor).where(ConsumerCursor.consumer == EVENTS_CURSOR)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    cursor = session.scalar(stmt)
    if cursor is None:
        head = customers.event_log_head(session)
        cursor = ConsumerCursor(consumer=EVENTS_CURSOR, position=head, updated_at=now, failures=0)
        session.add(cursor)
        session.flush()
    return cursor
