from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours.core import events
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.events import Consumer, DomainEvent, consumer_status, drain, publish, safe_prefix
from parcours.core.models import AuditEntry, OutboxEvent


def _publish(db: Database, clock: ManualClock, n: int, event_type: str = "Thing Happened") -> None:
    with db.transaction() as session:
        for i in range(n):
            publish(session, DomainEvent(event_type, {"i": i}, clock.now()), clock.now())


def _recorder(seen: list[int]) -> Consumer:
    def handle(session: Session, event: OutboxEvent) -> None:
        seen.append(event.payload["i"])

    return Consumer("recorder", handle)


def test_an_event_commits_or_rolls_back_with_the_business_change(
    db: Database, clock: ManualClock
) -> None:
    def place_order_that_fails() -> None:
        with db.transaction() as session:
            session.add(
                AuditEntry(at=clock.now(), actor="a", action="b", target_type="c", detail={})
            )
            publish(session, DomainEvent("Order Placed", {}, clock.now()), clock.now())
            raise RuntimeError("the order failed")

    with pytest.raises(RuntimeError):
        place_order_that_fails()
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_consumers_read_in_order_and_resume_from_their_cursor(
    db: Database, clock: ManualClock
) -> None:
    seen: list[int] = []
    _publish(db, clock, 3)
    assert drain(db, [_recorder(seen)], clock) == 3
    _publish(db, clock, 2)
    drain(db, [_recorder(seen)], clock)  # a new process: the cursor is in the database
    drain(db, [_recorder(seen)], clock)
    assert seen == [0, 1, 2, 0, 1]


def test_handler_work_and_cursor_commit_together(db: Database, clock: ManualClock) -> None:
    def write_audit(session: Session, event: OutboxEvent) -> None:
        session.add(
            AuditEntry(
                at=clock.now(),
                actor="system:test",
                action="seen",
                target_type="event",
                target_id=str(event.position),
                detail={},
            )
        )

    _publish(db, clock, 4)
    consumer = Consumer("auditor", write_audit)
    drain(db, [consumer], clock)
    drain(db, [consumer], clock)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 4
        status = consumer_status(session, [consumer])
    assert status[0].lag == 0
    assert status[0].position == 4


def test_a_failing_handler_is_retried_then_skipped_and_others_go_on(
    db: Database, clock: ManualClock
) -> None:
    attempts: list[int] = []
    seen: list[int] = []

    def flaky(session: Session, event: OutboxEvent) -> None:
        if event.payload["i"] == 1:
            attempts.append(1)
            raise ValueError("poison")
        seen.append(event.payload["i"])

    _publish(db, clock, 3)
    consumer = Consumer("flaky", flaky)
    for _ in range(events.MAX_ATTEMPTS):
        drain(db, [consumer, _recorder(others := [])], clock)
    assert len(attempts) == events.MAX_ATTEMPTS
    assert seen == [0, 2]
    with db.transaction() as session:
        status = {s.consumer: s for s in consumer_status(session, [consumer])}
    assert "skipped after 5 attempts" in (status["flaky"].last_error or "")
    del others


def test_consumers_only_see_the_types_they_ask_for(db: Database, clock: ManualClock) -> None:
    seen: list[int] = []
    _publish(db, clock, 2, "Order Placed")
    _publish(db, clock, 2, "Stock Changed")
    consumer = Consumer("orders", _recorder(seen).handler, frozenset({"Order Placed"}))
    drain(db, [consumer], clock)
    assert seen == [0, 1]


def test_a_gap_in_positions_holds_the_cursor_until_the_grace_period_ends() -> None:
    first_seen: dict[int, float] = {}
    # Position 3 is missing: maybe an open transaction. Only 1 and 2 are safe.
    assert safe_prefix(0, [1, 2, 4, 5], first_seen, now_mono=100.0, grace_s=10) == 2
    assert safe_prefix(2, [4, 5], first_seen, now_mono=105.0, grace_s=10) == 0
    # Still missing after the grace period: it was a rollback, move on.
    assert safe_prefix(2, [4, 5], first_seen, now_mono=111.0, grace_s=10) == 2
    assert safe_prefix(0, [1, 2, 3], {}, now_mono=0.0) == 3


def test_worker_status_shows_lag(db: Database, clock: ManualClock) -> None:
    _publish(db, clock, 5)
    clock.advance(timedelta(seconds=1))
    with db.transaction() as session:
        status = consumer_status(session, [_recorder([])])
    assert status[0].lag == 5
    assert status[0].position == 0


def test_a_worker_skips_a_consumer_another_worker_is_running(
    db: Database, clock: ManualClock
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: no two workers overlap")
    seen: list[int] = []
    consumer = _recorder(seen)
    _publish(db, clock, 2)
    drain(db, [consumer], clock)
    _publish(db, clock, 1)
    with db.transaction() as other_worker:
        assert events.try_locked_cursor(other_worker, consumer.name, clock.now()) is not None
        assert events.process_batch(db, events.ConsumerRun(consumer), clock) == 0  # no wait
    assert drain(db, [consumer], clock) == 1
    assert seen == [0, 1, 0]
