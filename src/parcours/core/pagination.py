"""Cursor pagination: the one way every list endpoint pages.

Rows are ordered by their UUIDv7 primary key (creation order); the cursor is the last
id of the page, opaque to clients.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from parcours.core.errors import Refused, refusal

T = TypeVar("T")
MAX_LIMIT = 500

# What paging refuses, as `message % values` for the console.
NOT_A_CURSOR = "The cursor is not one this API returned; start again without it."
CURSOR = "not a valid cursor"
LIMIT = "limit must be between 1 and %(max)s"
LIMIT_FIELD = "must be between 1 and %(max)s"
MESSAGES = (NOT_A_CURSOR, CURSOR, LIMIT, LIMIT_FIELD)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def not_a_cursor() -> Refused:
    """The refusal of a `cursor` parameter this API did not return."""
    return Refused(NOT_A_CURSOR, [refusal(CURSOR, parameter="cursor")], NOT_A_CURSOR)


def check_limit(limit: int, most: int = MAX_LIMIT) -> None:
    """Refuse a page size outside 1..`most` (the `limit` parameter)."""
    if not 1 <= limit <= most:
        raise Refused.of(LIMIT, [refusal(LIMIT_FIELD, parameter="limit", max=most)], max=most)


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError):
        raise not_a_cursor() from None


def paginate(
    session: Session,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
) -> Page[Any]:
    """One page of `stmt` (which selects an entity) after `cursor`, at most `limit` rows."""
    check_limit(limit)
    if cursor:
        stmt = stmt.where(id_column > decode_cursor(cursor))
    rows = list(session.scalars(stmt.order_by(id_column).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(getattr(rows[-1], id_column.key)) if more and rows else None)
