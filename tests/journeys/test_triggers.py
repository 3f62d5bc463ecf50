"""Each trigger kind enters the right people once: segment entry, a date trait at a
local hour, entering a store's radius, a product back in stock at the preferred store."""

from __future__ import annotations

from datetime import timedelta

from parcours import inventory
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.events import DomainEvent, publish
from parcours.journeys.models import JourneyInstance
from tests.builders import add_store, location
from tests.journeys.helpers import Worker, journey, person, template, track

TAG = [{"id": "tag", "type": "tag", "tag": "reached"}]


def _instances(db: Database) -> list[tuple[object, str]]:
    with db.transaction() as session:
        return [(i.profile_id, i.occurrence) for i in session.query(JourneyInstance)]


def test_entering_a_segment_enters_the_journey_once_per_entry(
    db: Database, clock: ManualClock
) -> None:
    from parcours import segments
    from parcours.core.audit import CLI_ACTOR

    with db.transaction() as session:
        segments.create_segment(
            session, clock.now(), CLI_ACTOR, "lyon", "Lyon",
            {"all": [{"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"}]},
        )  # fmt: skip
    journey(db, clock, {"trigger": {"type": "segment_entered", "segment": "lyon"}, "steps": TAG})
    profile_id = person(db, clock)
    event = DomainEvent(
        segments.SEGMENT_ENTERED,
        {"segment_id": "x", "segment_key": "lyon", "profile_id": str(profile_id)},
        clock.now(),
    )
    with db.transaction() as session:
        publish(session, event, clock.now())
    worker = Worker(db, clock)
    worker.run()
    worker.run()
    assert _instances(db) == [(profile_id, f"segment:{event.event_id}")]


def test_a_birthday_enters_at_nine_in_the_persons_own_zone_and_only_once(
    db: Database, clock: ManualClock
) -> None:
    # 14 March 2026, 09:30 UTC: 10:30 in Paris, 05:30 in Montreal.
    journey(db, clock, {"trigger": {"type": "date_trait", "trait": "birth_date",
                                     "at_local_time": "09:00"}, "steps": TAG})  # fmt: skip
    paris = person(db, clock, "u1", "a@example.com", birth_date="1990-03-14")
    montreal = person(db, clock, "u2", "b@example.com", birth_date="1985-03-14")
    person(db, clock, "u3", "c@example.com", birth_date="1985-03-15")
    with db.transaction() as session:
        from parcours import customers

        customers.live_profiles(session, [montreal])[montreal].timezone = "America/Montreal"
    worker = Worker(db, clock)
    worker.run()
    assert _instances(db) == [(paris, "date:birth_date:2026-03-14")]
    clock.advance(timedelta(hours=4))
    worker.run()
    worker.run()
    assert sorted(map(str, (p for p, _ in _instances(db)))) == sorted([str(paris), str(montreal)])


def test_a_location_within_the_radius_of_a_store_enters_with_that_store(
    db: Database, clock: ManualClock
) -> None:
    add_store(db, clock, "LYO-1")
    add_store(db, clock, "PAR-1", lat=48.8566, lon=2.3522, city="Paris", postcode="75001")
    journey(db, clock, {"trigger": {"type": "geo_entered", "radius_km": 2}, "steps": TAG})
    person(db, clock)
    track(db, clock.now(), "Location Updated", latitude=48.86, longitude=2.35)
    track(db, clock.now(), "Location Updated", latitude=43.3, longitude=5.4)  # Marseille
    Worker(db, clock).run()
    with db.transaction() as session:
        [instance] = session.query(JourneyInstance).all()
        assert instance.state["store"]["code"] == "PAR-1"


def test_back_in_stock_enters_who_viewed_the_sku_and_prefers_that_store(
    db: Database, clock: ManualClock
) -> None:
    template(db, clock, "retour")
    store_id = location(db, clock, "LYO-1")
    journey(db, clock, {"trigger": {"type": "back_in_stock"},
                        "steps": [{"id": "send", "type": "send", "template": "retour",
                                   "with_product": True}]})  # fmt: skip
    fan = person(db, clock, "u1", "a@example.com", preferred_store_id=str(store_id))
    person(db, clock, "u2", "b@example.com", preferred_store_id=str(store_id))
    person(db, clock, "u3", "c@example.com")
    track(db, clock.now() - timedelta(days=3), "Product Viewed", "u1", sku="ROBE-M")
    track(db, clock.now() - timedelta(days=3), "Product Viewed", "u2", sku="AUTRE")
    track(db, clock.now() - timedelta(days=3), "Product Viewed", "u3", sku="ROBE-M")
    with db.transaction() as session:
        inventory.track_skus(session, clock.now(), ["ROBE-M"])
        inventory.record_movements(
            session, clock.now(), [inventory.MovementInput("ROBE-M", store_id, "receipt", 4)]
        )
    worker = Worker(db, clock)
    worker.run()
    assert [p for p, _ in _instances(db)] == [fan]
    assert "ROBE-M x1 (4)" in worker.box.emails[0].text


def test_events_logged_before_the_first_journey_was_activated_never_trigger(
    db: Database, clock: ManualClock
) -> None:
    trigger = {"trigger": {"type": "event", "event": "Product Added"}, "steps": TAG}
    person(db, clock)
    track(db, clock.now(), "Product Added", sku="OLD")  # long before any journey
    journey(db, clock, trigger)
    track(db, clock.now(), "Product Added", sku="NEW")
    Worker(db, clock).run()
    assert len(_instances(db)) == 1
