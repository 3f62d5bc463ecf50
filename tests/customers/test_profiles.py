"""Profiles 360: computed traits, RFM, the timeline and search, on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, select, text

from parcours import customers
from parcours.core.audit import SYSTEM_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput, NotFound
from parcours.core.models import AuditEntry
from parcours.customers import identity, profile_traits, profiles
from parcours.customers.models import ComputedTraits, Customer
from parcours.customers.profile_timeline import (
    TimelineEntry,
    TimelineQuery,
    event_statement,
    timeline,
    unfiled_statement,
)
from tests import builders
from tests.builders import event_row, order_row, utc
from tests.test_cli import parcours


def refresh_all(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session:
        profile_traits.refresh_all(session, clock.now())


def traits_of(db: Database, profile_id: uuid.UUID) -> ComputedTraits:
    with db.transaction() as session:
        found = session.get(ComputedTraits, profile_id)
        assert found is not None
        session.expunge(found)
        return found


def store(db: Database, clock: ManualClock, code: str) -> uuid.UUID:
    return builders.location(db, clock, code)  # type: ignore[no-any-return]


def lea(db: Database, clock: ManualClock) -> uuid.UUID:
    """Léa: a web account (user id u-lea) that also browsed anonymously (a-lea)."""
    profile_id = builders.known_person(
        db,
        clock,
        traits={"first_name": "Léa", "last_name": "Martin", "size_top": "38"},
        user_id="u-lea",
        anonymous_id="a-lea",
        email="Lea.Martin@example.com",
        phone="06 98 76 54 32",
        loyalty_card="LC-0001",
    )
    assert profile_id is not None
    return profile_id  # type: ignore[no-any-return]


# ------------------------------------------------------------------ computed traits


def test_computed_traits_gather_every_channel_a_person_used(
    db: Database, clock: ManualClock
) -> None:
    lyon = store(db, clock, "LYO-1")
    profile_id = lea(db, clock)
    builders.log_events(
        db,
        event_row(utc(2026, 1, 5, 10), type="page", event=None, anonymous_id="a-lea"),
        event_row(utc(2026, 1, 6, 10), channel="app", user_id="u-lea"),
        # Both ids on one event: it is counted once.
        event_row(utc(2026, 1, 7, 10), user_id="u-lea", anonymous_id="a-lea"),
        order_row(utc(2026, 1, 8, 10), 89.9, ("R-1", "Robes"), ("R-2", "Robes"), user_id="u-lea"),
        order_row(
            utc(2026, 2, 1, 15),
            120,
            ("C-1", "Chaussures"),
            channel="store",
            store_id=lyon,
            user_id="u-lea",
        ),
        event_row(utc(2026, 2, 3, 11), channel="store", store_id=lyon, user_id="u-lea"),
        event_row(utc(2026, 3, 1), user_id="somebody-else"),
    )
    refresh_all(db, clock)
    found = traits_of(db, profile_id)
    assert found.first_seen_at == utc(2026, 1, 5, 10)
    assert found.last_seen_at == utc(2026, 2, 3, 11)
    assert found.events_count == 6
    assert found.channels == ["web", "store", "app"]  # most used first
    assert found.orders_count == 2
    assert (found.revenue_cents, found.currency) == (20990, "EUR")
    assert found.average_basket_cents == 10495
    assert found.favourite_category == "Robes"
    assert found.preferred_store_id == lyon
    assert found.last_purchase_at == utc(2026, 2, 1, 15)
    assert (found.last_purchase_cents, found.last_purchase_currency) == (12000, "EUR")
    assert (found.last_purchase_channel, found.last_purchase_store_id) == ("store", lyon)
    assert found.computed_at == clock.now()


def test_a_profile_without_activity_gets_empty_traits(db: Database, clock: ManualClock) -> None:
    profile_id = builders.add_customer(db, clock)
    refresh_all(db, clock)
    found = traits_of(db, profile_id)
    assert (found.events_count, found.orders_count, found.revenue_cents) == (0, 0, 0)
    assert found.channels == []
    assert found.first_seen_at is None
    assert found.recency_score is None


def test_amounts_follow_the_segment_fields_and_the_currency_minor_units(
    db: Database, clock: ManualClock
) -> None:
    profile_id = lea(db, clock)
    builders.log_events(
        db,
        # No revenue: the total is used; no currency: euros.
        event_row(
            utc(2026, 1, 1),
            event="Order Completed",
            user_id="u-lea",
            properties={"total": 10.5},
        ),
        order_row(utc(2026, 1, 2), 19.99, user_id="u-lea", currency="eur"),
        # An amount that is not a number counts as an order of nothing.
        order_row(utc(2026, 1, 3), "a lot", user_id="u-lea"),
        # A currency that does not exist: counted, never summed with real money.
        order_row(utc(2026, 1, 4), 5, user_id="u-lea", currency="ZZZ"),
    )
    refresh_all(db, clock)
    found = traits_of(db, profile_id)
    assert found.orders_count == 4
    assert (found.revenue_cents, found.currency) == (1050 + 1999, "EUR")
    assert found.last_purchase_cents is None  # its currency is not one


def test_the_currency_of_most_orders_is_the_profile_currency(
    db: Database, clock: ManualClock
) -> None:
    profile_id = lea(db, clock)
    builders.log_events(
        db,
        order_row(utc(2026, 1, 1), 1500, user_id="u-lea", currency="JPY"),
        order_row(utc(2026, 1, 2), 2500, user_id="u-lea", currency="JPY"),
        order_row(utc(2026, 1, 3), 50, user_id="u-lea", currency="EUR"),
    )
    refresh_all(db, clock)
    found = traits_of(db, profile_id)
    assert (found.revenue_cents, found.currency, found.average_basket_cents) == (4000, "JPY", 2000)
    assert found.orders_count == 3


def test_the_store_visited_most_is_preferred_when_nothing_was_bought_in_store(
    db: Database, clock: ManualClock
) -> None:
    lyon, paris = store(db, clock, "LYO-1"), store(db, clock, "PAR-1")
    profile_id = lea(db, clock)
    builders.log_events(
        db,
        event_row(utc(2026, 1, 1), channel="store", store_id=lyon, user_id="u-lea"),
        event_row(utc(2026, 1, 2), channel="store", store_id=paris, user_id="u-lea"),
        event_row(utc(2026, 1, 3), channel="store", store_id=paris, user_id="u-lea"),
    )
    refresh_all(db, clock)
    assert traits_of(db, profile_id).preferred_store_id == paris
    # One purchase outweighs visits.
    builders.log_events(
        db, order_row(utc(2026, 1, 4), 10, channel="store", store_id=lyon, user_id="u-lea")
    )
    refresh_all(db, clock)
    assert traits_of(db, profile_id).preferred_store_id == lyon


def buyers(db: Database, clock: ManualClock, count: int) -> list[uuid.UUID]:
    """Buyer n (0-based) bought n + 1 times, the last time on day n + 1, n + 1 euros each."""
    ids = []
    rows = []
    for n in range(count):
        person = builders.known_person(db, clock, user_id=f"u-{n}", email=f"b{n}@example.com")
        ids.append(person)
        rows += [
            order_row(utc(2026, 1, n + 1, 8, k), n + 1, user_id=f"u-{n}") for k in range(n + 1)
        ]
    builders.log_events(db, *rows)
    return ids


def test_rfm_scores_are_quintiles_among_the_customers_who_bought(
    db: Database, clock: ManualClock
) -> None:
    ids = buyers(db, clock, 5)
    window_shopper = builders.known_person(db, clock, user_id="u-look", email="look@example.com")
    builders.log_events(db, event_row(utc(2026, 1, 9), user_id="u-look"))
    refresh_all(db, clock)
    scores = [
        (t.recency_score, t.frequency_score, t.monetary_score)
        for t in (traits_of(db, i) for i in ids)
    ]
    assert scores == [(1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4), (5, 5, 5)]
    assert traits_of(db, window_shopper).recency_score is None


def test_refreshing_one_profile_gives_what_the_full_refresh_gives(
    db: Database, clock: ManualClock
) -> None:
    ids = buyers(db, clock, 5)
    refresh_all(db, clock)
    before = {i: traits_of(db, i) for i in ids}
    with db.transaction() as session:
        assert profile_traits.refresh_profiles(session, clock.now(), [ids[2], uuid.uuid4()]) == 1
    again = traits_of(db, ids[2])
    columns = [c.key for c in ComputedTraits.__table__.columns]
    assert {c: getattr(again, c) for c in columns} == {
        c: getattr(before[ids[2]], c) for c in columns
    }


def test_a_full_refresh_takes_the_same_few_queries_for_any_number_of_profiles(
    db: Database, clock: ManualClock
) -> None:
    def statements_for_refresh() -> int:
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            refresh_all(db, clock)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return len(statements)

    buyers(db, clock, 2)
    few = statements_for_refresh()
    for n in range(2, 12):
        builders.known_person(db, clock, user_id=f"u-{n}", email=f"b{n}@example.com")
        builders.log_events(db, order_row(utc(2026, 2, 1), 5, user_id=f"u-{n}"))
    assert statements_for_refresh() == few <= 14


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=60))
def test_quintile_scores_are_between_1_and_5_and_never_decrease(values: list[int]) -> None:
    ordered = sorted(values)
    scores = [profile_traits.quintile(ordered, v) for v in ordered]
    assert all(1 <= s <= 5 for s in scores)
    assert scores == sorted(scores)
    if len(set(values)) == 1:
        assert set(scores) == {3}


def test_the_periodic_job_refreshes_the_profiles_that_have_new_events(
    db: Database, clock: ManualClock
) -> None:
    jobs = {job.name: job for job in customers.periodic_jobs()}
    recent = jobs["customers.profiles.refresh_recent"]
    assert "customers.profiles.refresh_all" in jobs
    profile_id = lea(db, clock)
    other = builders.known_person(db, clock, user_id="u-other", email="other@example.com")
    builders.log_events(db, order_row(utc(2026, 1, 8), 30, anonymous_id="a-lea"))
    assert recent.run(db, clock) == 1
    assert traits_of(db, profile_id).orders_count == 1
    with db.transaction() as session:
        assert session.get(ComputedTraits, other) is None
    assert recent.run(db, clock) == 0  # nothing new since
    builders.log_events(db, order_row(utc(2026, 1, 9), 30, user_id="u-lea"))
    clock.advance(timedelta(minutes=1))
    assert recent.run(db, clock) == 1
    assert traits_of(db, profile_id).orders_count == 2
    assert jobs["customers.profiles.refresh_all"].run(db, clock) == 2


# ------------------------------------------------------------------ timeline


def test_the_timeline_shows_every_channel_newest_first_with_store_names(
    db: Database, clock: ManualClock
) -> None:
    lyon = store(db, clock, "LYO-1")
    profile_id = lea(db, clock)
    builders.log_events(
        db,
        event_row(utc(2026, 1, 5), type="page", event="Robes", anonymous_id="a-lea"),
        order_row(utc(2026, 1, 6), 59.5, ("R-1", "Robes"), user_id="u-lea"),
        event_row(utc(2026, 1, 7), channel="store", store_id=lyon, user_id="u-lea"),
        event_row(utc(2026, 1, 8), user_id="u-lea", anonymous_id="a-lea"),
        event_row(utc(2026, 1, 9), user_id="u-someone-else"),
    )
    with db.transaction() as session:
        page = profiles.profile_timeline(session, clock.now(), SYSTEM_ACTOR, profile_id)
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.timeline_viewed")
        ).one()
    assert [e.at for e in page.items] == [utc(2026, 1, d) for d in (8, 7, 6, 5)]
    assert [e.channel for e in page.items] == ["web", "store", "web", "web"]
    assert page.items[1].store_name == "Store LYO-1"
    order = page.items[2]
    assert (order.title, str(order.amount)) == ("Order Completed", "59.50 EUR")
    assert page.items[3].kind == "page"
    assert page.next_cursor is None
    assert audited.target_id == str(profile_id)


@pytest.mark.parametrize("filed", [10, 4, 0])
def test_the_timeline_pages_without_gaps_or_repeats(
    db: Database, clock: ManualClock, filed: int
) -> None:
    """`filed`: how many of the events identity has filed by sender; the others are
    read from the log's tail."""
    profile_id = lea(db, clock)
    # Ten events, several at the same instant, on both identifiers.
    rows = [
        event_row(
            utc(2026, 1, 1 + n // 3),
            **({"user_id": "u-lea"} if n % 2 else {"anonymous_id": "a-lea"}),
        )
        for n in range(10)
    ]
    builders.log_events(db, *rows[:filed])
    builders.log_events(db, *rows[filed:], read=False)
    with db.transaction() as session:
        pages, cursor = [], None
        while True:
            page = profiles.profile_timeline(
                session, clock.now(), SYSTEM_ACTOR, profile_id, cursor, limit=3
            )
            pages.append(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        everything = profiles.profile_timeline(
            session, clock.now(), SYSTEM_ACTOR, profile_id, limit=50
        )
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [e.key for p in pages for e in p] == [e.key for e in everything.items]
    assert len({e.key for e in everything.items}) == 10


def test_a_timeline_cursor_that_was_not_given_is_refused(db: Database, clock: ManualClock) -> None:
    profile_id = lea(db, clock)
    with db.transaction() as session, pytest.raises(InvalidInput) as refused:
        profiles.profile_timeline(session, clock.now(), SYSTEM_ACTOR, profile_id, "not-a-cursor")
    assert refused.value.errors[0].parameter == "cursor"


def test_consents_merges_and_other_sources_join_the_timeline(
    db: Database, clock: ManualClock
) -> None:
    profile_id = lea(db, clock)
    other = builders.known_person(db, clock, anonymous_id="a-lea-2", email="lea.m@example.org")
    builders.log_events(db, event_row(utc(2026, 1, 2), anonymous_id="a-lea-2"))
    with db.transaction() as session:
        customers.add_consents(
            session,
            [
                {
                    "customer_id": profile_id,
                    "purpose": "marketing",
                    "channel": "email",
                    "granted": True,
                    "at": utc(2026, 1, 3),
                    "source": "web",
                    "proof": "form v3, ip 192.0.2.1",
                }
            ],
        )
    clock.current = utc(2026, 1, 4)
    with db.transaction() as session:
        identity.merge_profiles(
            session, clock.now(), SYSTEM_ACTOR, profile_id, other, "same person"
        )

    def orders(session: Any, query: TimelineQuery) -> list[TimelineEntry]:
        return [TimelineEntry(utc(2026, 1, 1), "order:0001", "order", "ML-0001", channel="app")]

    with db.transaction() as session:
        ids = [(i.kind, i.value) for i in identity.identifiers_of(session, profile_id)]
        page = timeline(session, profile_id, ids, sources=[orders])
    kinds = [(e.kind, e.at) for e in page.items]
    assert kinds == [
        ("merge", utc(2026, 1, 4)),
        ("consent", utc(2026, 1, 3)),
        ("track", utc(2026, 1, 2)),  # the absorbed profile's event
        ("order", utc(2026, 1, 1)),
    ]
    consent = page.items[1]
    assert consent.detail["granted"] is True
    assert "proof" not in consent.detail
    assert "192.0.2.1" not in str(consent)


# ------------------------------------------------------------------ search and the profile


@pytest.mark.parametrize(
    ("q", "kind"),
    [
        ("  LEA.MARTIN@example.com ", "email"),
        ("06 98 76 54 32", "phone"),
        ("+33698765432", "phone"),
        ("LC-0001", "loyalty_card"),
    ],
)
def test_search_finds_a_person_by_any_exact_identifier(
    db: Database, clock: ManualClock, q: str, kind: str
) -> None:
    profile_id = lea(db, clock)
    builders.known_person(db, clock, user_id="u-x", email="x@example.com")
    with db.transaction() as session:
        page = profiles.search_profiles(session, clock.now(), SYSTEM_ACTOR, q)
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.searched")
        ).one()
    assert [(s.customer.id, s.matched) for s in page.items] == [(profile_id, (kind,))]
    assert entry.detail["matched"] == [kind]
    assert "lea" not in str(entry.detail).lower()
    assert "0001" not in str(entry.detail)


def test_search_finds_a_customer_number_and_names_by_prefix_a_page_at_a_time(
    db: Database, clock: ManualClock
) -> None:
    with db.transaction() as session:
        customers.add_customers(
            session,
            clock.now(),
            [
                {"customer_number": "C-42", "first_name": "Élodie", "last_name": "Marchand"},
                {"email": "l@example.com", "first_name": "Léa", "last_name": "Martin"},
                {"email": "m@example.com", "first_name": "Marc", "last_name": "Dupont"},
                {"email": "n@example.com", "first_name": "Nina", "last_name": "Simon"},
            ],
        )

    def names(q: str, limit: int = 50, cursor: str | None = None) -> tuple[list[str], Any]:
        with db.transaction() as session:
            page = profiles.search_profiles(session, clock.now(), SYSTEM_ACTOR, q, cursor, limit)
        return [f"{s.customer.first_name} {s.customer.last_name}" for s in page.items], page

    assert names("C-42")[0] == ["Élodie Marchand"]
    assert names("mar")[0] == ["Élodie Marchand", "Léa Martin", "Marc Dupont"]
    assert names("élo")[0] == ["Élodie Marchand"]
    assert names("martin léa")[0] == ["Léa Martin"]
    assert names("zz")[0] == []
    assert names("m")[0] == []  # one letter is too short to mean anything
    first, page = names("mar", limit=2)
    rest, last = names("mar", limit=2, cursor=page.next_cursor)
    assert first + rest == ["Élodie Marchand", "Léa Martin", "Marc Dupont"]
    assert last.next_cursor is None
    assert len(names("")[0]) == 4


def test_the_profile_follows_a_merged_id_to_the_survivor(db: Database, clock: ManualClock) -> None:
    profile_id = lea(db, clock)
    other = builders.known_person(db, clock, anonymous_id="a-lea-2", email="lea.m@example.org")
    with db.transaction() as session:
        identity.merge_profiles(
            session, clock.now(), SYSTEM_ACTOR, profile_id, other, "same person"
        )
    with db.transaction() as session:
        profile = profiles.get_profile(session, clock.now(), SYSTEM_ACTOR, other)
        searched = profiles.search_profiles(session, clock.now(), SYSTEM_ACTOR, "")
        assert profile.id == profile_id
        assert profile.merged_from == other
        assert {i.value for i in profile.identifiers} >= {"u-lea", "a-lea-2"}
        assert profile.traits["size_top"].value == "38"
        assert profile.computed is not None  # computed on first view
        assert [s.customer.id for s in searched.items] == [profile_id]
    with db.transaction() as session, pytest.raises(NotFound):
        profiles.get_profile(session, clock.now(), SYSTEM_ACTOR, uuid.uuid4())


def test_a_merged_profile_is_never_listed(db: Database, clock: ManualClock) -> None:
    keep = lea(db, clock)
    gone = builders.known_person(db, clock, email="gone@example.com")
    with db.transaction() as session:
        identity.merge_profiles(session, clock.now(), SYSTEM_ACTOR, keep, gone, "same person")
        assert session.get(Customer, gone) is not None
    with db.transaction() as session:
        found = profiles.search_profiles(session, clock.now(), SYSTEM_ACTOR, "gone@example.com")
    assert [s.customer.id for s in found.items] == [keep]


def test_the_command_line_refreshes_traits_on_demand(
    sqlite_db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    profile_id = lea(sqlite_db, clock)
    builders.known_person(sqlite_db, clock, email="someone@example.com")
    builders.log_events(sqlite_db, order_row(utc(2026, 1, 8), 30, user_id="u-lea"))
    env = {"PARCOURS_DATABASE_URL": sqlite_db.engine.url.render_as_string(hide_password=False)}
    one = parcours(tmp_path, "customers", "refresh-traits", "--profile", str(profile_id), env=env)
    assert one.returncode == 0, one.stderr
    assert "refreshed for 1 profiles" in one.stdout
    assert traits_of(sqlite_db, profile_id).orders_count == 1
    everyone = parcours(tmp_path, "customers", "refresh-traits", env=env)
    assert everyone.returncode == 0, everyone.stderr
    assert "refreshed for 2 profiles" in everyone.stdout


def _plan(db: Database, stmt: Any) -> str:
    with db.transaction() as session:
        dialect = session.get_bind().dialect
        sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if dialect.name == "postgresql":
            session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table is scanned
            return "\n".join(r[0] for r in session.execute(text("EXPLAIN " + sql)))
        return "\n".join(str(r[-1]) for r in session.execute(text("EXPLAIN QUERY PLAN " + sql)))


def test_the_timeline_reads_the_events_through_the_sender_index_and_the_tail_by_position(
    db: Database, clock: ManualClock
) -> None:
    query = TimelineQuery(uuid.uuid4(), (("user_id", "u-lea"), ("anonymous_id", "a-lea")), None, 51)
    filed = _plan(db, event_statement(query))
    unfiled = _plan(db, unfiled_statement(query))
    if db.dialect == "postgresql":
        assert "pk_event_senders" in filed
        assert "pk_events" in unfiled
    else:
        assert filed.count("SEARCH event_senders USING PRIMARY KEY (kind=? AND value=?)") == 2
        assert "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)" in unfiled
    assert "ix_events_timestamp" not in unfiled  # not the whole log in time order


def test_the_profile_page_benchmark_runs_and_reports_its_figures() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "profile_page",
            "--events",
            "3000",
            "--profiles",
            "200",
            "--samples",
            "10",
            "--heavy",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["events"] == 3000
    assert figures["timeline_uses_indexes"] is True
    assert figures["console_page_p95_ms"] > 0
