"""Properties of the identity graph (hypothesis), on both databases.

(a) Merging is order-independent: any arrival order and batching of the same
    observations gives the same partition of identifiers into profiles, and the same
    traits, even when identifier limits refuse links.
(b) Unmerging the last merge restores the partition from before it (the traits the
    linking observation itself brought stay: it was seen).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from parcours.core.audit import CLI_ACTOR
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from parcours.customers import identity
from parcours.customers.identity import Observation
from parcours.customers.models import (
    Customer,
    IdentityCluster,
    IdentityIdentifier,
    IdentityMerge,
    IdentityObservation,
    IdentityTrait,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)

# A small world, so that observations collide and the limits bite often.
VALUES: dict[str, list[str]] = {
    "customer_number": ["C1", "C2", "C3"],
    "user_id": ["u1", "u2", "u3"],
    "loyalty_card": ["L1", "L2", "L3"],
    "email": ["a@example.com", "b@example.com", "c@example.com"],
    "phone": ["+33612345671", "+33612345672"],
    "anonymous_id": ["x1", "x2", "x3"],
    "device_id": ["d1"],
}
SOURCES = ["web", "store", "crm", "import:file.csv"]
NAMES = ["Léa", "Tom", "Inès", None]

identifier_maps = st.dictionaries(
    st.sampled_from(sorted(VALUES)), st.integers(0, 2), min_size=1, max_size=3
).map(lambda chosen: {k: VALUES[k][i % len(VALUES[k])] for k, i in chosen.items()})


@st.composite
def observation_lists(draw: st.DrawFn) -> list[Observation]:
    count = draw(st.integers(1, 12))
    minutes = draw(st.lists(st.integers(0, 500), min_size=count, max_size=count, unique=True))
    found = []
    for index, minute in enumerate(minutes):
        traits: dict[str, Any] = {}
        name = draw(st.sampled_from(NAMES))
        if name is not None:
            traits["first_name"] = name
        found.append(
            Observation(
                draw(identifier_maps),
                draw(st.sampled_from(SOURCES)),
                T0 + timedelta(minutes=minute),
                traits,
                f"ref-{index}",
            )
        )
    return found


def clean(db: Database) -> None:
    with db.transaction() as session:
        for model in (
            IdentityTrait,
            IdentityMerge,
            IdentityObservation,
            IdentityIdentifier,
            IdentityCluster,
            AuditEntry,
            Customer,
        ):
            session.execute(delete(model))


def apply_in_batches(db: Database, observations: list[Observation], cuts: list[int]) -> None:
    start = 0
    for cut in [*sorted(set(cuts)), len(observations)]:
        batch = observations[start:cut]
        start = max(start, cut)
        if batch:
            with db.transaction() as session:
                identity.observe(session, NOW, batch)


Snapshot = dict[frozenset[tuple[str, str]], dict[str, tuple[Any, str]]]


def snapshot(db: Database) -> Snapshot:
    """Each profile as its set of identifiers, with the traits in force on it."""
    with db.transaction() as session:
        blocks: dict[uuid.UUID, set[tuple[str, str]]] = {}
        table = IdentityIdentifier
        for kind, value, profile_id in session.execute(
            select(table.kind, table.value, table.profile_id)
        ):
            blocks.setdefault(profile_id, set()).add((kind, value))
        out: Snapshot = {}
        for profile_id, pairs in blocks.items():
            traits = identity.traits_of(session, profile_id)
            out[frozenset(pairs)] = {n: (t.value, t.source) for n, t in traits.items()}
            row = session.get(Customer, profile_id)
            assert row is not None
            assert row.merged_into_id is None
            assert row.first_name == (
                traits["first_name"].value if "first_name" in traits else None
            )
        return out


PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(observations=observation_lists(), data=st.data())
def test_merging_is_order_independent(
    db: Database, observations: list[Observation], data: st.DataObject
) -> None:
    clean(db)
    apply_in_batches(db, sorted(observations, key=lambda o: o.observed_at), [])
    in_time_order = snapshot(db)
    clean(db)
    shuffled = data.draw(st.permutations(observations))
    cuts = data.draw(st.lists(st.integers(0, len(observations)), max_size=4))
    apply_in_batches(db, list(shuffled), cuts)
    assert snapshot(db) == in_time_order


@PROPERTY_SETTINGS
@given(observations=observation_lists(), data=st.data())
def test_unmerging_the_last_merge_restores_the_partition_before_it(
    db: Database, observations: list[Observation], data: st.DataObject
) -> None:
    clean(db)
    apply_in_batches(db, list(observations), [])
    before = snapshot(db)
    identified = [
        sorted(pair for pair in block if pair[0] not in ("anonymous_id", "device_id"))
        for block in before
    ]
    identified = [pairs for pairs in identified if pairs]
    assume(len(identified) >= 2)
    first, second = data.draw(
        st.lists(st.sampled_from(range(len(identified))), min_size=2, max_size=2, unique=True)
    )
    x = data.draw(st.sampled_from(identified[first]))
    y = data.draw(st.sampled_from(identified[second]))
    assume(x[0] != y[0])  # one identifier per kind in an observation
    link = Observation({x[0]: x[1], y[0]: y[1]}, "web", T0 + timedelta(days=30), {}, "the-link")
    with db.transaction() as session:
        (profile,) = identity.observe(session, NOW, [link])
        assert profile is not None
        history = identity.merge_history(session, profile)
    merges = [m for m in history if m.outcome == "merged" and m.reference == "the-link"]
    assume(merges)
    with db.transaction() as session:
        identity.unmerge(session, NOW, CLI_ACTOR, merges[-1].id)
    assert set(snapshot(db)) == set(before)
