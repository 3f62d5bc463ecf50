"""Matching profiles in the database and the review queue (both databases)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from parcours.core.audit import CLI_ACTOR, Actor
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput, NotFound
from parcours.core.models import AuditEntry
from parcours.customers import identity, matching
from parcours.customers.matching import RunRequest
from parcours.customers.models import Customer, MatchCandidate, MatchRun
from tests.builders import known_person

REVIEWER = Actor(kind="user", id="reviewer-1", role="marketer")


def person(
    db: Database, clock: ManualClock, source: str, ids: dict[str, str], **traits: Any
) -> uuid.UUID:
    profile = known_person(db, clock, source=source, traits=traits, **ids)
    assert profile is not None
    return uuid.UUID(str(profile))


def two_sources(db: Database, clock: ManualClock) -> dict[str, uuid.UUID]:
    """Loyalty cards from the store file and web accounts: Élodie, Karim and Jean are in
    both (without a shared identifier), Claire is only online."""
    pos, web = "import:pos", "web"
    return {
        "elodie_pos": person(
            db, clock, pos, {"loyalty_card": "C-1"}, first_name="Élodie",
            last_name="Marchand", birth_date="1985-03-12", address="12 rue des Lilas",
            postcode="69003", city="Lyon",
        ),
        "karim_pos": person(
            db, clock, pos, {"loyalty_card": "C-2"}, first_name="Karim", last_name="Benali",
            birth_date="1979-07-30", postcode="75016", city="Paris",
        ),
        "jean_pos": person(
            db, clock, pos, {"loyalty_card": "C-3"}, first_name="Jean", last_name="Morel",
            birth_date="1955-05-05", address="1 rue Haute", postcode="67000", city="Strasbourg",
        ),
        "elodie_web": person(
            db, clock, web, {"email": "elodie.m@example.fr"}, first_name="Elodie",
            last_name="Marchant", birth_date="1985-03-12", address="12 rue des lilas",
            postcode="69003", city="Lyon",
        ),
        "karim_web": person(
            db, clock, web, {"email": "karim@example.fr"}, first_name="Karim",
            last_name="Benalli", birth_date="1979-07-30", postcode="75016", city="Paris",
        ),
        "jean_web": person(
            db, clock, web, {"email": "jean.morel@example.fr"}, first_name="Jean",
            last_name="Morel", birth_date="1955-05-05", address="1 rue Haute",
            postcode="67000", city="Strasbourg", phone="0388123456",
        ),
        "claire_web": person(
            db, clock, web, {"email": "claire@example.fr"}, first_name="Claire",
            last_name="Rousseau", birth_date="1991-02-17", postcode="44000", city="Nantes",
        ),
    }  # fmt: skip


@pytest.fixture
def shop(db: Database, clock: ManualClock) -> dict[str, uuid.UUID]:
    return two_sources(db, clock)


def run(db: Database, clock: ManualClock, **settings: Any) -> MatchRun:
    request = RunRequest(**{"source_a": "import:pos", "source_b": "web", **settings})
    with db.transaction() as session:
        done = matching.run_matching(session, clock.now(), CLI_ACTOR, request)
        session.expunge(done)
        return done


def queue(db: Database, clock: ManualClock, status: str = "pending") -> list[matching.Candidate]:
    with db.transaction() as session:
        return matching.review_queue(session, clock.now(), REVIEWER, status).items


def pair(candidate: matching.Candidate) -> set[uuid.UUID]:
    return {candidate.a.id, candidate.b.id}


def test_a_run_queues_the_pairs_of_two_sources_with_their_agreeing_fields(
    db: Database, clock: ManualClock, shop: dict[str, uuid.UUID]
) -> None:
    done = run(db, clock, lower=0.5, upper=1.0)
    assert (done.profiles_a, done.profiles_b) == (3, 4)
    pending = queue(db, clock)
    assert {frozenset(pair(c)) for c in pending} == {
        frozenset({shop["elodie_pos"], shop["elodie_web"]}),
        frozenset({shop["karim_pos"], shop["karim_web"]}),
        frozenset({shop["jean_pos"], shop["jean_web"]}),
    }
    elodie = next(c for c in pending if shop["elodie_web"] in pair(c))
    assert elodie.agreement["first_name"] == "exact"
    assert elodie.agreement["last_name"] == "close"
    assert elodie.a.values["last_name"] in ("Marchand", "Marchant")
    assert elodie.a.id < elodie.b.id  # the older profile first: the one kept
    assert done.queued == 3
    assert done.merged == 0  # nothing merges unless asked
    assert done.fields == ["first_name", "last_name", "birth_date", "address", "postcode", "city"]


def test_sure_pairs_merge_only_when_asked_and_the_others_wait(
    db: Database, clock: ManualClock, shop: dict[str, uuid.UUID]
) -> None:
    done = run(db, clock, lower=0.5, upper=0.999999, auto_merge=True)
    assert done.merged >= 1
    assert done.merged + done.queued == 3
    with db.transaction() as session:
        jean = session.get(Customer, shop["jean_web"])
        assert jean is not None
        assert jean.merged_into_id == shop["jean_pos"]  # the older profile is kept
        history = identity.merge_history(session, shop["jean_pos"])
        assert any("matching run" in (m.reason or "") for m in history)
        statuses = dict(
            session.execute(
                select(MatchCandidate.status, func.count()).group_by(MatchCandidate.status)
            ).all()
        )
    assert statuses.get("merged") == done.merged


def test_accepting_a_pair_merges_the_profiles_and_is_audited(
    db: Database, clock: ManualClock, shop: dict[str, uuid.UUID]
) -> None:
    run(db, clock, lower=0.5, upper=1.0)
    karim = next(c for c in queue(db, clock) if shop["karim_web"] in pair(c))
    with db.transaction() as session:
        merge_id = matching.accept_candidate(session, clock.now(), REVIEWER, karim.id)
    with db.transaction() as session:
        assert identity.canonical_profile_id(session, shop["karim_web"]) == shop["karim_pos"]
        stored = session.get(MatchCandidate, karim.id)
        assert stored is not None
        assert (stored.status, stored.merge_id, stored.decided_by) == (
            "accepted",
            merge_id,
            "user:reviewer-1",
        )
        actions = set(session.scalars(select(AuditEntry.action)))
    assert {"matching.accepted", "identity.merged", "matching.queue_viewed"} <= actions
    assert karim.id not in {c.id for c in queue(db, clock)}


def test_a_rejected_pair_is_remembered_and_never_proposed_again(
    db: Database, clock: ManualClock, shop: dict[str, uuid.UUID]
) -> None:
    run(db, clock, lower=0.5, upper=1.0)
    elodie = next(c for c in queue(db, clock) if shop["elodie_web"] in pair(c))
    with db.transaction() as session:
        matching.reject_candidate(session, clock.now(), REVIEWER, elodie.id)
    again = run(db, clock, lower=0.5, upper=1.0)
    assert again.pairs_known == 3  # Élodie's rejected pair and the two still waiting
    assert again.queued == 0
    assert elodie.id not in {c.id for c in queue(db, clock)}
    assert [c.id for c in queue(db, clock, "rejected")] == [elodie.id]
    with db.transaction() as session:
        assert identity.canonical_profile_id(session, shop["elodie_web"]) == shop["elodie_web"]


def test_a_pair_is_decided_once(
    db: Database, clock: ManualClock, shop: dict[str, uuid.UUID]
) -> None:
    run(db, clock, lower=0.5, upper=1.0)
    first = queue(db, clock)[0]
    with db.transaction() as session:
        matching.reject_candidate(session, clock.now(), REVIEWER, first.id)
    with pytest.raises(Conflict, match="already decided \\(rejected\\)"), db.transaction() as s:
        matching.accept_candidate(s, clock.now(), REVIEWER, first.id)
    with pytest.raises(NotFound), db.transaction() as session:
        matching.reject_candidate(session, clock.now(), REVIEWER, uuid.uuid4())


def test_pairs_whose_profile_was_merged_meanwhile_leave_the_queue(
    db: Database, clock: ManualClock, shop: dict[str, uuid.UUID]
) -> None:
    run(db, clock, lower=0.5, upper=1.0)
    with db.transaction() as session:
        identity.merge_profiles(
            session, clock.now(), CLI_ACTOR, shop["claire_web"], shop["jean_web"], "by hand"
        )
    assert shop["jean_web"] not in {p for c in queue(db, clock) for p in pair(c)}
    with db.transaction() as session:
        assert matching.count_pending(session) == 2


def twins_with_customer_numbers(db: Database, clock: ManualClock) -> tuple[uuid.UUID, ...]:
    """Alike in every field, but each with a customer number: the identity rules allow
    one per profile, so they refuse to merge them."""
    traits = {"first_name": "Inès", "last_name": "Roux", "birth_date": "1990-10-10",
              "address": "7 rue Vieille", "postcode": "34000", "city": "Montpellier"}  # fmt: skip
    return (
        person(db, clock, "import:pos", {"customer_number": "C-100"}, **traits),
        person(db, clock, "web", {"customer_number": "C-200"}, **traits),
    )


def test_a_merge_the_identity_rules_refuse_is_left_for_review(
    db: Database, clock: ManualClock
) -> None:
    twins_with_customer_numbers(db, clock)
    done = run(db, clock, lower=0.5, upper=0.9, auto_merge=True)
    assert (done.merged, done.merge_refused, done.queued) == (0, 1, 1)


def test_accepting_a_pair_the_identity_rules_refuse_changes_nothing(
    db: Database, clock: ManualClock
) -> None:
    _, second = twins_with_customer_numbers(db, clock)
    run(db, clock, lower=0.5, upper=1.0)
    (twins,) = queue(db, clock)
    with pytest.raises(Conflict, match="customer_number"), db.transaction() as session:
        matching.accept_candidate(session, clock.now(), REVIEWER, twins.id)
    assert [c.status for c in queue(db, clock)] == ["pending"]  # the whole decision undone
    with db.transaction() as session:
        assert identity.canonical_profile_id(session, second) == second


def test_every_profile_can_be_matched_with_every_other(
    db: Database, clock: ManualClock, shop: dict[str, uuid.UUID]
) -> None:
    done = run(db, clock, source_a=None, source_b=None, lower=0.5, upper=1.0)
    assert done.profiles_a == 7
    assert done.queued == 3


def test_a_run_without_profiles_finds_nothing(db: Database, clock: ManualClock) -> None:
    done = run(db, clock)
    assert (done.pairs_found, done.queued, done.merged) == (0, 0, 0)


@pytest.mark.parametrize(
    ("settings", "pointer"),
    [
        ({"lower": 0.9, "upper": 0.5}, "#/lower"),
        ({"upper": 1.5}, "#/upper"),
        ({"engine": "oracle"}, "#/engine"),
        ({"source_b": None}, None),
    ],
)
def test_bad_run_settings_are_refused(
    db: Database, clock: ManualClock, settings: dict[str, Any], pointer: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        run(db, clock, **settings)
    assert caught.value.errors[0].pointer == pointer
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(MatchRun)) == 0


def test_an_unknown_status_is_refused(db: Database, clock: ManualClock) -> None:
    with pytest.raises(InvalidInput, match="Unknown status"):
        queue(db, clock, "maybe")
