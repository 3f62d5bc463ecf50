"""API keys with scopes and console users with roles.

API keys are long random secrets, so a SHA-256 hash is enough at rest and keeps
verification cheap on the tracking hot path; passwords are short and guessable,
so they get argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from parcours.core.models import ApiKey, ConsoleSession, LoginFailure, User

SCOPES: dict[str, str] = {
    "tracking:write": "send tracking events (the only scope of public write keys)",
    "commerce:read": "read catalogue, stores, stock and orders",
    "commerce:write": "change catalogue, stock and orders; post POS receipts",
    "customers:read": "read customer profiles (each read is audited)",
    "customers:write": "create, import and merge customers; record consents",
    "privacy:admin": "export everything about a person and erase a person everywhere",
    "activation:write": "manage segments, campaigns, journeys and offers",
    "insight:read": "read analytics and reports",
    "admin": "everything, including keys and users",
}
KEY_KINDS = ("write", "secret")
ROLES: dict[str, str] = {
    "admin": "everything, including users, keys and settings",
    "marketer": "customers, segments, campaigns, journeys and insight",
    "staff": "store staff: orders, pickups, returns and clienteling for their stores",
}
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verifying against this keeps unknown-user logins as slow as wrong-password ones.
    return _hasher.hash("parcours-timing-equaliser")


# ---------------------------------------------------------------- API keys


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key; `secret` is shown once and never stored."""

    id: uuid.UUID
    name: str
    kind: str
    scopes: tuple[str, ...]
    secret: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def create_api_key(
    session: Session,
    now: datetime,
    actor: Actor,
    name: str,
    kind: str,
    scopes: list[str] | None = None,
    store_ids: list[str] | None = None,
) -> IssuedKey:
    """Create a key. Write keys are public and can only send tracking events."""
    if kind not in KEY_KINDS:
        raise InvalidInput(f"key kind must be one of {', '.join(KEY_KINDS)}, not {kind!r}")
    if not name.strip():
        raise InvalidInput("a key needs a name saying who uses it")
    chosen = ["tracking:write"] if kind == "write" else sorted(set(scopes or []))
    if kind == "secret" and not chosen:
        raise InvalidInput("a secret key needs at least one scope: " + ", ".join(SCOPES))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise InvalidInput(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if kind == "write" and scopes and set(scopes) != {"tracking:write"}:
        raise InvalidInput("write keys are public: they carry only the tracking:write scope")
    prefix = f"{'pk' if kind == 'write' else 'sk'}_{secrets.token_hex(6)}"
    secret = f"{prefix}_{secrets.token_urlsafe(24)}"
    key = ApiKey(
        name=name.strip(),
        kind=kind,
        prefix=prefix,
        secret_hash=_sha256(secret),
        scopes=chosen,
        store_ids=list(store_ids or []),
        created_at=now,
    )
    session.add(key)
    session.flush()
    audit.record(session, now, actor, "api_key.created", "api_key", str(key.id), scopes=chosen)
    return IssuedKey(key.id, key.name, kind, tuple(chosen), secret)


def verify_api_key(session: Session, presented: str) -> Actor:
    """The actor behind a presented key, or `Unauthenticated` with the reason."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] not in ("pk", "sk") or not parts[2]:
        raise Unauthenticated("The API key is malformed; keys look like sk_xxxxxxxxxxxx_….")
    prefix = f"{parts[0]}_{parts[1]}"
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not hmac.compare_digest(key.secret_hash, _sha256(presented)):
        raise Unauthenticated("The API key is not valid.")
    if key.revoked_at is not None:
        raise Unauthenticated("The API key has been revoked; ask an administrator for a new one.")
    return Actor(
        kind="api_key",
        id=key.prefix,
        role="admin" if "admin" in key.scopes else "api",
        scopes=frozenset(key.scopes),
        store_ids=tuple(key.store_ids or ()),
    )


def require_scope(actor: Actor, scope: str) -> None:
    """Raise `Forbidden` unless the actor holds `scope` (or `admin`)."""
    if actor.kind == "cli" or "admin" in actor.scopes or scope in actor.scopes:
        return
    raise Forbidden(f"This action needs the {scope!r} scope, which this key does not have.")


def get_api_key(session: Session, key_id: uuid.UUID) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key has the id {key_id}.")
    return key


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_api_key(session: Session, now: datetime, actor: Actor, prefix: str) -> ApiKey:
    """Revoke a key by its public prefix; revoking twice is harmless."""
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFound(f"No API key has the prefix {prefix!r}.")
    if key.revoked_at is None:
        key.revoked_at = now
        audit.record(session, now, actor, "api_key.revoked", "api_key", str(key.id))
    return key


# ---------------------------------------------------------------- users


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def create_user(
    session: Session,
    now: datetime,
    actor: Actor,
    username: str,
    password: str,
    role: str,
    display_name: str | None = None,
    store_ids: list[str] | None = None,
    locale: str | None = None,
) -> User:
    """Create a console user; staff must be given the stores they work in."""
    username = username.strip().lower()
    if not username:
        raise InvalidInput("a user needs a user name")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "staff" and not store_ids:
        raise InvalidInput("store staff must be scoped to at least one store")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"The user name {username!r} is taken.")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        store_ids=list(store_ids or []),
        locale=locale,
        created_at=now,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"The user name {username!r} is taken.") from None
    audit.record(session, now, actor, "user.created", "user", str(user.id), role=role)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def set_user_locale(session: Session, user_id: uuid.UUID, locale: str) -> None:
    """Remember a user's console language."""
    user = session.get(User, user_id)
    if user is not None:
        user.locale = locale


def set_password(
    session: Session, now: datetime, actor: Actor, username: str, password: str
) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"No user is called {username!r}.")
    user.password_hash = hash_password(password)
    session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    audit.record(session, now, actor, "user.password_set", "user", str(user.id))
    return user


def authenticate(
    session: Session,
    now: datetime,
    username: str,
    password: str,
    max_failures: int,
    window: timedelta,
) -> User | None:
    """The user for these credentials, or None (the failure is recorded in the caller's
    transaction, which must commit). Raises `TooManyRequests` after too many recent
    failures for the user name, even when the password is right."""
    username = username.strip().lower()
    since = now - window
    recent = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.username == username, LoginFailure.at > since)
    )
    if (recent or 0) >= max_failures:
        raise TooManyRequests(
            "Too many failed logins for this user; try again later.",
            retry_after_s=int(window.total_seconds()),
        )
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
        ok = user is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        session.add(LoginFailure(username=username, at=now))
        return None
    session.execute(delete(LoginFailure).where(LoginFailure.username == username))
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


WRONG_CREDENTIALS = "Wrong user name or password."


def user_actor(user: User) -> Actor:
    scopes = {"admin"} if user.role == "admin" else set()
    return Actor(
        kind="user",
        id=str(user.id),
        role=user.role,
        scopes=frozenset(scopes),
        store_ids=tuple(user.store_ids or ()),
    )


# ---------------------------------------------------------------- console sessions


@dataclass(frozen=True)
class OpenedSession:
    token: str  # goes in the cookie; only its hash is stored
    csrf_token: str
    expires_at: datetime


def open_session(session: Session, now: datetime, user: User, max_age: timedelta) -> OpenedSession:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + max_age
    session.add(
        ConsoleSession(
            token_hash=_sha256(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=expires,
        )
    )
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    audit.record(session, now, user_actor(user), "user.login", "user", str(user.id))
    return OpenedSession(token, csrf, expires)


def resolve_session(session: Session, now: datetime, token: str) -> tuple[User, str] | None:
    """The user and CSRF token of a live session, or None if unknown or expired."""
    row = session.get(ConsoleSession, _sha256(token))
    if row is None:
        return None
    if row.expires_at <= now:
        session.delete(row)
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return user, row.csrf_token


def close_session(session: Session, now: datetime, token: str) -> None:
    row = session.get(ConsoleSession, _sha256(token))
    if row is not None:
        session.delete(row)
        audit.record(
            session, now, Actor("user", str(row.user_id)), "user.logout", "user", str(row.user_id)
        )
