"""The ready-made journeys install with their templates and run end to end."""

from __future__ import annotations

from datetime import timedelta

from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.journeys.ready_made import JOURNEYS, PROMOTIONS, install_ready_made
from tests.builders import location, receive
from tests.journeys.helpers import Worker, person, stats, track


def _install(db: Database, clock: ManualClock, *keys: str) -> None:
    with db.transaction() as session:
        install_ready_made(session, clock.now(), CLI_ACTOR, activate=True, only=list(keys))


def test_installing_twice_creates_everything_once(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session:
        first = install_ready_made(session, clock.now(), CLI_ACTOR)
    with db.transaction() as session:
        second = install_ready_made(session, clock.now(), CLI_ACTOR)
    assert sorted(first.journeys) == sorted(JOURNEYS)
    assert "abandoned-cart" in first.templates
    assert first.segments == ["no-purchase-180-days"]
    assert sorted(first.promotions) == sorted(PROMOTIONS)
    assert (second.journeys, second.templates, second.promotions, second.segments) == (
        [],
        [],
        [],
        [],
    )


def test_abandoned_cart_mails_the_items_with_their_stock_at_the_preferred_store(
    db: Database, clock: ManualClock
) -> None:
    store_id = location(db, clock, "LYO-1")
    receive(db, clock, "ROBE-LIN-M", store_id, 3)
    _install(db, clock, "abandoned-cart")
    person(db, clock, preferred_store_id=str(store_id))
    track(db, clock.now(), "Product Added", sku="ROBE-LIN-M", quantity=1)
    worker = Worker(db, clock)
    worker.run()
    clock.advance(timedelta(hours=1))
    worker.run()
    [email] = worker.box.emails
    assert email.subject == "Votre panier vous attend"
    assert "ROBE-LIN-M × 1 (3 en stock dans votre magasin)" in email.text
    assert stats(db, "abandoned-cart")["send-reminder"] == (1, 0, 1, 0)


def test_abandoned_cart_stops_when_the_order_is_placed(db: Database, clock: ManualClock) -> None:
    _install(db, clock, "abandoned-cart")
    person(db, clock)
    track(db, clock.now(), "Product Added", sku="ROBE-LIN-M")
    worker = Worker(db, clock)
    worker.run()
    track(db, clock.now() + timedelta(minutes=5), "Order Completed", order_id="o-1")
    clock.advance(timedelta(hours=1))
    worker.run()
    assert worker.box.emails == []
    assert stats(db, "abandoned-cart")["_"] == (1, 0, 0, 1)


def test_birthday_mails_a_unique_code_valid_thirty_days(db: Database, clock: ManualClock) -> None:
    _install(db, clock, "birthday")
    person(db, clock, "u1", "a@example.com", birth_date="1990-03-14")
    person(db, clock, "u2", "b@example.com", birth_date="1991-03-14")
    worker = Worker(db, clock)
    worker.run()
    worker.run()
    codes = [e.text.split("code personnel : ")[1].split(" ")[0] for e in worker.box.emails]
    assert len(codes) == 2
    assert len(set(codes)) == 2
    assert stats(db, "birthday")["code"][2] == 2


def test_tier_upgrade_congratulates_a_member_moving_up_but_not_down(
    db: Database, clock: ManualClock
) -> None:
    _install(db, clock, "tier-upgrade")
    person(db, clock)
    track(db, clock.now(), "Loyalty Tier Changed", from_tier="bronze", to_tier="silver",
          direction="up")  # fmt: skip
    track(db, clock.now() + timedelta(minutes=1), "Loyalty Tier Changed", from_tier="silver",
          to_tier="bronze", direction="down")  # fmt: skip
    worker = Worker(db, clock)
    worker.run()
    worker.run()
    assert len(worker.box.emails) == 1
    assert "palier supérieur" in worker.box.emails[0].text
    assert stats(db, "tier-upgrade")["_"][0] == 1
