"""The identity graph: linking, limits, merges, unmerge, traits, privacy (both databases)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from parcours import customers
from parcours.core.audit import CLI_ACTOR
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput, NotFound
from parcours.customers import identity
from parcours.customers.identity import Observation
from parcours.customers.models import Customer, IdentityObservation

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def seen(ids: dict[str, str], minute: int, source: str = "web", **extra: Any) -> Observation:
    return Observation(ids, source, T0 + timedelta(minutes=minute), **extra)


def observe(db: Database, *observations: Observation) -> list[uuid.UUID | None]:
    with db.transaction() as session:
        return identity.observe(session, NOW, list(observations))


def kinds_of(db: Database, profile_id: uuid.UUID) -> set[tuple[str, str]]:
    with db.transaction() as session:
        return {(i.kind, i.value) for i in identity.identifiers_of(session, profile_id)}


def row(db: Database, profile_id: uuid.UUID) -> Customer:
    with db.transaction() as session:
        customer = session.get(Customer, profile_id)
        assert customer is not None
        return customer


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen_sql: list[str] = []

    def count(*args: Any) -> None:
        if not args[2].startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE is not ours
            seen_sql.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen_sql
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


# ------------------------------------------------------------------ linking


def test_an_anonymous_id_alone_creates_no_profile(db: Database) -> None:
    assert observe(db, seen({"anonymous_id": "anon-1"}, 0)) == [None]
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_a_user_id_creates_a_profile_and_links_the_anonymous_id_seen_with_it(
    db: Database,
) -> None:
    (profile,) = observe(db, seen({"user_id": "u-1", "anonymous_id": "anon-1"}, 0))
    assert profile is not None
    assert kinds_of(db, profile) == {("user_id", "u-1"), ("anonymous_id", "anon-1")}
    assert observe(db, seen({"anonymous_id": "anon-1"}, 5)) == [profile]


def test_emails_and_phones_are_normalised_before_linking(db: Database) -> None:
    (first,) = observe(
        db, seen({"email": "  Lea.Martin@Example.COM ", "phone": "06 12 34 56 79"}, 0)
    )
    (again,) = observe(db, seen({"email": "lea.martin@example.com"}, 1))
    (by_phone,) = observe(db, seen({"phone": "+33 6 12 34 56 79"}, 2))
    assert first == again == by_phone
    with db.transaction() as session:
        assert identity.resolve(session, "phone", "0612345679") == first


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("email", "test@test.com"),
        ("phone", "0000000000"),
        ("user_id", "undefined"),
        ("email", "nope"),
    ],
)
def test_blocked_and_invalid_values_identify_nobody(db: Database, kind: str, value: str) -> None:
    assert observe(db, seen({kind: value, "anonymous_id": "anon-1"}, 0)) == [None]


def test_an_email_in_identify_traits_is_an_identifier_too(db: Database) -> None:
    (profile,) = observe(
        db, seen({"anonymous_id": "anon-1"}, 0, traits={"email": "Lea@Example.com"})
    )
    assert profile is not None
    assert ("email", "lea@example.com") in kinds_of(db, profile)


def test_seeing_two_profiles_together_merges_them_into_the_older_one(db: Database) -> None:
    web, store = observe(
        db,
        seen({"user_id": "u-1", "email": "lea@example.com"}, 0),
        seen({"customer_number": "C-1", "phone": "+33612345679"}, 10, source="store"),
    )
    assert web is not None
    assert store is not None
    (merged,) = observe(db, seen({"email": "lea@example.com", "phone": "+33612345679"}, 20))
    older = min((web, store), key=lambda p: (row(db, p).created_at, str(p)))
    younger = store if older == web else web
    assert merged == older
    assert row(db, younger).merged_into_id == older
    with db.transaction() as session:
        assert identity.canonical_profile_id(session, younger) == older
        (merge,) = identity.merge_history(session, younger)
    assert merge.outcome == "merged"
    assert merge.rule == "seen_together"
    assert merge.identifiers == [("email", "lea@example.com"), ("phone", "+33612345679")]
    assert kinds_of(db, younger) == kinds_of(db, older)
    assert row(db, older).customer_number == "C-1"
    absorbed = row(db, younger)
    assert (absorbed.customer_number, absorbed.email, absorbed.phone) == (None, None, None)


def test_a_customer_added_twice_in_bulk_keeps_the_email_on_the_first(db: Database) -> None:
    with db.transaction() as session:
        first, second = customers.add_customers(
            session,
            NOW,
            [{"email": "lea@example.com"}, {"email": "LEA@example.com", "customer_number": "C-9"}],
        )
    with db.transaction() as session:
        assert identity.resolve(session, "email", "lea@example.com") == first
        assert identity.resolve(session, "customer_number", "C-9") == second


def test_two_customer_numbers_are_never_merged_and_the_refusal_is_recorded(
    db: Database,
) -> None:
    a, b = observe(
        db,
        seen({"customer_number": "C-1", "email": "a@example.com"}, 0, source="store"),
        seen({"customer_number": "C-2", "phone": "+33612345679"}, 1, source="store"),
    )
    assert a is not None
    assert b is not None
    (resolved,) = observe(db, seen({"email": "a@example.com", "phone": "+33612345679"}, 2))
    assert resolved == a
    assert row(db, b).merged_into_id is None
    with db.transaction() as session:
        (refusal,) = identity.merge_history(session, b)
    assert (refusal.outcome, refusal.rule) == ("refused", "limit:customer_number")
    assert refusal.identifiers == [("phone", "+33612345679")]


def test_a_new_user_id_next_to_a_profile_with_another_gets_its_own_profile(
    db: Database,
) -> None:
    (first,) = observe(db, seen({"user_id": "u-1", "email": "shared@example.com"}, 0))
    (second,) = observe(db, seen({"user_id": "u-2", "email": "shared@example.com"}, 1))
    assert second is not None
    assert second != first
    assert kinds_of(db, second) == {("user_id", "u-2")}


def test_an_anonymous_id_never_merges_two_profiles(db: Database) -> None:
    (lea,) = observe(db, seen({"email": "lea@example.com", "anonymous_id": "tablet"}, 0))
    (tom,) = observe(db, seen({"email": "tom@example.com", "anonymous_id": "tablet"}, 1))
    assert lea is not None
    assert tom is not None
    assert lea != tom
    assert ("anonymous_id", "tablet") in kinds_of(db, lea)
    with db.transaction() as session:
        (refusal,) = identity.merge_history(session, tom)
    assert refusal.rule == "weak:anonymous_id"


def test_a_profile_found_through_a_merged_id_follows_to_the_survivor(db: Database) -> None:
    a, b = observe(db, seen({"email": "a@example.com"}, 0), seen({"phone": "+33612345679"}, 1))
    observe(db, seen({"email": "a@example.com", "phone": "+33612345679"}, 2))
    assert a is not None
    assert b is not None
    with db.transaction() as session:
        assert {(i.kind) for i in identity.identifiers_of(session, b)} == {"email", "phone"}
        assert identity.canonical_profile_id(session, uuid.uuid4()) is None
        with pytest.raises(NotFound):
            identity.identifiers_of(session, uuid.uuid4())


# ------------------------------------------------------------------ bulk


def test_a_batch_of_known_identifiers_costs_a_constant_number_of_statements(
    db: Database,
) -> None:
    batch = [
        seen({"user_id": f"u-{i}", "anonymous_id": f"anon-{i}"}, i, reference=f"m-{i}")
        for i in range(200)
    ]
    profiles = observe(db, *batch)
    later = [
        seen({"user_id": f"u-{i}", "anonymous_id": f"anon-{i}"}, 500 + i, reference=f"n-{i}")
        for i in range(200)
    ]
    with statements(db) as sql:
        assert observe(db, *later) == profiles
    # identifiers, evidence already on record, last seen
    assert len(sql) <= 3, sql
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(IdentityObservation)) == 200


def test_a_batch_with_new_evidence_on_known_profiles_stays_constant_too(db: Database) -> None:
    observe(db, *[seen({"user_id": f"u-{i}", "anonymous_id": f"a-{i}"}, i) for i in range(100)])
    observe(db, *[seen({"user_id": f"u-{i}", "email": f"p{i}@example.com"}, i) for i in range(100)])
    batch = [
        seen(
            {"user_id": f"u-{i}", "anonymous_id": f"a-{i}", "email": f"p{i}@example.com"},
            300 + i,
            traits={"first_name": f"N{i}"},
        )
        for i in range(100)
    ]
    with statements(db) as sql:
        observe(db, *batch)
    assert len(sql) <= 10, sql
    with db.transaction() as session:
        first_names = session.scalars(select(Customer.first_name)).all()
    assert sorted(name or "" for name in first_names) == sorted(f"N{i}" for i in range(100))


def test_new_profiles_without_traits_are_not_rewritten_after_their_insert(db: Database) -> None:
    bare = [seen({"user_id": f"u-{i}", "anonymous_id": f"a-{i}"}, i) for i in range(3)]
    named = seen({"user_id": "u-9", "anonymous_id": "a-9"}, 9, traits={"first_name": "Léa"})
    with statements(db) as sql:
        profiles = observe(db, *bare)
    assert not [s for s in sql if s.startswith("UPDATE customers")], sql
    with statements(db) as sql:
        (lea,) = observe(db, named)
    assert len([s for s in sql if s.startswith("UPDATE customers")]) == 1, sql
    for profile_id in profiles:
        assert profile_id is not None
        customer = row(db, profile_id)
        assert (customer.first_name, customer.email, customer.country) == (None, None, "FR")
        assert customer.updated_at == NOW
    assert lea is not None
    assert row(db, lea).first_name == "Léa"


def test_customers_added_in_bulk_get_their_identifiers_in_a_few_statements(
    db: Database,
) -> None:
    rows = [
        {
            "email": f"Person{i}@Example.com",
            "phone": f"+336123456{i:02d}",
            "customer_number": f"C-{i}",
            "first_name": "Léa",
        }
        for i in range(50)
    ]
    with statements(db) as sql, db.transaction() as session:
        ids = customers.add_customers(session, NOW, rows)
    assert len(sql) <= 7, sql
    with db.transaction() as session:
        assert identity.resolve(session, "email", "person7@example.com") == ids[7]
        assert identity.resolve(session, "customer_number", "C-7") == ids[7]
        assert identity.traits_of(session, ids[7])["first_name"].value == "Léa"
    (again,) = observe(db, seen({"email": "person7@example.com", "user_id": "web-7"}, 0))
    assert again == ids[7]


# ------------------------------------------------------------------ traits


def test_traits_come_from_the_highest_priority_source_then_the_latest(db: Database) -> None:
    (profile,) = observe(
        db, seen({"email": "lea@example.com"}, 0, source="store", traits={"first_name": "Léa"})
    )
    assert profile is not None
    observe(db, seen({"email": "lea@example.com"}, 5, traits={"first_name": "Lea", "plan": "gold"}))
    with db.transaction() as session:
        traits = identity.traits_of(session, profile)
    assert (traits["first_name"].value, traits["first_name"].source) == ("Léa", "store")
    assert traits["plan"].value == "gold"
    observe(
        db,
        seen({"email": "lea@example.com"}, 9, source="store", traits={"first_name": "Léa-Marie"}),
    )
    assert row(db, profile).first_name == "Léa-Marie"


def test_core_traits_are_written_on_the_customers_row(db: Database) -> None:
    store_id = uuid.uuid4()
    traits = {
        "firstName": "Léa",
        "lastName": "Martin",
        "birthday": "1990-04-12",
        "address": {"street": "3 rue Mercière", "city": "Lyon", "postalCode": "69002"},
        "preferred_store_id": str(store_id),
        "locale": "fr-FR",
    }
    (profile,) = observe(db, seen({"user_id": "u-1", "email": "Lea@Example.com"}, 0, traits=traits))
    assert profile is not None
    customer = row(db, profile)
    assert (customer.first_name, customer.last_name) == ("Léa", "Martin")
    assert customer.birth_date is not None
    assert customer.birth_date.isoformat() == "1990-04-12"
    assert (customer.address, customer.postcode, customer.city) == (
        "3 rue Mercière",
        "69002",
        "Lyon",
    )
    assert customer.preferred_store_id == store_id
    assert (customer.email, customer.locale) == ("lea@example.com", "fr-FR")


def test_traits_of_an_anonymous_visitor_join_the_profile_once_identified(db: Database) -> None:
    observe(db, seen({"anonymous_id": "anon-1"}, 0, traits={"favourite_colour": "green"}))
    (profile,) = observe(db, seen({"anonymous_id": "anon-1", "user_id": "u-1"}, 5))
    assert profile is not None
    with db.transaction() as session:
        assert identity.traits_of(session, profile)["favourite_colour"].value == "green"


def test_an_unknown_identifier_kind_is_refused(db: Database) -> None:
    with pytest.raises(InvalidInput) as error, db.transaction() as session:
        identity.observe(session, NOW, [seen({"passport": "X"}, 0)])
    assert error.value.errors[0].pointer == "#/identifiers/passport"


# ------------------------------------------------------------------ merge and unmerge


def _two_people_merged(db: Database) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    web, store = observe(
        db,
        seen({"user_id": "u-1", "email": "lea@example.com"}, 0, traits={"first_name": "Léa"}),
        seen(
            {"customer_number": "C-1", "phone": "+33612345679"},
            10,
            source="store",
            traits={"first_name": "Tom"},
        ),
    )
    assert web is not None
    assert store is not None
    observe(db, seen({"email": "lea@example.com", "phone": "+33612345679"}, 20))
    with db.transaction() as session:
        (merge,) = identity.merge_history(session, web)
    return merge.kept_id, merge.absorbed_id or uuid.uuid4(), merge.id


def test_unmerge_restores_the_absorbed_profile_with_its_own_id(db: Database) -> None:
    kept, absorbed, merge_id = _two_people_merged(db)
    before = kinds_of(db, kept)
    with db.transaction() as session:
        restored = identity.unmerge(session, NOW, CLI_ACTOR, merge_id)
    assert restored == absorbed
    assert kinds_of(db, kept) | kinds_of(db, absorbed) == before
    assert kinds_of(db, kept).isdisjoint(kinds_of(db, absorbed))
    assert row(db, absorbed).merged_into_id is None
    names = {row(db, kept).first_name, row(db, absorbed).first_name}
    assert names == {"Léa", "Tom"}
    numbers = {row(db, kept).customer_number, row(db, absorbed).customer_number}
    assert numbers == {"C-1", None}


def test_an_unmerged_link_is_not_redone_by_later_observations(db: Database) -> None:
    kept, absorbed, merge_id = _two_people_merged(db)
    with db.transaction() as session:
        identity.unmerge(session, NOW, CLI_ACTOR, merge_id)
    observe(db, seen({"email": "lea@example.com", "phone": "+33612345679"}, 30, reference="again"))
    assert row(db, absorbed).merged_into_id is None
    assert kinds_of(db, kept).isdisjoint(kinds_of(db, absorbed))


def test_unmerging_an_undone_merge_is_a_conflict(db: Database) -> None:
    _, _, merge_id = _two_people_merged(db)
    with db.transaction() as session:
        identity.unmerge(session, NOW, CLI_ACTOR, merge_id)
    with pytest.raises(Conflict), db.transaction() as session:
        identity.unmerge(session, NOW, CLI_ACTOR, merge_id)
    with pytest.raises(NotFound), db.transaction() as session:
        identity.unmerge(session, NOW, CLI_ACTOR, uuid.uuid4())


def test_a_manual_merge_keeps_the_chosen_profile_and_is_idempotent(db: Database) -> None:
    a, b = observe(db, seen({"email": "a@example.com"}, 0), seen({"user_id": "u-9"}, 1))
    assert a is not None
    assert b is not None
    with db.transaction() as session:
        merge_id = identity.merge_profiles(session, NOW, CLI_ACTOR, b, a, "same person, checked")
    with db.transaction() as session:
        assert identity.merge_profiles(session, NOW, CLI_ACTOR, b, a, "again") == merge_id
        (record,) = identity.merge_history(session, a)
    assert (record.kept_id, record.absorbed_id, record.rule) == (b, a, "manual")
    assert record.reason == "same person, checked"
    assert record.actor == CLI_ACTOR.label
    assert row(db, a).merged_into_id == b


def test_a_manual_merge_of_two_customer_numbers_is_a_conflict(db: Database) -> None:
    a, b = observe(
        db,
        seen({"customer_number": "C-1"}, 0, "store"),
        seen({"customer_number": "C-2"}, 1, "store"),
    )
    assert a is not None
    assert b is not None
    with pytest.raises(Conflict, match="customer_number"), db.transaction() as session:
        identity.merge_profiles(session, NOW, CLI_ACTOR, a, b, "")
    with pytest.raises(InvalidInput), db.transaction() as session:
        identity.merge_profiles(session, NOW, CLI_ACTOR, a, a, "")


def test_a_manual_merge_lifts_an_earlier_unmerge(db: Database) -> None:
    kept, absorbed, merge_id = _two_people_merged(db)
    with db.transaction() as session:
        identity.unmerge(session, NOW, CLI_ACTOR, merge_id)
    with db.transaction() as session:
        identity.merge_profiles(session, NOW, CLI_ACTOR, kept, absorbed, "they are one after all")
    assert row(db, absorbed).merged_into_id == kept


def test_an_observation_arriving_late_lands_where_time_order_puts_it(db: Database) -> None:
    # In time order: C-1 with the email first, so the later C-2 sighting is refused.
    observe(db, seen({"customer_number": "C-2", "email": "x@example.com"}, 10, "store"))
    (late,) = observe(db, seen({"customer_number": "C-1", "email": "x@example.com"}, 0, "store"))
    with db.transaction() as session:
        holder = identity.resolve(session, "email", "x@example.com")
        c1 = identity.resolve(session, "customer_number", "C-1")
        c2 = identity.resolve(session, "customer_number", "C-2")
    assert holder == c1 == late
    assert c2 is not None
    assert c2 != c1


# ------------------------------------------------------------------ privacy


def test_export_then_erase_removes_the_person_from_the_graph(db: Database) -> None:
    kept, absorbed, _ = _two_people_merged(db)
    observe(db, seen({"user_id": "u-2", "email": "other@example.com"}, 40))
    with db.transaction() as session:
        export = identity.export_identity(session, absorbed)
    assert {i["kind"] for i in export["identifiers"]} >= {"email", "phone", "customer_number"}
    assert export["merges"]
    assert export["traits"]
    assert export["observations"]
    assert {p["id"] for p in export["profiles"]} == {str(kept), str(absorbed)}
    with db.transaction() as session:
        pairs = identity.erase_identity(session, kept)
    assert ("email", "lea@example.com") in pairs
    with db.transaction() as session:
        assert identity.resolve(session, "email", "lea@example.com") is None
        assert identity.identifiers_of(session, kept) == []
        assert identity.traits_of(session, kept) == {}
        assert identity.merge_history(session, kept) == []
        assert identity.resolve(session, "user_id", "u-2") is not None
