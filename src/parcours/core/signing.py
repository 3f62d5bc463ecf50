"""Signed tokens and keyed hashes, keyed by a secret generated once per installation.

The secret lives in the database (`instance_secrets`), so every process of one
installation (server, worker, command line, on any host) shares it without
configuration, and nothing is hard-coded. It is created on first use, in the caller's
transaction. Each use (`purpose`) gets its own key derived from it, so a token signed
for one use never verifies for another.

Tokens are `<payload>.<signature>`, both base64url: the payload is compact JSON, readable
by anyone holding the token, so it carries ids, never personal data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from parcours.core.errors import Refused, refusal
from parcours.core.models import InstanceSecret

KEY_ROW = "signing"  # the row of `instance_secrets` holding the key
_SESSION_CACHE = "parcours.signing.secret"
NOT_VALID = "This link is not valid: it was altered or cut."
EXPIRED = "This link has expired: ask for a new one."
# What a link's page says with `said(...)` in the reader's language (the customer's order,
# consent confirmation and unsubscribe pages).
MESSAGES = (NOT_VALID, EXPIRED)


class InvalidToken(Refused):
    """A token that was altered, truncated or signed for another use; `detail` is also
    its message, so that a page can say it in the reader's language."""

    def __init__(self, detail: str = NOT_VALID) -> None:
        super().__init__(detail, [refusal(detail, parameter="token")])


class ExpiredToken(InvalidToken):
    """A well-signed token past its expiry."""

    def __init__(self, detail: str = EXPIRED) -> None:
        super().__init__(detail)


def instance_secret(session: Session, now: datetime | None = None) -> bytes | None:
    """The installation's secret; created (with `now`) when missing and `now` is given.

    Kept in `session.info` once read: it never changes, and a batch that signs thousands
    of links (a campaign's click and unsubscribe links) then reads it once."""
    cached = session.info.get(_SESSION_CACHE)
    if isinstance(cached, bytes):
        return cached
    value = session.scalar(select(InstanceSecret.value).where(InstanceSecret.name == KEY_ROW))
    if value is None and now is not None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Two processes may create it at once: the first wins, the other reads it back.
        session.execute(
            insert(InstanceSecret)
            .values(name=KEY_ROW, value=secrets.token_hex(32), created_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = session.scalar(select(InstanceSecret.value).where(InstanceSecret.name == KEY_ROW))
    if value is None:
        return None
    secret = bytes.fromhex(value)
    if not session.in_nested_transaction():  # a savepoint could still roll a creation back
        session.info[_SESSION_CACHE] = secret
    return secret


@lru_cache(maxsize=64)
def _key(secret: bytes, purpose: str) -> bytes:
    # Derived once per purpose: tracking digests every new identifier it meets.
    return hmac.digest(secret, f"parcours:{purpose}".encode(), "sha256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def keyed_digest(secret: bytes, purpose: str, text: str) -> str:
    """HMAC-SHA256 of `text` under the purpose's key, as 64 hex digits."""
    return hmac.digest(_key(secret, purpose), text.encode("utf-8"), "sha256").hex()


def sign(
    session: Session,
    now: datetime,
    purpose: str,
    payload: dict[str, Any],
    expires_at: datetime | None = None,
) -> str:
    """A token carrying `payload` (JSON-able ids), valid for `purpose` until `expires_at`."""
    secret = instance_secret(session, now)
    assert secret is not None
    body = dict(payload)
    if expires_at is not None:
        body["exp"] = int(expires_at.timestamp())
    encoded = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    signature = hmac.new(_key(secret, purpose), encoded.encode("ascii"), hashlib.sha256).digest()
    return f"{encoded}.{_b64(signature)}"


def verify(session: Session, now: datetime, purpose: str, token: str) -> dict[str, Any]:
    """The payload of a token signed for `purpose`; `InvalidToken` or `ExpiredToken` else."""
    encoded, _, presented = token.strip().partition(".")
    secret = instance_secret(session)
    if not encoded or not presented or secret is None:
        raise InvalidToken()
    try:
        expected = hmac.new(_key(secret, purpose), encoded.encode("ascii"), hashlib.sha256)
        valid = hmac.compare_digest(_unb64(presented), expected.digest())
        payload = json.loads(_unb64(encoded)) if valid else None
    except (binascii.Error, ValueError):
        raise InvalidToken() from None
    if not isinstance(payload, dict):
        raise InvalidToken()
    expiry = payload.pop("exp", None)
    if expiry is not None and now.timestamp() > expiry:
        raise ExpiredToken()
    return payload
