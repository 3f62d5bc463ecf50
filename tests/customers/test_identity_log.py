"""Identity reads the tracking log: after ingestion, once per event, before the log's
other readers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select, text, update

from parcours import customers
from parcours.core.audit import SYSTEM_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.migrate import alembic_config, upgrade
from parcours.core.models import ConsumerCursor
from parcours.customers import identity, identity_log, privacy, tracking
from parcours.customers.models import EventSender, TrackedEvent
from tests.builders import event_row

WAITING_FOR_AN_ADVISORY_LOCK = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
)


def identify(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"u-{n}",
        "anonymousId": f"a-{n}",
        "messageId": f"i-{n}",
        "traits": {"email": f"client{n}@example.com"},
        **extra,
    }


def ingest(db: Database, clock: ManualClock, *messages: dict[str, Any]) -> None:
    with db.transaction() as session:
        result = customers.ingest_messages(session, clock.now(), list(messages))
        assert not result.rejected


def profile_of(db: Database, kind: str, value: str) -> Any:
    with db.transaction() as session:
        return identity.resolve(session, kind, value)


def pending(db: Database) -> int:
    with db.transaction() as session:
        return customers.pending_events(session)


def test_ingestion_writes_the_log_and_identity_reads_it_afterwards(
    db: Database, clock: ManualClock
) -> None:
    ingest(db, clock, identify(1), {"type": "track", "event": "Viewed", "anonymousId": "a-9"})
    assert profile_of(db, "user_id", "u-1") is None
    assert pending(db) == 2
    assert identity_log.resolve_job(db, clock) == 2
    assert pending(db) == 0
    profile = profile_of(db, "user_id", "u-1")
    assert profile is not None
    assert profile_of(db, "email", "client1@example.com") == profile
    assert profile_of(db, "anonymous_id", "a-1") == profile


def test_each_logged_event_is_read_once(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []
    observe = identity.observe

    def recorded(session: Any, now: Any, observations: Any) -> Any:
        seen.extend(o.reference for o in observations)
        return observe(session, now, observations)

    monkeypatch.setattr(identity, "observe", recorded)
    ingest(db, clock, identify(1))
    identity_log.resolve_job(db, clock)
    ingest(db, clock, identify(1), identify(2))  # i-1 replayed: not stored again
    identity_log.resolve_job(db, clock)
    assert identity_log.resolve_job(db, clock) == 0
    assert seen == ["i-1", "i-2"]


def test_a_pass_reads_at_most_its_number_of_positions_per_transaction(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(db, clock, *[identify(n) for n in range(5)])
    with db.transaction() as session:
        assert customers.resolve_logged_events(session, clock.now(), limit=2) == 2
    assert profile_of(db, "user_id", "u-1") is not None
    assert profile_of(db, "user_id", "u-2") is None
    transactions = 0
    real = db.transaction

    def counted() -> Any:
        nonlocal transactions
        transactions += 1
        return real()

    monkeypatch.setattr(identity_log, "PASS_EVENTS", 2)
    monkeypatch.setattr(db, "transaction", counted)
    assert identity_log.resolve_job(db, clock) == 3
    assert transactions == 3  # positions 3-4, 5, then nothing left
    assert profile_of(db, "user_id", "u-4") is not None


def test_the_logs_readers_read_only_what_identity_has_read(
    db: Database, clock: ManualClock
) -> None:
    ingest(db, clock, identify(1), identify(2))
    with db.transaction() as session:
        head = session.scalar(select(TrackedEvent.seq).order_by(TrackedEvent.seq.desc()))
        assert customers.event_log_head(session, clock.now()) == head
    assert pending(db) == 0  # the head was given after identity had read up to it
    assert profile_of(db, "user_id", "u-2") is not None


def test_an_erasure_finds_the_ids_of_events_identity_has_not_read_yet(
    db: Database, clock: ManualClock
) -> None:
    ingest(db, clock, identify(1))
    identity_log.resolve_job(db, clock)
    profile = profile_of(db, "user_id", "u-1")
    ingest(
        db,
        clock,
        {"type": "track", "event": "Viewed", "anonymousId": "a-2", "messageId": "t-1"},
        {"type": "page", "name": "/", "userId": "u-1", "anonymousId": "a-2", "messageId": "p-1"},
    )
    with db.transaction() as session:
        report = privacy.erase_person(session, clock.now(), SYSTEM_ACTOR, profile)
    assert report.counts["events"] == 3  # a-2's page view linked it to the person first
    with db.transaction() as session:
        assert session.scalars(select(TrackedEvent.message_id)).all() == []


def filed(db: Database) -> list[tuple[str, str, str]]:
    with db.transaction() as session:
        rows = session.execute(
            select(EventSender.kind, EventSender.value, TrackedEvent.message_id)
            .join(TrackedEvent, TrackedEvent.seq == EventSender.seq)
            .order_by(EventSender.kind, EventSender.value, TrackedEvent.message_id)
        )
        return [tuple(row) for row in rows]


def test_identity_files_each_event_it_reads_under_its_sender_ids(
    db: Database, clock: ManualClock
) -> None:
    ingest(
        db,
        clock,
        identify(1),
        {"type": "track", "event": "Viewed", "anonymousId": "a-9", "messageId": "t-1"},
        {"type": "alias", "userId": "u-2", "previousId": "a-9", "messageId": "al-1"},
    )
    assert filed(db) == []  # ingestion writes no index by sender
    identity_log.resolve_job(db, clock)
    assert filed(db) == [
        ("anonymous_id", "a-1", "i-1"),
        ("anonymous_id", "a-9", "t-1"),
        ("user_id", "u-1", "i-1"),
        ("user_id", "u-2", "al-1"),
    ]


def test_a_senders_events_are_found_whether_identity_has_filed_them_or_not(
    db: Database, clock: ManualClock
) -> None:
    ingest(db, clock, {"type": "track", "event": "A", "anonymousId": "a-1", "messageId": "t-1"})
    identity_log.resolve_job(db, clock)
    ingest(
        db,
        clock,
        {"type": "track", "event": "B", "anonymousId": "a-1", "messageId": "t-2"},
        {"type": "track", "event": "C", "anonymousId": "a-2", "messageId": "t-3"},
    )
    wanted = identity_log.sender_events({"anonymous_id": ["a-1"]})
    with db.transaction() as session:
        found = session.scalars(select(TrackedEvent.message_id).where(wanted)).all()
        page = tracking.list_events(
            session, clock.now(), SYSTEM_ACTOR, tracking.EventFilter(anonymous_id="a-1")
        )
    assert sorted(found) == ["t-1", "t-2"]
    assert [e["message_id"] for e in page.items] == ["t-1", "t-2"]


def test_an_erasure_leaves_no_sender_id_filed(db: Database, clock: ManualClock) -> None:
    ingest(db, clock, identify(1), identify(2))
    identity_log.resolve_job(db, clock)
    profile = profile_of(db, "user_id", "u-1")
    with db.transaction() as session:
        privacy.erase_person(session, clock.now(), SYSTEM_ACTOR, profile)
    with db.transaction() as session:
        left = session.execute(select(EventSender.kind, EventSender.value)).all()
    assert sorted(left) == [("anonymous_id", "a-2"), ("user_id", "u-2")]


def test_an_event_identity_cannot_read_is_skipped_and_named_not_blocking_the_others(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    observe = identity.observe

    def failing(session: Any, now: Any, observations: Any) -> Any:
        if any(o.reference == "i-2" for o in observations):
            raise RuntimeError("a bug")
        return observe(session, now, observations)

    monkeypatch.setattr(identity, "observe", failing)
    ingest(db, clock, identify(1), identify(2), identify(3))
    with db.transaction() as session:
        assert customers.event_log_head(session, clock.now()) == 3  # the readers go on
    assert profile_of(db, "user_id", "u-1") is not None
    assert profile_of(db, "user_id", "u-2") is None
    assert profile_of(db, "user_id", "u-3") is not None
    with db.transaction() as session:
        cursor = session.get(ConsumerCursor, identity_log.CURSOR)
        assert cursor is not None
        assert (cursor.failures, cursor.last_error) == (1, "skipped event i-2: RuntimeError")


def test_inserts_into_the_log_take_turns_until_commit_on_postgresql(
    db: Database, clock: ManualClock
) -> None:
    """Else an event numbered 10 could commit after one numbered 11 that a reader had
    already passed, and identity would never read it."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite transactions hold its write lock: inserts take turns anyway")
    done = threading.Event()

    def second() -> None:
        ingest(db, clock, identify(2))
        done.set()

    with db.transaction() as first:
        customers.ingest_messages(first, clock.now(), [identify(1)])
        worker = threading.Thread(target=second)
        worker.start()
        waiting = 0
        for _ in range(100):  # until the second insert waits for the first's lock
            with db.engine.connect() as probe:
                waiting = probe.scalar(WAITING_FOR_AN_ADVISORY_LOCK)
            if waiting:
                break
            time.sleep(0.05)
        assert waiting == 1
        assert not done.is_set()
    worker.join(timeout=30)
    assert done.is_set()
    with db.transaction() as session:
        logged = session.execute(select(TrackedEvent.message_id).order_by(TrackedEvent.seq))
        assert list(logged.scalars()) == ["i-1", "i-2"]


def test_migrating_files_the_events_identity_had_read_and_it_files_the_rest(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Migration 0024 on a log written before it: the events up to identity's position
    are filed from the log; the reader files the others on its next pass."""
    db = Database.connect(f"sqlite:///{tmp_path / 'before-0024.db'}")
    config = alembic_config()
    with db.engine.connect() as conn:
        config.attributes["connection"] = conn
        with conn.begin():
            command.upgrade(config, "0023")
    rows = [
        event_row(clock.now(), user_id="u-1", anonymous_id="a-1"),
        event_row(clock.now(), anonymous_id="a-2"),
        event_row(clock.now(), anonymous_id="a-3"),
    ]
    with db.engine.begin() as conn:
        conn.execute(insert(TrackedEvent), rows)
        conn.execute(
            update(ConsumerCursor)
            .where(ConsumerCursor.consumer == identity_log.CURSOR)
            .values(position=2)
        )
    upgrade(db)
    with db.transaction() as session:
        filed = session.execute(select(EventSender.value, EventSender.seq)).all()
        assert sorted(filed) == [("a-1", 1), ("a-2", 2), ("u-1", 1)]
    identity_log.resolve_job(db, clock)
    with db.transaction() as session:
        assert ("a-3", 3) in session.execute(select(EventSender.value, EventSender.seq)).all()
    db.dispose()
