"""One timeline per profile, across channels: events, merges, consent changes, and what
later contexts add (orders, returns, messages, cases) through timeline sources.

Entries are ordered newest first by (`at`, `key`); the key is unique in the timeline
and starts with its source's prefix (`event:`, `merge:`, `consent:`, ...), which lets
every source page on its own and the cursor hold a single position for all of them.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, or_, select, union_all
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core.errors import FieldError, InvalidInput
from parcours.core.money import Money
from parcours.core.pagination import check_limit
from parcours.customers import identity, identity_log
from parcours.customers.models import Consent, EventSender
from parcours.customers.models import TrackedEvent as E
from parcours.customers.profile_traits import ORDER_COMPLETED, order_amount

MAX_LIMIT = 200


@dataclass(frozen=True)
class TimelinePosition:
    """Where a page of the timeline stops: entries strictly older come next."""

    at: datetime
    key: str

    def sql_before(
        self, at: SQLColumnExpression[Any], ident: SQLColumnExpression[Any], prefix: str, bound: Any
    ) -> ColumnElement[bool]:
        """The condition a source with key prefix `prefix` puts on its rows: (`at`, key)
        before this position; `ident` is the column whose value follows the prefix in
        the key, and `bound` the cursor key's value in that column's type."""
        if self.key.startswith(prefix + ":"):
            return or_(at < self.at, and_(at == self.at, ident < bound))
        if prefix + ":" < self.key:
            return at <= self.at  # every key of this source sorts before the cursor's
        return at < self.at

    def admits(self, entry: TimelineEntry) -> bool:
        return (entry.at, entry.key) < (self.at, self.key)


@dataclass(frozen=True)
class TimelineQuery:
    """What a timeline source is asked: up to `limit` entries of the profile, newest first,
    strictly before `before` (all when None). `identifiers` are (kind, value) pairs."""

    profile_id: uuid.UUID
    identifiers: tuple[tuple[str, str], ...]
    before: TimelinePosition | None
    limit: int

    def values(self, kind: str) -> list[str]:
        return [value for k, value in self.identifiers if k == kind]


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to a person. `kind` is the event type (track, page, screen,
    identify, alias, group) or the source's word (merge, consent, order, return, message,
    case); `title` the event, page or purpose name; `detail` the raw data behind it."""

    at: datetime
    key: str
    kind: str
    title: str
    channel: str | None = None
    store_id: uuid.UUID | None = None
    amount: Money | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    store_name: str | None = None


TimelineSource = Callable[[Session, TimelineQuery], Sequence[TimelineEntry]]


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineEntry]
    next_cursor: str | None


def encode_position(position: TimelinePosition) -> str:
    raw = json.dumps([position.at.isoformat(), position.key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str) -> TimelinePosition:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, key = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(key, str):
            raise ValueError(cursor)
        return TimelinePosition(when, key)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput(
            "The cursor is not one this API returned; start again without it.",
            [FieldError("not a valid cursor", parameter="cursor")],
        ) from None


# ------------------------------------------------------------------ built-in sources

_EVENT_COLUMNS = (
    E.seq,
    E.type,
    E.event,
    E.channel,
    E.store_id,
    E.timestamp,
    E.properties,
    E.context,
)


def _event_key(seq: int) -> str:
    return f"event:{seq:020d}"


def _filed_events(kind: str, value: str, query: TimelineQuery) -> Select[Any]:
    """The events filed under one sender id: an ordered, limited range scan of
    `event_senders` by (kind, value, timestamp)."""
    stmt = (
        select(*_EVENT_COLUMNS)
        .select_from(EventSender)
        .join(E, E.seq == EventSender.seq)
        .where(EventSender.kind == kind, EventSender.value == value)
    )
    stmt = _before_page(stmt, query, EventSender.timestamp, EventSender.seq)
    return stmt.order_by(EventSender.timestamp.desc(), EventSender.seq.desc()).limit(query.limit)


def unfiled_statement(query: TimelineQuery) -> Select[Any] | None:
    """The profile's events in the log's tail not filed by sender yet (a range of `seq`,
    short while the worker keeps up). Unordered: ordered by time, SQLite would walk the
    time index through the whole log instead."""
    senders = {kind: query.values(kind) for kind in identity_log.SENDER_KINDS}
    if not any(senders.values()):
        return None
    stmt = select(*_EVENT_COLUMNS).where(identity_log.unfiled_clause(senders))
    return _before_page(stmt, query, E.timestamp, E.seq)


def _before_page(stmt: Select[Any], query: TimelineQuery, timestamp: Any, seq: Any) -> Select[Any]:
    """`stmt` kept to the events before the page's start (by `timestamp`, then `seq`)."""
    if query.before is None:
        return stmt
    bound = _seq_bound(query.before)
    return stmt.where(query.before.sql_before(timestamp, seq, "event", bound))


def _seq_bound(position: TimelinePosition) -> int:
    if not position.key.startswith("event:"):
        return 0
    try:
        return int(position.key.removeprefix("event:"))
    except ValueError:
        return 0


def event_statement(query: TimelineQuery) -> Select[Any] | None:
    """The statement that reads the profile's filed events for a timeline page (None
    when the profile has no user or anonymous id): a UNION ALL of one branch per
    identifier value, each an ordered, limited range scan of `event_senders`, so the
    cost follows the page size, not the length of the history."""
    branches = [
        _filed_events(kind, value, query)
        for kind in identity_log.SENDER_KINDS
        for value in query.values(kind)
    ]
    if not branches:
        return None
    if len(branches) == 1:
        return branches[0]
    combined = union_all(*(b.subquery().select() for b in branches)).subquery()
    # An event carrying two of the ids comes back twice: read enough to keep `limit`.
    return (
        select(combined)
        .order_by(combined.c.timestamp.desc(), combined.c.seq.desc())
        .limit(query.limit * 2)
    )


def event_entries(session: Session, query: TimelineQuery) -> list[TimelineEntry]:
    """The tracked events carrying one of the profile's user or anonymous ids: the
    filed ones, and those of the log's tail not filed yet."""
    rows: dict[int, Any] = {}
    for stmt in (event_statement(query), unfiled_statement(query)):
        if stmt is not None:
            for row in session.execute(stmt):
                rows.setdefault(row.seq, row)
    return [_event_entry(row) for row in rows.values()]


def _event_entry(row: Any) -> TimelineEntry:
    properties = row.properties or {}
    title = row.event or ""
    if row.type in ("page", "screen") and not title:
        title = str(properties.get("path") or properties.get("url") or "")
    amount = None
    if row.type == "track" and row.event == ORDER_COMPLETED:
        amount = order_amount(properties)
    return TimelineEntry(
        at=row.timestamp,
        key=_event_key(row.seq),
        kind=row.type,
        title=title,
        channel=row.channel,
        store_id=row.store_id,
        amount=amount,
        detail={"properties": properties, "context": row.context or {}},
    )


def consent_entries(session: Session, query: TimelineQuery) -> list[TimelineEntry]:
    """Consent decisions (given or withdrawn), without their proof."""
    stmt = select(Consent).where(Consent.customer_id == query.profile_id)
    if query.before is not None:
        bound = _uuid_bound(query.before, "consent")
        stmt = stmt.where(query.before.sql_before(Consent.at, Consent.id, "consent", bound))
    stmt = stmt.order_by(Consent.at.desc(), Consent.id.desc()).limit(query.limit)
    return [
        TimelineEntry(
            at=c.at,
            key=f"consent:{c.id}",
            kind="consent",
            title=f"{c.purpose} · {c.channel}",
            detail={
                "purpose": c.purpose,
                "channel": c.channel,
                "granted": c.granted,
                "source": c.source,
            },
        )
        for c in session.scalars(stmt)
    ]


def merges_of(session: Session, profile_id: uuid.UUID) -> list[identity.MergeRecord]:
    """The merges of the profile and of those merged into it (not the refused links),
    newest first, undone ones included."""
    found = [m for m in identity.merge_history(session, profile_id) if m.outcome == "merged"]
    return sorted(found, key=lambda m: (m.at, str(m.id)), reverse=True)


def merge_entries(session: Session, query: TimelineQuery) -> list[TimelineEntry]:
    """Merges into (or of) the profile with their rule and reason, and their undoing."""
    return _merge_entries(merges_of(session, query.profile_id), query)


def _merge_entries(
    merges: Sequence[identity.MergeRecord], query: TimelineQuery
) -> list[TimelineEntry]:
    entries = []
    for merge in merges:
        detail = {
            "kept_profile_id": str(merge.kept_id),
            "absorbed_profile_id": str(merge.absorbed_id),
            "rule": merge.rule,
            "actor": merge.actor,
        }
        title = merge.reason or merge.rule
        entries.append(TimelineEntry(merge.at, f"merge:{merge.id}", "merge", title, detail=detail))
        if merge.undone_at is not None:
            entries.append(
                TimelineEntry(
                    merge.undone_at, f"unmerge:{merge.id}", "unmerge", title, detail=detail
                )
            )
    if query.before is not None:
        entries = [e for e in entries if query.before.admits(e)]
    return sorted(entries, key=lambda e: (e.at, e.key), reverse=True)[: query.limit]


def _uuid_bound(position: TimelinePosition, prefix: str) -> uuid.UUID:
    if position.key.startswith(prefix + ":"):
        try:
            return uuid.UUID(position.key.removeprefix(prefix + ":"))
        except ValueError:
            pass
    return uuid.UUID(int=0)


BUILT_IN_SOURCES: tuple[TimelineSource, ...] = (event_entries, merge_entries, consent_entries)


# ------------------------------------------------------------------ the timeline


def timeline(
    session: Session,
    profile_id: uuid.UUID,
    identifiers: Sequence[tuple[str, str]],
    cursor: str | None = None,
    limit: int = 50,
    sources: Sequence[TimelineSource] = (),
    merges: Sequence[identity.MergeRecord] | None = None,
) -> TimelinePage:
    """A page of the profile's timeline, newest first, from the built-in sources and
    `sources` (orders, returns, messages, cases... wired by the registry), with store names.
    `merges`, when the caller already read them (`merges_of`), saves reading them again.
    """
    check_limit(limit, MAX_LIMIT)
    before = decode_position(cursor) if cursor else None
    query = TimelineQuery(profile_id, tuple(identifiers), before, limit + 1)
    entries: dict[str, TimelineEntry] = {}
    built_in = BUILT_IN_SOURCES
    if merges is not None:
        known = merges

        def merge_source(session: Session, query: TimelineQuery) -> list[TimelineEntry]:
            return _merge_entries(known, query)

        built_in = (event_entries, merge_source, consent_entries)
    for source in (*built_in, *sources):
        for entry in source(session, query):
            if before is None or before.admits(entry):
                entries.setdefault(entry.key, entry)
    ordered = sorted(entries.values(), key=lambda e: (e.at, e.key), reverse=True)
    page, more = ordered[:limit], len(ordered) > limit
    names = stores.locations(session, {e.store_id for e in page if e.store_id})
    page = [
        replace(e, store_name=names[e.store_id].name) if e.store_id in names else e for e in page
    ]
    next_cursor = encode_position(TimelinePosition(page[-1].at, page[-1].key)) if more else None
    return TimelinePage(page, next_cursor)
