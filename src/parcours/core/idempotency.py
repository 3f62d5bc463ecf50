"""Idempotency keys: a creating request retried with the same key never acts twice.

The key is claimed in the caller's transaction *before* the action runs, so a
concurrent retry waits on the unique key (PostgreSQL) or the write lock (SQLite) and then
finds the stored answer. A failed action rolls back with its claim, so the client may
retry it. Reusing a key for a different request is a 409.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from parcours.core.errors import Conflict, FieldError, InvalidInput
from parcours.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotentResult:
    status_code: int
    body: Any
    replayed: bool


def fingerprint(method: str, path: str, body: Any) -> str:
    """A stable hash of what the request asks for."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_once(
    session: Session,
    now: datetime,
    principal: str,
    key: str | None,
    request_fingerprint: str,
    action: Callable[[], Any],
    status_code: int = 201,
) -> IdempotentResult:
    """Run `action` (returning a JSON-able body) once per (principal, key).

    Without a key the action simply runs. With a key seen before for the same request,
    the stored answer comes back with `replayed=True`.
    """
    if key is None:
        return IdempotentResult(status_code, action(), replayed=False)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            "The Idempotency-Key header must hold 1 to 255 characters.",
            [FieldError("must hold 1 to 255 characters", parameter="Idempotency-Key")],
        )
    record = IdempotencyRecord(
        principal=principal, key=key, fingerprint=request_fingerprint, created_at=now
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        return _replay(session, principal, key, request_fingerprint)
    body = action()
    record.status_code = status_code
    record.response = body
    return IdempotentResult(status_code, body, replayed=False)


def _replay(
    session: Session, principal: str, key: str, request_fingerprint: str
) -> IdempotentResult:
    stored = session.get(IdempotencyRecord, (principal, key), populate_existing=True)
    if stored is None or stored.status_code is None:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly."
        )
    if stored.fingerprint != request_fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used for a different request; "
            "use a new key for a new request."
        )
    return IdempotentResult(stored.status_code, stored.response, replayed=True)
