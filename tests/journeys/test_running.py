"""Journeys run by the worker: triggers enter people, waits and conditions route them,
exit rules and re-entry rules hold, versions stay put, and nothing is sent twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.journeys.models import JourneyInstance
from tests.journeys.helpers import Worker, journey, person, stats, template, track

CART = {
    "trigger": {"type": "event", "event": "Product Added"},
    "steps": [
        {"id": "wait", "type": "wait", "hours": 1, "next": "still-open"},
        {"id": "still-open", "type": "condition", "if": {"kind": "cart_open"},
         "yes": "send", "no": "done"},
        {"id": "send", "type": "send", "template": "relance", "with_cart": True},
        {"id": "done", "type": "exit", "reason": "cart emptied"},
    ],
    "exit": [{"event": "Order Completed"}],
    "reentry": {"mode": "always"},
}  # fmt: skip


def _cart_journey(db: Database, clock: ManualClock, **changes: Any) -> Worker:
    template(db, clock)
    journey(db, clock, {**CART, **changes})
    return Worker(db, clock)


def test_an_event_enters_the_person_who_gets_the_message_after_the_wait(
    db: Database, clock: ManualClock
) -> None:
    worker = _cart_journey(db, clock)
    person(db, clock)
    track(db, clock.now(), "Product Added", sku="ROBE-LIN-M", quantity=2)
    worker.run()
    assert stats(db)["wait"] == (1, 1, 0, 0)
    assert worker.box.emails == []
    clock.advance(timedelta(minutes=61))
    worker.run()
    assert len(worker.box.emails) == 1
    assert "ROBE-LIN-M x2" in worker.box.emails[0].text
    assert stats(db)["send"] == (1, 0, 1, 0)
    assert stats(db)["_"] == (1, 0, 1, 0)


def test_an_order_during_the_wait_exits_the_person(db: Database, clock: ManualClock) -> None:
    worker = _cart_journey(db, clock)
    person(db, clock)
    track(db, clock.now(), "Product Added", sku="ROBE-LIN-M")
    worker.run()
    clock.advance(timedelta(minutes=20))
    track(db, clock.now(), "Order Completed", order_id="o-1")
    worker.run()
    clock.advance(timedelta(hours=2))
    worker.run()
    assert worker.box.emails == []
    assert stats(db)["wait"] == (1, 0, 0, 1)


def test_the_condition_takes_the_no_branch_when_the_cart_was_emptied(
    db: Database, clock: ManualClock
) -> None:
    worker = _cart_journey(db, clock, exit=[])
    person(db, clock)
    track(db, clock.now(), "Product Added", sku="ROBE-LIN-M")
    track(db, clock.now(), "Product Removed", sku="ROBE-LIN-M")
    worker.run()
    clock.advance(timedelta(hours=1))
    worker.run()
    assert worker.box.emails == []
    assert stats(db)["still-open"][2] == 1
    assert stats(db)["done"] == (1, 0, 0, 1)


def test_rerunning_after_a_crash_between_two_steps_sends_nothing_twice(
    db: Database, clock: ManualClock
) -> None:
    worker = _cart_journey(db, clock)
    person(db, clock)
    track(db, clock.now(), "Product Added", sku="ROBE-LIN-M")
    worker.run()
    clock.advance(timedelta(hours=1))
    worker.run()
    # The move past the send is lost, as if the process died before recording it.
    with db.transaction() as session:
        session.execute(
            update(JourneyInstance).values(
                status="active", current_step="send", next_run_at=clock.now(), ended_at=None
            )
        )
    worker.run()
    assert len(worker.box.emails) == 1


def test_reentry_never_keeps_out_who_was_in_once(db: Database, clock: ManualClock) -> None:
    worker = _cart_journey(db, clock, reentry={"mode": "never"}, exit=[])
    person(db, clock)
    track(db, clock.now(), "Product Added", sku="A")
    worker.run()
    clock.advance(timedelta(hours=2))
    worker.run()
    track(db, clock.now(), "Product Added", sku="B")
    worker.run()
    assert stats(db)["_"] == (1, 0, 1, 0)


def test_reentry_after_days_lets_the_person_back_once_the_days_passed(
    db: Database, clock: ManualClock
) -> None:
    worker = _cart_journey(db, clock, reentry={"mode": "after_days", "days": 3}, exit=[])
    person(db, clock)
    for _ in range(2):
        track(db, clock.now(), "Product Added", sku="A")
        worker.run()
        clock.advance(timedelta(days=2))
        worker.run()
    assert stats(db)["_"][0] == 1
    clock.advance(timedelta(days=2))
    track(db, clock.now(), "Product Added", sku="A")
    worker.run()
    assert stats(db)["_"][0] == 2


def test_a_new_version_does_not_move_people_already_inside(
    db: Database, clock: ManualClock
) -> None:
    from parcours import journeys
    from parcours.core.audit import CLI_ACTOR

    worker = _cart_journey(db, clock, exit=[])
    person(db, clock)
    track(db, clock.now(), "Product Added", sku="A")
    worker.run()
    shorter = {**CART, "exit": [], "steps": [{"id": "send", "type": "send", "template": "relance"}]}
    with db.transaction() as session:
        changed = journeys.update_journey(session, clock.now(), CLI_ACTOR, "relance", shorter)
    assert changed.version == 2
    with db.transaction() as session:
        [instance] = session.query(JourneyInstance).all()
        assert (instance.version, instance.current_step) == (1, "wait")
    clock.advance(timedelta(hours=1))
    worker.run()
    with db.transaction() as session:
        [instance] = session.query(JourneyInstance).all()
        assert (instance.version, instance.status) == (1, "completed")
    assert len(worker.box.emails) == 1


def test_a_wait_for_an_event_takes_the_event_branch_or_the_timeout_branch(
    db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    journey(
        db,
        clock,
        {
            "trigger": {"type": "event", "event": "Signed Up"},
            "steps": [
                {
                    "id": "wait-order",
                    "type": "wait",
                    "until_event": "Order Completed",
                    "days": 3,
                    "next": "thanks",
                    "on_timeout": "nudge",
                },
                {"id": "thanks", "type": "tag", "tag": "bought"},
                {"id": "nudge", "type": "send", "template": "relance"},
            ],
        },
    )
    worker = Worker(db, clock)
    person(db, clock, "u1", "a@example.com")
    person(db, clock, "u2", "b@example.com")
    track(db, clock.now(), "Signed Up", "u1")
    track(db, clock.now(), "Signed Up", "u2")
    worker.run()
    clock.advance(timedelta(days=1))
    track(db, clock.now(), "Order Completed", "u1")
    worker.run()
    clock.advance(timedelta(days=3))
    worker.run()
    counts = stats(db)
    assert counts["thanks"][2] == 1
    assert counts["nudge"][2] == 1
    assert [e.to for e in worker.box.emails] == ["b@example.com"]


def test_a_persons_journeys_are_exported_erased_and_on_their_timeline(
    db: Database, clock: ManualClock
) -> None:
    from parcours import journeys
    from parcours.customers import TimelineQuery

    worker = _cart_journey(db, clock)
    profile_id = person(db, clock)
    track(db, clock.now(), "Product Added", sku="A")
    worker.run()
    [handler] = journeys.personal_data_handlers()
    [source] = journeys.timeline_sources()
    with db.transaction() as session:
        exported = handler.export(session, profile_id)
        timeline = source(session, TimelineQuery(profile_id, (), None, 10))
        assert handler.erase(session, clock.now(), profile_id) == 1
        assert handler.export(session, profile_id)["journey_instances"] == []
    assert [i["current_step"] for i in exported["journey_instances"]] == ["wait"]
    assert [(e.kind, e.detail["event"]) for e in timeline] == [("journey", "entered")]
