from datetime import timedelta

import pytest
from sqlalchemy import select, text

from parcours.core import auth
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from parcours.core.models import AuditEntry, LoginFailure
from tests import builders

WINDOW = timedelta(minutes=15)


def test_a_key_is_shown_once_and_only_its_hash_is_stored(db: Database, clock: ManualClock) -> None:
    secret = builders.api_key(db, clock, "commerce:read")
    with db.transaction() as session:
        stored = session.execute(text("SELECT prefix, secret_hash FROM api_keys")).one()
        actor = auth.verify_api_key(session, secret)
    assert secret.startswith(stored.prefix + "_")
    assert secret not in stored.secret_hash
    assert actor.scopes == {"commerce:read"}


def test_write_keys_are_public_and_can_only_track(db: Database, clock: ManualClock) -> None:
    secret = builders.api_key(db, clock, kind="write")
    with db.transaction() as session:
        actor = auth.verify_api_key(session, secret)
        assert actor.scopes == {"tracking:write"}
        with pytest.raises(Forbidden, match="customers:read"):
            auth.require_scope(actor, "customers:read")
        with pytest.raises(InvalidInput, match="only the tracking:write"):
            auth.create_api_key(session, clock.now(), CLI_ACTOR, "bad", "write", ["admin"])


def test_secret_keys_need_known_scopes(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session:
        with pytest.raises(InvalidInput, match="at least one scope"):
            auth.create_api_key(session, clock.now(), CLI_ACTOR, "empty", "secret", [])
        with pytest.raises(InvalidInput, match="unknown scope"):
            auth.create_api_key(session, clock.now(), CLI_ACTOR, "typo", "secret", ["amdin"])


@pytest.mark.parametrize(
    "presented",
    ["", "nonsense", "sk_", "xx_abc_def", "sk_000000000000_wrong-secret"],
)
def test_wrong_keys_are_refused(db: Database, clock: ManualClock, presented: str) -> None:
    builders.api_key(db, clock, "admin")
    with db.transaction() as session, pytest.raises(Unauthenticated):
        auth.verify_api_key(session, presented)


def test_a_revoked_key_stops_working_and_the_revocation_is_audited(
    db: Database, clock: ManualClock
) -> None:
    secret = builders.api_key(db, clock, "admin")
    prefix = "_".join(secret.split("_")[:2])
    with db.transaction() as session:
        auth.revoke_api_key(session, clock.now(), CLI_ACTOR, prefix)
        auth.revoke_api_key(session, clock.now(), CLI_ACTOR, prefix)  # twice is harmless
    with db.transaction() as session:
        with pytest.raises(Unauthenticated, match="revoked"):
            auth.verify_api_key(session, secret)
        actions = session.scalars(select(AuditEntry.action)).all()
        with pytest.raises(NotFound):
            auth.revoke_api_key(session, clock.now(), CLI_ACTOR, "sk_unknown")
    assert actions.count("api_key.revoked") == 1


def test_user_names_are_unique_and_case_insensitive(db: Database, clock: ManualClock) -> None:
    builders.user(db, clock, "Camille")
    with pytest.raises(Conflict, match="taken"):
        builders.user(db, clock, "camille ")


def test_store_staff_must_be_scoped_to_stores(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session, pytest.raises(InvalidInput, match="at least one store"):
        auth.create_user(session, clock.now(), CLI_ACTOR, "hugo", builders.PASSWORD, "staff")


def test_short_passwords_are_refused(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session, pytest.raises(InvalidInput, match="10 characters"):
        auth.create_user(session, clock.now(), CLI_ACTOR, "hugo", "short", "admin")


def test_passwords_are_stored_as_argon2id_hashes(db: Database, clock: ManualClock) -> None:
    builders.user(db, clock)
    with db.transaction() as session:
        stored = session.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$")
    assert builders.PASSWORD not in stored


def _login(db: Database, clock: ManualClock, password: str) -> object:
    with db.transaction() as session:
        return auth.authenticate(session, clock.now(), "camille", password, 3, WINDOW)


def test_login_is_refused_after_too_many_failures_until_the_window_passes(
    db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    for _ in range(3):
        assert _login(db, clock, "wrong password!") is None
    with pytest.raises(TooManyRequests) as caught:
        _login(db, clock, builders.PASSWORD)  # even the right password waits
    assert caught.value.retry_after_s == 900
    clock.advance(WINDOW + timedelta(seconds=1))
    assert _login(db, clock, builders.PASSWORD) is not None
    with db.transaction() as session:
        assert session.scalars(select(LoginFailure)).all() == []


def test_unknown_users_fail_like_wrong_passwords(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session:
        assert auth.authenticate(session, clock.now(), "nobody", "whatever-pass", 3, WINDOW) is None
    with db.transaction() as session:
        assert len(session.scalars(select(LoginFailure)).all()) == 1


def test_console_sessions_expire(db: Database, clock: ManualClock) -> None:
    builders.user(db, clock)
    with db.transaction() as session:
        user = auth.authenticate(session, clock.now(), "camille", builders.PASSWORD, 3, WINDOW)
        assert user is not None
        opened = auth.open_session(session, clock.now(), user, timedelta(hours=1))
    with db.transaction() as session:
        found = auth.resolve_session(session, clock.now(), opened.token)
        assert found is not None
        assert found[1] == opened.csrf_token
    clock.advance(timedelta(hours=1))
    with db.transaction() as session:
        assert auth.resolve_session(session, clock.now(), opened.token) is None
        assert auth.resolve_session(session, clock.now(), "forged-token") is None


def test_changing_a_password_ends_open_sessions(db: Database, clock: ManualClock) -> None:
    builders.user(db, clock)
    with db.transaction() as session:
        user = auth.authenticate(session, clock.now(), "camille", builders.PASSWORD, 3, WINDOW)
        assert user is not None
        opened = auth.open_session(session, clock.now(), user, timedelta(hours=1))
        auth.set_password(session, clock.now(), CLI_ACTOR, "camille", "another long password")
    with db.transaction() as session:
        assert auth.resolve_session(session, clock.now(), opened.token) is None
