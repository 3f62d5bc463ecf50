"""Domain events: a transactional outbox read by consumers with durable cursors.

`publish(session, event)` adds the event to the caller's transaction, so an order and
its "Order Completed" event commit together or not at all. Consumers read the outbox in
`position` order; a consumer's handler work and its cursor move commit in one
transaction, which makes database side effects exactly-once. Effects outside the
database (an email, a webhook) are at-least-once: handlers key them on `event_id`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.ids import new_id
from parcours.core.models import ConsumerCursor, OutboxEvent

log = logging.getLogger("parcours.events")

MAX_ATTEMPTS = 5
# How long a hole in the position sequence may be an uncommitted transaction (PostgreSQL
# hands out sequence values before commit) before we treat it as a rolled-back insert.
GAP_GRACE_S = 10.0


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened, named in the past tense ("Order Completed")."""

    type: str
    payload: dict[str, Any]
    occurred_at: datetime
    event_id: uuid.UUID = field(default_factory=new_id)


def publish(session: Session, event: DomainEvent, now: datetime) -> None:
    """Append `event` to the outbox inside the caller's transaction."""
    session.add(
        OutboxEvent(
            event_id=event.event_id,
            type=event.type,
            payload=event.payload,
            occurred_at=event.occurred_at,
            recorded_at=now,
        )
    )


Handler = Callable[[Session, OutboxEvent], None]


@dataclass(frozen=True)
class Consumer:
    """A named reader of the outbox; `types` limits it to some event types (None: all)."""

    name: str
    handler: Handler
    types: frozenset[str] | None = None

    def wants(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types


def safe_prefix(
    after: int,
    positions: list[int],
    gap_first_seen: dict[int, float],
    now_mono: float,
    grace_s: float = GAP_GRACE_S,
) -> int:
    """How many of `positions` (ascending, all > `after`) may be processed now.

    A missing position may belong to a transaction that has not committed yet; we stop
    before it until it appears or `grace_s` has passed, then assume a rollback.
    """
    expected = after + 1
    for index, position in enumerate(positions):
        if position != expected:
            first_seen = gap_first_seen.setdefault(expected, now_mono)
            if now_mono - first_seen < grace_s:
                return index
            gap_first_seen.pop(expected, None)
        expected = position + 1
    return len(positions)


@dataclass
class ConsumerRun:
    """State one process keeps while running a consumer (gap sightings)."""

    consumer: Consumer
    gap_first_seen: dict[int, float] = field(default_factory=dict)


def try_locked_cursor(session: Session, name: str, now: datetime) -> ConsumerCursor | None:
    """The cursor `name`, created at 0 the first time, locked until the transaction ends;
    None on PostgreSQL while another transaction holds it, so that two workers never run
    the same reader at once and the loser skips its round instead of waiting. (SQLite
    runs one writing transaction at a time anyway.)"""
    named = ConsumerCursor.consumer == name
    if session.get_bind().dialect.name == "postgresql":
        stmt = select(ConsumerCursor).where(named).with_for_update(skip_locked=True)
    else:
        stmt = select(ConsumerCursor).where(named)
    cursor = session.scalar(stmt)
    if cursor is not None:
        return cursor
    if session.scalar(select(ConsumerCursor.consumer).where(named)) is not None:
        return None  # it exists: another transaction holds it (PostgreSQL)
    cursor = ConsumerCursor(consumer=name, position=0, updated_at=now, failures=0)
    session.add(cursor)
    session.flush()
    return cursor


def locked_cursor(
    session: Session, name: str, now: datetime, start: Callable[[], int] = lambda: 0
) -> ConsumerCursor:
    """The cursor `name` for a reader of a log other than the outbox (the tracking log),
    locked until the caller's transaction ends on PostgreSQL, created the first time at
    the position `start()` gives (called only then)."""
    stmt = select(ConsumerCursor).where(ConsumerCursor.consumer == name)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    cursor = session.scalar(stmt)
    if cursor is None:
        cursor = ConsumerCursor(consumer=name, position=start(), updated_at=now, failures=0)
        session.add(cursor)
        session.flush()
    return cursor


def process_batch(db: Database, run: ConsumerRun, clock: Clock, batch_size: int = 500) -> int:
    """Feed the next events to one consumer; returns how many positions it moved."""
    consumer = run.consumer
    with db.transaction() as session:
        now = clock.now()
        cursor = try_locked_cursor(session, consumer.name, now)
        if cursor is None:
            return 0
        rows = list(
            session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.position > cursor.position)
                .order_by(OutboxEvent.position)
                .limit(batch_size)
            )
        )
        if db.dialect == "postgresql":
            usable = safe_prefix(
                cursor.position, [r.position for r in rows], run.gap_first_seen, time.monotonic()
            )
            rows = rows[:usable]
        start = cursor.position
        for row in rows:
            if consumer.wants(row.type) and not _handle(session, consumer, cursor, row):
                break
            cursor.position = row.position
            cursor.failures = 0
        cursor.updated_at = now
        return cursor.position - start


def _handle(session: Session, consumer: Consumer, cursor: ConsumerCursor, row: OutboxEvent) -> bool:
    """Run the handler in a savepoint; False means stop here and retry later."""
    try:
        with session.begin_nested():
            consumer.handler(session, row)
        return True
    except Exception as exc:  # a handler bug must not stop the other consumers
        cursor.failures += 1
        cursor.last_error = f"position {row.position} ({row.type}): {type(exc).__name__}: {exc}"
        log.exception(
            "consumer failed",
            extra={"consumer": consumer.name, "position": row.position, "attempt": cursor.failures},
        )
        if cursor.failures >= MAX_ATTEMPTS:
            cursor.last_error = f"skipped after {MAX_ATTEMPTS} attempts: {cursor.last_error}"
            return True
        return False


def drain(db: Database, consumers: Iterable[Consumer], clock: Clock) -> int:
    """Run every consumer until none has pending events; returns positions moved."""
    runs = [ConsumerRun(c) for c in consumers]
    total = 0
    while True:
        moved = sum(process_batch(db, run, clock) for run in runs)
        total += moved
        if moved == 0:
            return total


@dataclass
class PeriodicJob:
    """Time-driven work the worker runs every `every_s` seconds (e.g. expiring
    reservations); `run` returns how many things it did, for the logs."""

    name: str
    every_s: float
    run: Callable[[Database, Clock], int]
    next_due: float = 0.0


def run_due_jobs(db: Database, clock: Clock, jobs: list[PeriodicJob], now_mono: float) -> int:
    """Run the jobs whose time has come; a failing job is logged and retried next time."""
    done = 0
    for job in jobs:
        if now_mono < job.next_due:
            continue
        job.next_due = now_mono + job.every_s
        try:
            done += job.run(db, clock)
        except Exception:
            log.exception("periodic job failed", extra={"job": job.name})
    return done


def run_worker(
    db: Database,
    consumers: list[Consumer],
    clock: Clock,
    stop: threading.Event,
    poll_s: float = 1.0,
    jobs: list[PeriodicJob] | None = None,
) -> None:
    """Loop until `stop` is set, sleeping `poll_s` whenever every consumer is idle."""
    runs = [ConsumerRun(c) for c in consumers]
    jobs = jobs or []
    log.info("worker started", extra={"consumers": [c.name for c in consumers]})
    while not stop.is_set():
        try:
            moved = sum(process_batch(db, run, clock) for run in runs)
        except Exception:  # e.g. the database restarting: log and keep polling
            log.exception("worker round failed")
            moved = 0
        run_due_jobs(db, clock, jobs, time.monotonic())
        if moved == 0:
            stop.wait(poll_s)
    log.info("worker stopped")


@dataclass(frozen=True)
class ConsumerStatus:
    consumer: str
    position: int
    lag: int
    last_error: str | None


def consumer_status(session: Session, consumers: Iterable[Consumer]) -> list[ConsumerStatus]:
    """Each consumer's cursor and how many events it still has to read."""
    head = session.scalar(select(func.max(OutboxEvent.position))) or 0
    cursors = {c.consumer: c for c in session.scalars(select(ConsumerCursor))}
    out = []
    for consumer in consumers:
        cursor = cursors.get(consumer.name)
        position = cursor.position if cursor else 0
        out.append(
            ConsumerStatus(
                consumer.name, position, head - position, cursor.last_error if cursor else None
            )
        )
    return out
