"""A select compiled once to the driver's text: constants processed once, times and
profile ids bound at each run, never spliced into the text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select

from parcours import customers
from parcours.core.clock import ManualClock
from parcours.core.db import Database, UTCDateTime, UUIDType
from parcours.customers.models import Customer
from parcours.segments.prepared import prepare

NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_a_prepared_select_binds_constants_times_and_padded_profile_ids(db: Database) -> None:
    clock = ManualClock(NOW)
    with db.transaction() as session:
        ids = customers.add_customers(
            session,
            NOW - timedelta(days=3),
            [{"email": "a@example.com", "city": "Lyon'; --"}, {"email": "b@example.com"}],
        )
        slots = [bindparam(f"pid{i}", None, type_=UUIDType) for i in range(4)]
        since = bindparam("t0", NOW, type_=UTCDateTime())
        statement = select(Customer.id, Customer.city).where(
            Customer.id.in_(slots),
            Customer.city.in_(["Lyon'; --", "Paris"]),
            Customer.created_at <= since,
        )
        prepared = prepare(
            statement,
            session.get_bind().dialect,
            {"t0": lambda now: now},
            [f"pid{i}" for i in range(4)],
        )
        assert "Lyon" not in prepared.sql  # every value is a bound parameter
        rows = prepared.rows(session, clock.now(), ids)
        assert rows == [(ids[0], "Lyon'; --")]
        assert isinstance(rows[0][0], uuid.UUID)
        assert prepared.rows(session, NOW - timedelta(days=5), ids) == []  # time rebound
        assert prepared.rows(session, NOW, [ids[1]]) == []
