"""Many segments in one statement: the same memberships as one select per segment, on
both databases, however the statement is chunked and whenever a cached one runs again."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select

from parcours import customers, segments
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import OutboxEvent
from parcours.segments import service
from tests.builders import add_store, event_row, log_events, order_row
from tests.segments.test_segments import person

NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)

DEFINITIONS: dict[str, dict[str, Any]] = {
    "lyon": {"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"},
    "adults": {"kind": "trait", "field": "age", "operator": "gte", "value": 18},
    "birthdays": {
        "kind": "trait",
        "field": "birth_date",
        "operator": "birthday_in_days",
        "value": 7,
    },
    "robes-twice": {
        "kind": "event",
        "name": "Product Viewed",
        "operator": "at_least",
        "value": 2,
        "within_days": 30,
        "where": [{"property": "category", "operator": "eq", "value": "Robes"}],
    },
    "no-carts": {"not": {"kind": "event", "name": "Cart Viewed", "operator": "did"}},
    "buyers": {"kind": "order", "field": "count", "operator": "gte", "value": 1},
    "opted-in": {"kind": "consent", "purpose": "marketing", "channel": "email"},
    "near-lyon": {"kind": "geo", "store": "LYO-1", "radius_km": 15},
    "lyon-robes": {
        "all": [
            {"kind": "segment", "segment": "lyon"},
            {"kind": "segment", "segment": "robes-twice"},
        ]
    },
    "lyon-robes-opted-in": {
        "all": [
            {"kind": "segment", "segment": "lyon-robes"},
            {"kind": "segment", "segment": "opted-in"},
        ]
    },
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def population(db: Database, clock: ManualClock) -> dict[str, uuid.UUID]:
    add_store(db, clock, "LYO-1")
    people = {
        "lea": person(db, clock, "lea", city="Lyon", postcode="69002", birth_date=date(1990, 3, 5)),
        "tom": person(db, clock, "tom", city="Paris", birth_date=date(2010, 1, 1)),
        "max": person(db, clock, "max", city="Villeurbanne"),
        "zoe": person(db, clock, "zoe", city="Lyon"),
    }  # fmt: skip
    robe = {"category": "Robes"}
    log_events(
        db,
        event_row(NOW - timedelta(days=1), user_id="lea", properties=robe),
        event_row(NOW - timedelta(days=2), user_id="lea", properties=robe),
        event_row(NOW - timedelta(days=3), user_id="zoe", properties=robe),
        event_row(NOW - timedelta(days=1), event="Cart Viewed", user_id="tom"),
        order_row(NOW - timedelta(days=4), 50, ("R1", "Robes"), user_id="max"),
    )
    with db.transaction() as session:
        customers.add_consents(session, [
            {"customer_id": people["lea"], "purpose": "marketing", "channel": "email",
             "granted": True, "at": NOW - timedelta(days=5), "source": "test"},
            {"customer_id": people["tom"], "purpose": "marketing", "channel": "email",
             "granted": True, "at": NOW - timedelta(days=5), "source": "test"},
        ])  # fmt: skip
        for key, definition in DEFINITIONS.items():
            segments.create_segment(session, NOW, CLI_ACTOR, key, key, definition)
    return people


def one_select_per_segment(db: Database) -> dict[str, set[uuid.UUID]]:
    """The reference: each definition's own select, segments used evaluated first."""
    found: dict[str, set[uuid.UUID]] = {}
    with db.transaction() as session:
        for entry in service.catalogue(session):
            found[entry.key] = service.evaluate(session, NOW, entry.node)
            segments.refresh_segment(session, NOW, entry.id)  # the next level reads them
    return found


def stored(db: Database) -> dict[str, set[uuid.UUID]]:
    with db.transaction() as session:
        return {
            s.key: set(segments.members_of(session, s.id)) for s in segments.list_segments(session)
        }


def test_one_statement_per_level_keeps_the_members_one_select_per_segment_keeps(
    db: Database, population: dict[str, uuid.UUID]
) -> None:
    expected = one_select_per_segment(db)
    with db.transaction() as session:
        for entry in service.catalogue(session):
            session.execute(
                delete(service.SegmentMember).where(service.SegmentMember.segment_id == entry.id)
            )
        assert service.refresh_everything(session, NOW) == len(DEFINITIONS)
    assert stored(db) == expected
    lea = population["lea"]
    assert expected["lyon"] == {lea, population["zoe"]}
    assert expected["lyon-robes"] == {lea}  # Zoé viewed one robe only
    assert expected["lyon-robes-opted-in"] == {lea}
    assert expected["near-lyon"] == {lea, population["max"], population["zoe"]}


def test_levels_follow_the_segments_used(db: Database, population: dict[str, uuid.UUID]) -> None:
    with db.transaction() as session:
        levels = {e.key: e.level for e in service.catalogue(session)}
    assert levels["lyon"] == levels["robes-twice"] == levels["opted-in"] == 0
    assert levels["lyon-robes"] == 1
    assert levels["lyon-robes-opted-in"] == 2


def test_a_statement_too_wide_is_chunked_with_the_same_members(
    db: Database, population: dict[str, uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = one_select_per_segment(db)
    monkeypatch.setattr(service, "COLUMNS_PER_STATEMENT", 2)
    monkeypatch.setattr(service, "VALUES_PER_STATEMENT", 10)
    with db.transaction() as session:
        entries = service.catalogue(session)
        level0 = [e for e in entries if e.level == 0]
        scope = customers.materialise_audience(session)
        plans = service._build_plans(session, NOW, level0, scope, service._segment_keys(session))
        assert len(plans) >= len(level0) / 2
        assert max(len(p.segment_ids) for p in plans) <= 2
        found = service.evaluate_many(session, NOW, level0, scope)
    assert {e.key: found[e.id] for e in level0} == {e.key: expected[e.key] for e in level0}


def test_the_incremental_pass_reruns_its_cached_statement_at_a_later_time(
    db: Database, population: dict[str, uuid.UUID], clock: ManualClock
) -> None:
    segments.refresh_all(db, clock)
    segments.refresh_recent(db, clock)  # the cursors reach the log's head
    lea = population["lea"]
    assert lea in stored(db)["robes-twice"]
    # 40 days later new events of Léa's: her two robe views have left the 30-day window
    clock.advance(timedelta(days=40))
    log_events(
        db,
        event_row(clock.now(), user_id="lea", properties={"category": "Jeans"}),
        event_row(clock.now(), event="Cart Viewed", user_id="lea"),
    )
    assert segments.refresh_recent(db, clock) > 0
    after = stored(db)
    assert lea not in after["robes-twice"]
    assert lea not in after["lyon-robes"]  # the next level follows in the same pass
    assert lea not in after["no-carts"]
    with db.transaction() as session:
        exits = session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.type == segments.SEGMENT_EXITED)
        ).all()
    assert {p["segment_key"] for p in exits if p["profile_id"] == str(lea)} >= {
        "robes-twice",
        "lyon-robes",
        "lyon-robes-opted-in",
        "no-carts",
    }


def test_a_consent_decision_reaches_the_segments_at_the_next_pass(
    db: Database, population: dict[str, uuid.UUID], clock: ManualClock
) -> None:
    segments.refresh_all(db, clock)
    segments.refresh_recent(db, clock)
    zoe = population["zoe"]
    clock.advance(timedelta(seconds=1))
    with db.transaction() as session:
        customers.add_consents(session, [
            {"customer_id": zoe, "purpose": "marketing", "channel": "email", "granted": True,
             "at": clock.now(), "source": "test"},
        ])  # fmt: skip
    assert zoe not in stored(db)["opted-in"]
    segments.refresh_recent(db, clock)
    assert zoe in stored(db)["opted-in"]
    assert zoe not in stored(db)["lyon-robes-opted-in"]  # one robe view only


def test_an_event_re_evaluates_only_the_segments_counting_it_and_their_users(
    db: Database, population: dict[str, uuid.UUID], clock: ManualClock
) -> None:
    segments.refresh_all(db, clock)
    segments.refresh_recent(db, clock)
    lea = population["lea"]
    clock.advance(timedelta(days=40))
    log_events(db, event_row(clock.now(), event="Cart Viewed", user_id="lea"))
    segments.refresh_recent(db, clock)
    after = stored(db)
    assert lea not in after["no-carts"]  # counts Cart Viewed: evaluated
    # counts Product Viewed only: not evaluated, its window slides at the hourly full pass
    assert lea in after["robes-twice"]
    segments.refresh_all(db, clock)
    assert lea not in stored(db)["robes-twice"]


@pytest.mark.parametrize("small_pass", [0, 64])
def test_a_pass_through_in_lists_or_temporary_tables_keeps_the_same_members(
    db: Database,
    population: dict[str, uuid.UUID],
    monkeypatch: pytest.MonkeyPatch,
    small_pass: int,
) -> None:
    monkeypatch.setattr(service, "SMALL_PASS", small_pass)
    expected = one_select_per_segment(db)
    three = sorted(population.values())[:3]  # 4 id slots: the last id padded
    with db.transaction() as session:
        for entry in service.catalogue(session):
            session.execute(
                delete(service.SegmentMember).where(service.SegmentMember.segment_id == entry.id)
            )
        service.refresh_entries(session, NOW, service.catalogue(session), three)
    assert stored(db) == {key: members & set(three) for key, members in expected.items()}


def test_a_small_pass_compiles_one_statement_per_power_of_four_of_profiles(
    db: Database, population: dict[str, uuid.UUID]
) -> None:
    people = sorted(population.values())
    with db.transaction() as session:
        level0 = [e for e in service.catalogue(session) if e.level == 0]
        found = {
            n: service.evaluate_many(session, NOW, level0, None, profile_ids=people[:n])
            for n in (1, 2, 3, 4)
        }
        plans = {n: service._plans(session, NOW, level0, None, slots=n) for n in (1, 4, 16)}
        assert service._plans(session, NOW, level0, None, slots=4) is plans[4]  # cached
        with pytest.raises(ValueError, match="0 profiles without a materialised scope"):
            service.evaluate_many(session, NOW, level0, None, profile_ids=[])
    assert len({id(p) for p in plans.values()}) == 3
    assert [service._slots(n) for n in (1, 2, 4, 5, 16, 17, 64)] == [1, 4, 4, 16, 16, 64, 64]
    for n, members in found.items():
        for entry in level0:
            assert members[entry.id] == service_members(db, entry, people[:n])


def service_members(db: Database, entry: service.Entry, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    with db.transaction() as session:
        return service.evaluate(session, NOW, entry.node, ids)


def test_the_statements_are_built_ahead_and_a_catalogue_change_rebuilds_only_its_group(
    db: Database, population: dict[str, uuid.UUID], clock: ManualClock
) -> None:
    segments.refresh_all(db, clock)
    with db.transaction() as session:
        first = service.warm(session, clock.now())
        again = service.warm(session, clock.now())
    # lyon/adults/birthdays/opted-in/near-lyon share a trigger (profile changes); the
    # others have one each: 6 groups x (1, 4, 16, 64 profile id slots + temporary tables)
    assert (first.groups, first.built + first.cached) == (6, 30)
    assert again == service.Warmup(0, 0, 0)  # same catalogue: nothing to do
    segments.refresh_recent(db, clock)  # the cursors reach the log's head
    with db.transaction() as session:
        segments.update_segment(
            session,
            clock.now(),
            CLI_ACTOR,
            "robes-twice",
            definition={**DEFINITIONS["robes-twice"], "value": 1},
        )
    with db.transaction() as session:
        changed = service.warm(session, clock.now())
    assert (changed.built, changed.cached) == (5, 25)  # robes-twice's group only
    add_store(db, clock, "PAR-1")  # the store network changes
    with db.transaction() as session:
        moved = service.warm(session, clock.now())
    assert moved.built == 5  # near-lyon's group (it names a store) only

    built = service.statements_built()
    clock.advance(timedelta(seconds=1))
    log_events(
        db,
        event_row(clock.now(), user_id="zoe", properties={"category": "Robes"}),
        event_row(clock.now(), event="Cart Viewed", user_id="lea"),
    )
    with db.transaction() as session:
        customers.add_consents(session, [
            {"customer_id": population["max"], "purpose": "marketing", "channel": "email",
             "granted": True, "at": clock.now(), "source": "test"},
        ])  # fmt: skip
    assert segments.refresh_recent(db, clock) > 0
    clock.advance(timedelta(seconds=1))
    log_events(db, order_row(clock.now(), 20, ("J1", "Jeans"), user_id="tom"))
    assert segments.refresh_recent(db, clock) > 0  # the segments on orders run
    assert service.statements_built() == built  # the passes ran prepared statements only
    after = stored(db)
    assert population["zoe"] in after["robes-twice"]  # one robe view is enough now
    assert population["lea"] not in after["no-carts"]
    assert population["max"] in after["opted-in"]


def test_the_worker_builds_the_statements_at_its_first_run_before_the_pass(
    db: Database, population: dict[str, uuid.UUID], clock: ManualClock
) -> None:
    segments.refresh_all(db, clock)
    service._WARMED.clear()  # a new process
    service._PLANS.clear()
    built = service.statements_built()
    segments.refresh_recent(db, clock)
    assert service.statements_built() - built == 30  # the warm-up, before the pass
    clock.advance(timedelta(seconds=1))
    log_events(db, event_row(clock.now(), user_id="tom", properties={"category": "Robes"}))
    built = service.statements_built()
    segments.refresh_recent(db, clock)
    assert service.statements_built() == built


@pytest.mark.parametrize("small_pass", [0, 64])
def test_a_consent_given_before_a_merge_counts_for_the_merged_profile_in_any_pass(
    db: Database,
    population: dict[str, uuid.UUID],
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    small_pass: int,
) -> None:
    """Max opted in on a shop account later merged into his profile: the person opted
    in, whether the pass reads a few profiles through IN lists or temporary tables."""
    monkeypatch.setattr(service, "SMALL_PASS", small_pass)
    max_ = population["max"]
    with db.transaction() as session:
        (account,) = customers.add_customers(session, NOW, [{"email": "max@shop.example"}])
        customers.add_consents(session, [
            {"customer_id": account, "purpose": "marketing", "channel": "email",
             "granted": True, "at": NOW - timedelta(days=2), "source": "test"},
        ])  # fmt: skip
        customers.merge_profiles(session, NOW, CLI_ACTOR, max_, account, "same person")
        opted_in = next(e for e in service.catalogue(session) if e.key == "opted-in")
        service.refresh_entries(session, NOW, [opted_in], [max_, population["tom"]])
    assert stored(db)["opted-in"] == {max_, population["tom"]}
