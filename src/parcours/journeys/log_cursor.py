"""Where journeys read the tracking log from: a cursor that starts at the log's head when
the first journey is activated, so years of past events never trigger a journey that did
not exist when they happened."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from parcours import customers
from parcours.core.events import locked_cursor
from parcours.core.models import ConsumerCursor

EVENTS_CURSOR = "journeys@events"


def events_cursor(session: Session, now: datetime) -> ConsumerCursor:
    """The journeys' position in the tracking log (locked on PostgreSQL), created at the
    current head the first time."""
    return locked_cursor(
        session, EVENTS_CURSOR, now, start=lambda: customers.event_log_head(session, now)
    )
