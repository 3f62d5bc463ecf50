"""Segments: definitions checked with pointers, one select per definition on both
databases, memberships kept fresh with Segment Entered / Exited events."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from parcours import customers, segments
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput
from parcours.core.i18n import translations
from parcours.core.models import OutboxEvent
from parcours.customers import identity
from parcours.segments import exports, service
from tests.builders import add_store, event_row, log_events

NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)


def person(db: Database, clock: ManualClock, user_id: str, **fields: Any) -> uuid.UUID:
    """A customer with a user id the tracking log knows them by."""
    email = f"{user_id}@example.com"
    with db.transaction() as session:
        [profile_id] = customers.add_customers(session, clock.now(), [{"email": email, **fields}])
        observation = identity.Observation(
            identifiers={"email": email, "user_id": user_id},
            source="web",
            observed_at=clock.now(),
            traits={},
            reference="test",
        )
        identity.observe(session, clock.now(), [observation])
    return profile_id


def keep(db: Database, clock: ManualClock, definition: dict[str, Any]) -> set[uuid.UUID]:
    with db.transaction() as session:
        return service.evaluate(session, clock.now(), service.d.parse(definition))


def save(db: Database, clock: ManualClock, key: str, definition: dict[str, Any]) -> Any:
    with db.transaction() as session:
        return segments.create_segment(
            session, clock.now(), CLI_ACTOR, key, key.title(), definition
        )


def refused(db: Database, definition: Any, key: str = "bad") -> InvalidInput:
    with db.transaction() as session, pytest.raises(InvalidInput) as error:
        segments.create_segment(session, NOW, CLI_ACTOR, key, "Bad", definition)
    return error.value


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


# ------------------------------------------------------------------ bad definitions


def test_an_unknown_trait_is_refused_with_its_pointer_and_the_valid_fields(db: Database) -> None:
    error = refused(
        db, {"all": [{"kind": "trait", "field": "cty", "operator": "eq", "value": "x"}]}
    )
    [problem] = error.errors
    assert problem.pointer == "#/definition/all/0/field"
    assert "'cty'" in problem.detail
    assert "city" in problem.detail


def test_an_operator_that_does_not_fit_the_type_is_refused_listing_the_valid_ones(
    db: Database,
) -> None:
    error = refused(
        db,
        {"all": [
            {"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"},
            {"kind": "consent", "purpose": "marketing", "channel": "email"},
            {"kind": "trait", "field": "city", "operator": "gt", "value": 3},
        ]},
    )  # fmt: skip
    [problem] = error.errors
    assert problem.pointer == "#/definition/all/2/operator"
    assert "contains" in problem.detail


def test_an_unknown_kind_and_a_bad_group_are_both_reported(db: Database) -> None:
    error = refused(db, {"any": [{"kind": "weather"}, {"all": []}]})
    assert {e.pointer for e in error.errors} == {
        "#/definition/any/0/kind",
        "#/definition/any/1/all",
    }


def test_a_reference_to_an_unknown_segment_is_refused(db: Database) -> None:
    error = refused(db, {"kind": "segment", "segment": "ghosts"})
    assert "ghosts" in error.errors[0].detail


def test_a_cycle_between_segments_is_refused_naming_it(db: Database, clock: ManualClock) -> None:
    save(db, clock, "a", {"kind": "trait", "field": "city", "operator": "exists"})
    save(db, clock, "b", {"kind": "segment", "segment": "a"})
    with db.transaction() as session, pytest.raises(InvalidInput) as error:
        segments.update_segment(
            session, NOW, CLI_ACTOR, "a", definition={"kind": "segment", "segment": "b"}
        )
    assert "a → b → a" in error.value.detail


def test_a_key_in_use_is_a_conflict(db: Database, clock: ManualClock) -> None:
    save(db, clock, "lyon", {"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"})
    with db.transaction() as session, pytest.raises(Conflict):
        segments.create_segment(
            session,
            NOW,
            CLI_ACTOR,
            "lyon",
            "Again",
            {"kind": "trait", "field": "city", "operator": "exists"},
        )


# ------------------------------------------------------------------ conditions, both databases


def test_traits_nesting_and_not(db: Database, clock: ManualClock) -> None:
    lea = person(db, clock, "lea", city="Lyon", postcode="69002", birth_date=date(1990, 3, 5))
    tom = person(db, clock, "tom", city="Paris", postcode="75011", birth_date=date(2008, 6, 1))
    assert keep(
        db, clock, {"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"}
    ) == {lea}
    assert keep(
        db, clock, {"not": {"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"}}
    ) == {tom}
    adults = {"kind": "trait", "field": "age", "operator": "gte", "value": 18}
    birthday = {"kind": "trait", "field": "birth_date", "operator": "birthday_in_days", "value": 7}
    assert keep(db, clock, {"all": [adults, birthday]}) == {lea}
    assert keep(
        db,
        clock,
        {
            "any": [
                {"not": adults},
                {"kind": "trait", "field": "postcode", "operator": "starts_with", "value": "69"},
            ]
        },
    ) == {lea, tom}


def test_events_at_least_n_times_within_days_with_property_filters(
    db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock, "lea")
    tom = person(db, clock, "tom")
    robe = {"category": "Robes", "price": 59.9}
    log_events(
        db,
        event_row(NOW - timedelta(days=1), user_id="lea", properties=robe),
        event_row(NOW - timedelta(days=2), user_id="lea", properties=robe),
        event_row(NOW - timedelta(days=40), user_id="tom", properties=robe),
        event_row(NOW - timedelta(days=1), user_id="tom", properties={"category": "Jeans"}),
    )
    viewed_robes = {
        "kind": "event", "name": "Product Viewed", "operator": "at_least", "value": 2,
        "within_days": 30, "where": [{"property": "category", "operator": "eq", "value": "Robes"},
                                     {"property": "price", "operator": "gt", "value": 50}],
    }  # fmt: skip
    assert keep(db, clock, viewed_robes) == {lea}
    never = {"kind": "event", "name": "Product Viewed", "operator": "did_not", "within_days": 30,
             "where": [{"property": "category", "operator": "eq", "value": "Robes"}]}  # fmt: skip
    assert keep(db, clock, never) == {tom}


def test_consent_is_the_latest_decision(db: Database, clock: ManualClock) -> None:
    lea = person(db, clock, "lea")
    tom = person(db, clock, "tom")
    with db.transaction() as session:
        customers.add_consents(session, [
            {"customer_id": lea, "purpose": "marketing", "channel": "email", "granted": True,
             "at": NOW - timedelta(days=3), "source": "test"},
            {"customer_id": tom, "purpose": "marketing", "channel": "email", "granted": True,
             "at": NOW - timedelta(days=3), "source": "test"},
            {"customer_id": tom, "purpose": "marketing", "channel": "email", "granted": False,
             "at": NOW - timedelta(days=1), "source": "test"},
        ])  # fmt: skip
    assert keep(db, clock, {"kind": "consent", "purpose": "marketing", "channel": "email"}) == {lea}


def test_geo_within_radius_of_a_store_or_a_point(db: Database, clock: ManualClock) -> None:
    add_store(db, clock, "LYO-1")
    lea = person(db, clock, "lea", postcode="69002", city="Lyon")
    villeurbanne = person(db, clock, "max", city="Villeurbanne")
    person(db, clock, "tom", postcode="75011", city="Paris")
    assert keep(db, clock, {"kind": "geo", "store": "LYO-1", "radius_km": 15}) == {
        lea,
        villeurbanne,
    }
    paris = {"kind": "geo", "lat": 48.8566, "lon": 2.3522, "radius_km": 5}
    assert lea not in keep(db, clock, paris)
    assert len(keep(db, clock, paris)) == 1


def test_rfm_and_computed_traits(db: Database, clock: ManualClock) -> None:
    from tests.builders import order_row

    lea = person(db, clock, "lea")
    tom = person(db, clock, "tom")
    log_events(
        db,
        *[
            order_row(NOW - timedelta(days=i), 80, ("R1", "Robes"), user_id="lea")
            for i in (1, 2, 3)
        ],
        order_row(NOW - timedelta(days=300), 20, ("J1", "Jeans"), user_id="tom"),
    )
    with db.transaction() as session:
        customers.refresh_profiles(session, NOW, [lea, tom])
        from parcours.customers.profile_traits import refresh_all

        refresh_all(session, NOW)
    assert keep(db, clock, {"kind": "rfm", "recency": [4, 5]}) == {lea}
    assert keep(
        db, clock, {"kind": "trait", "field": "orders_count", "operator": "gte", "value": 3}
    ) == {lea}
    assert keep(
        db,
        clock,
        {"kind": "trait", "field": "favourite_category", "operator": "eq", "value": "Jeans"},
    ) == {tom}
    assert keep(
        db, clock, {"kind": "trait", "field": "channels", "operator": "contains", "value": "web"}
    ) == {lea, tom}


# ------------------------------------------------------------------ membership


def outbox(db: Database) -> list[tuple[str, str]]:
    with db.transaction() as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.type.like("Segment%")))
        return [(r.type, r.payload["profile_id"]) for r in rows]


def test_refresh_publishes_entered_and_exited(db: Database, clock: ManualClock) -> None:
    lea = person(db, clock, "lea")
    segment = save(
        db,
        clock,
        "viewers",
        {"kind": "event", "name": "Product Viewed", "operator": "did", "within_days": 7},
    )
    log_events(db, event_row(NOW - timedelta(days=1), user_id="lea"))
    with db.transaction() as session:
        change = segments.refresh_segment(session, clock.now(), segment.id)
        assert change.entered == [lea]
        assert segments.is_member(session, segment.id, lea)
    clock.advance(timedelta(days=10))
    with db.transaction() as session:
        assert segments.refresh_segment(session, clock.now(), segment.id).exited == [lea]
        assert segments.members_of(session, segment.id) == []
    assert outbox(db) == [("Segment Entered", str(lea)), ("Segment Exited", str(lea))]


def test_the_incremental_refresh_follows_new_events_and_dependent_segments(
    db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock, "lea", city="Lyon")
    viewers = save(
        db, clock, "viewers", {"kind": "event", "name": "Product Viewed", "operator": "did"}
    )
    lyon = save(db, clock, "lyon-viewers", {"all": [
        {"kind": "segment", "segment": "viewers"},
        {"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"}]})  # fmt: skip
    segments.refresh_all(db, clock)
    log_events(db, event_row(NOW, user_id="lea"))
    assert segments.refresh_recent(db, clock) > 0
    with db.transaction() as session:
        assert segments.is_member(session, viewers.id, lea)
        assert segments.is_member(session, lyon.id, lea)
        assert segments.find_segment(session, "lyon-viewers").member_count == 1


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.sampled_from(["Product Viewed", "Cart Viewed"]),
            st.integers(0, 20),
        ),
        max_size=12,
    )
)
def test_incremental_equals_full_evaluation(
    sqlite_db: Database, events: list[tuple[int, str, int]]
) -> None:
    db, clock = sqlite_db, ManualClock(NOW)
    with db.transaction() as session:
        from parcours.segments.models import Segment

        for segment in session.scalars(select(Segment)):
            session.delete(segment)
    people = [person(db, clock, f"p{uuid.uuid4().hex[:8]}") for _ in range(4)]
    ids = {}
    for key, definition in {
        "twice": {
            "kind": "event",
            "name": "Product Viewed",
            "operator": "at_least",
            "value": 2,
            "within_days": 30,
        },
        "not-carts": {"not": {"kind": "event", "name": "Cart Viewed", "operator": "did"}},
    }.items():
        ids[key] = save(db, clock, key, definition).id
    segments.refresh_all(db, clock)
    for who, name, days_ago in events:
        with db.transaction() as session:
            uid = next(v for k, v in identity_user_ids(session, people[who]))
        log_events(db, event_row(NOW - timedelta(days=days_ago), event=name, user_id=uid))
        segments.refresh_recent(db, clock)
    with db.transaction() as session:
        incremental = {k: set(segments.members_of(session, v)) for k, v in ids.items()}
        for key, _segment_id in ids.items():
            segment = service.get_segment(session, key)
            assert incremental[key] & set(people) == service.evaluate(
                session, NOW, service.d.parse(segment.definition)
            ) & set(people)


def identity_user_ids(session: Any, profile_id: uuid.UUID) -> list[tuple[str, str]]:
    return [
        (i.kind, i.value)
        for i in customers.identifiers_of(session, profile_id)
        if i.kind == "user_id"
    ]


# ------------------------------------------------------------------ exports


def test_exports_hash_normalised_emails_and_phones_and_are_audited(
    db: Database, clock: ManualClock
) -> None:
    person(db, clock, "lea", phone="+33612345678", first_name="Léa")
    segment = save(db, clock, "all", {"kind": "trait", "field": "email", "operator": "exists"})
    with db.transaction() as session:
        segments.refresh_segment(session, NOW, segment.id)
        plain = "".join(exports.export_lines(session, NOW, CLI_ACTOR, "all", "csv"))
        audience = "".join(exports.export_lines(session, NOW, CLI_ACTOR, "all", "audience"))
    assert "lea@example.com" in plain
    assert "Léa" in plain
    assert audience.splitlines()[0] == "Email,Phone"
    assert exports.sha256_email(" Lea@Example.com ") in audience
    assert exports.sha256_phone("+33 6 12 34 56 78") in audience
    assert "lea@example.com" not in audience


def test_a_mistake_keeps_its_english_detail_and_its_message_for_the_console(
    db: Database,
) -> None:
    problem = refused(db, {"kind": "trait", "field": "city", "operator": "gt", "value": 3})
    [mistake] = problem.errors
    assert mistake.detail.startswith("operator 'gt' does not apply to city (text)")
    assert mistake.message
    assert mistake.message % mistake.values == mistake.detail
    assert translations("fr").gettext(mistake.message).startswith("l'opérateur %(operator)s")
