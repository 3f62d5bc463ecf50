import threading

import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput
from parcours.core.idempotency import fingerprint, run_once
from parcours.core.models import AuditEntry

REQUEST = fingerprint("POST", "/v1/things", {"qty": 1})


def _create(
    db: Database, clock: ManualClock, key: str | None, request: str = REQUEST
) -> tuple[object, bool]:
    def action() -> dict[str, int]:
        session.add(
            AuditEntry(
                at=clock.now(), actor="a", action="thing.created", target_type="t", detail={}
            )
        )
        return {"created": 1}

    with db.transaction() as session:
        result = run_once(session, clock.now(), "api_key:sk_1", key, request, action)
    return result.body, result.replayed


def _count(db: Database) -> int:
    with db.transaction() as session:
        return session.query(AuditEntry).count()


def test_a_retry_with_the_same_key_returns_the_first_answer_without_acting(
    db: Database, clock: ManualClock
) -> None:
    assert _create(db, clock, "k-1") == ({"created": 1}, False)
    assert _create(db, clock, "k-1") == ({"created": 1}, True)
    assert _count(db) == 1


def test_without_a_key_every_request_acts(db: Database, clock: ManualClock) -> None:
    _create(db, clock, None)
    _create(db, clock, None)
    assert _count(db) == 2


def test_reusing_a_key_for_another_request_is_a_conflict(db: Database, clock: ManualClock) -> None:
    _create(db, clock, "k-2")
    with pytest.raises(Conflict, match="different request"):
        _create(db, clock, "k-2", fingerprint("POST", "/v1/things", {"qty": 2}))


def test_a_failed_action_releases_its_key(db: Database, clock: ManualClock) -> None:
    def failing() -> dict[str, int]:
        raise InvalidInput("no stock")

    with pytest.raises(InvalidInput), db.transaction() as session:
        run_once(session, clock.now(), "p", "k-3", REQUEST, failing)
    assert _create(db, clock, "k-3") == ({"created": 1}, False)


def test_an_oversized_key_is_refused(db: Database, clock: ManualClock) -> None:
    with pytest.raises(InvalidInput, match="1 to 255"):
        _create(db, clock, "x" * 256)


def test_concurrent_retries_act_once(db: Database, clock: ManualClock) -> None:
    results: list[tuple[object, bool]] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            results.append(_create(db, clock, "k-race"))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 7
    assert _count(db) == 1
