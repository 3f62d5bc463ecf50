"""Segment-compatible tracking: authenticate the sender and store events in the log.

Every channel sends Segment-spec messages (`track`, `identify`, `page`, `screen`,
`alias`, `group`); `tracking_messages` reads and checks them (pure code, easy to
test). This module authenticates the write key, drops what an erasure blocked or
what names an unknown store, and writes the append-only `events` log with one bulk
insert per request (`ingest`). The identity graph reads the log afterwards, as its
other readers do (`identity_log`). It also reads the log for the API, exports and
erases a person's events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, false, or_, select
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core import audit, auth
from parcours.core.audit import Actor
from parcours.core.db import Database
from parcours.core.errors import FieldError, InvalidInput, Unauthenticated
from parcours.core.memo import Expiring
from parcours.core.models import ApiKey
from parcours.core.pagination import Page, check_limit, not_a_cursor
from parcours.customers import identity, identity_log, privacy
from parcours.customers.models import TrackedEvent
from parcours.customers.tracking_messages import (
    TYPES,
    Body,
    PreparedEvent,
    Rejection,
    body_write_key,
    prepare_batch,
    prepare_single,
)

TRACKING_SCOPE = "tracking:write"


@dataclass(frozen=True)
class IngestResult:
    """What happened to a request: `accepted` valid events, of which `stored` were new
    and `duplicates` had been stored before (same messageId); `rejected` lists the rest."""

    accepted: int
    stored: int
    duplicates: int
    rejected: list[Rejection]

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": True,
            "accepted": self.accepted,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": [r.as_dict() for r in self.rejected],
        }


def authenticate_source(session: Session, presented: str | None) -> uuid.UUID:
    """The id of the API key sending events (the log's `source_id`).

    Write keys and secret keys holding `tracking:write` are accepted; a missing or
    wrong key raises `Unauthenticated`, a key without the scope `Forbidden`.
    """
    if not presented:
        raise Unauthenticated(
            "Tracking needs a write key: as HTTP Basic user name (Segment libraries), "
            "`Authorization: Bearer <key>`, `X-API-Key` or `writeKey` in the body. "
            "Create one with `parcours keys create --kind write`."
        )
    actor = auth.verify_api_key(session, presented)
    auth.require_scope(actor, TRACKING_SCOPE)
    key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == actor.id))
    if key_id is None:  # verified a moment ago in this transaction
        raise Unauthenticated("The API key is not valid.")
    return key_id


# ------------------------------------------------------------------ storing


# Each server process remembers for a few seconds what it read on every request: the
# id of a write key that passed (a revoked key is refused within KEY_MEMORY_S) and the
# ids of store codes (a store's new code is known at once; an old code for STORE_MEMORY_S).
# It also remembers answers that never change: identifiers' normalised forms and
# their erasure digests (under the installation's secret, which never changes); and the
# tombstones, read again whenever their version moved (so never out of date).
KEY_MEMORY_S = 5.0
STORE_MEMORY_S = 60.0
FOREVER_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Remembered:
    """What ingestion remembers between requests: store ids by reference, identifiers'
    normalised forms ("" for an invalid one), their erasure digests, and the tombstones'
    digests with their version (`privacy.blocked_digests`)."""

    stores: Expiring[str, uuid.UUID] | None
    identifiers: Expiring[tuple[str, str], str]
    digests: Expiring[tuple[str, str], str]
    tombstones: Expiring[str, tuple[int, frozenset[str]]] | None

    @classmethod
    def of(cls, db: Database) -> Remembered:
        """The server process's memory for `db`."""
        return cls(
            db.cache("tracking.stores", STORE_MEMORY_S),
            db.cache("tracking.identifiers", FOREVER_S),
            db.cache("privacy.digests", FOREVER_S),
            db.cache("privacy.tombstones", FOREVER_S),
        )

    @classmethod
    def none(cls) -> Remembered:
        """A memory for one call: stores and tombstones looked up, identifiers' forms
        and digests kept for the call only."""
        return cls(None, Expiring(FOREVER_S), Expiring(FOREVER_S), None)


def ingest(
    session: Session,
    now: datetime,
    source_id: uuid.UUID | None,
    events: Sequence[PreparedEvent],
    rejected: Sequence[Rejection] = (),
    remembered: Remembered | None = None,
) -> IngestResult:
    """Store valid events in the log, in the caller's transaction.

    Events naming an unknown store, or an identifier an erasure blocked, are refused
    (added to the rejections). A messageId already in the log is not stored again.
    Store references are resolved in one query (none for those the process remembers,
    see `Remembered`), erasures in one call, the rows in one bulk
    INSERT … ON CONFLICT DO NOTHING. The identity graph reads the log afterwards
    (`identity_log`).
    """
    refused = list(rejected)
    memory = remembered or Remembered.none()
    kept = _resolve_stores(session, _unique_messages(events), refused, memory.stores)
    kept = _drop_erased(session, kept, refused, memory)
    stored = _insert(session, source_id, kept)
    refused.sort(key=lambda r: -1 if r.index is None else r.index)
    return IngestResult(len(kept), len(stored), len(kept) - len(stored), refused)


def _unique_messages(events: Sequence[PreparedEvent]) -> list[PreparedEvent]:
    """The events, keeping the first of any messageId repeated within the request."""
    seen: set[str] = set()
    unique = []
    for event in events:
        message_id = event.row["message_id"]
        if message_id not in seen:
            seen.add(message_id)
            unique.append(event)
    return unique


def resolve_store_refs(
    session: Session, refs: Iterable[str], known: Expiring[str, uuid.UUID] | None = None
) -> dict[str, uuid.UUID]:
    """Store ids for references that are a store's id or its code (unknown ones absent).

    One query through the stores facade: ids when every reference looks like a UUID,
    codes otherwise (a request mixing both costs a second one). References found in
    `known` (remembered ids) are not looked up; those found are remembered there.
    """
    wanted = set(refs)
    remembered: dict[str, uuid.UUID] = {}
    if known is not None:
        for ref in wanted:
            store_id = known.get(ref)
            if store_id is not None:
                remembered[ref] = store_id
        wanted -= remembered.keys()
    found = _look_up_stores(session, wanted) if wanted else {}
    if known is not None:
        for ref, store_id in found.items():
            known.put(ref, store_id)
    return found | remembered


def _look_up_stores(session: Session, wanted: set[str]) -> dict[str, uuid.UUID]:
    as_ids: dict[str, uuid.UUID] = {}
    codes: list[str] = []
    for ref in wanted:
        try:
            as_ids[ref] = uuid.UUID(ref)
        except ValueError:
            codes.append(ref)
    found: dict[str, uuid.UUID] = {}
    if as_ids:
        known = stores.locations(session, as_ids.values())
        found.update({ref: value for ref, value in as_ids.items() if value in known})
    if codes:
        found.update(stores.store_ids_by_code(session, codes))
    return found


def _resolve_stores(
    session: Session,
    events: list[PreparedEvent],
    refused: list[Rejection],
    known: Expiring[str, uuid.UUID] | None,
) -> list[PreparedEvent]:
    refs = {e.store_ref for e in events if e.store_ref is not None}
    if not refs:
        return events
    found = resolve_store_refs(session, refs, known)
    kept = []
    for event in events:
        ref = event.store_ref
        if ref is None:
            kept.append(event)
        elif ref in found:
            event.row["store_id"] = found[ref]
            kept.append(event)
        else:
            refused.append(
                Rejection(
                    event.index,
                    event.row["message_id"],
                    f"{event.pointer}/context/store_id",
                    f"no store has the id or code {ref!r}",
                )
            )
    return kept


def _carried(event: PreparedEvent) -> list[tuple[str, str, str]]:
    """(kind, value as sent, field) of each identifier an event carries."""
    row = event.row
    candidates = [
        ("user_id", row["user_id"], "userId"),
        ("anonymous_id", row["anonymous_id"], "anonymousId"),
        ("device_id", event.device_id, "context/device/id"),
    ]
    if row["previous_id"] is not None:
        candidates.append(("user_id", row["previous_id"], "previousId"))
        candidates.append(("anonymous_id", row["previous_id"], "previousId"))
    for trait in ("email", "phone"):
        value = event.traits.get(trait)
        if isinstance(value, str):
            candidates.append((trait, value, f"traits/{trait}"))
    return [c for c in candidates if c[1] is not None]


def _normalised(
    pairs: Iterable[tuple[str, str]], remembered: Expiring[tuple[str, str], str]
) -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, normalised value) of each valid (kind, value as sent); `remembered` keeps
    the forms met before ("" for an invalid value)."""
    forms = {}
    for pair in pairs:
        form = remembered.get(pair)
        if form is None:
            form = identity.normalise(*pair) or ""
            remembered.put(pair, form)
        if form:
            forms[pair] = (pair[0], form)
    return forms


def _drop_erased(
    session: Session,
    events: list[PreparedEvent],
    refused: list[Rejection],
    remembered: Remembered,
) -> list[PreparedEvent]:
    """Refuse events carrying an identifier of an erased person (one privacy call, none
    while no erasure blocks any identifier). The batch's distinct identifiers are
    checked; its events are read again only when one is blocked."""
    tombstones = None
    if remembered.tombstones is not None:
        tombstones = privacy.blocked_digests(session, remembered.tombstones)
        if not tombstones:
            return events
    elif not privacy.erasures_in_force(session):
        return events
    carried = [_carried(e) for e in events]
    forms = _normalised({(k, v) for ids in carried for k, v, _ in ids}, remembered.identifiers)
    if not forms:
        return events
    erased = privacy.erased_identifiers(
        session, set(forms.values()), remembered.digests, tombstones
    )
    if not erased:
        return events
    kept = []
    for event, ids in zip(events, carried, strict=True):
        blocked = next((where for k, v, where in ids if forms.get((k, v)) in erased), None)
        if blocked is None:
            kept.append(event)
            continue
        refused.append(
            Rejection(
                event.index,
                event.row["message_id"],
                f"{event.pointer}/{blocked}",
                "erased person: this identifier belongs to a person whose data was erased; "
                "it is refused until they give a new consent",
            )
        )
    return kept


# The hot path binds driver-ready values itself: SQLAlchemy's per-value type
# processing (dates, UUIDs, JSON) cost more than the rest of ingestion together.
# The tests read these rows back through the ORM model on both databases.
_COLUMNS = (
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "previous_id",
    "group_id",
    "channel",
    "store_id",
    "source_id",
    "timestamp",
    "received_at",
    "sent_at",
    "original_timestamp",
    "properties",
    "traits",
    "context",
)
_POSTGRES_INSERT = (  # built from constants only; %b: arrays travel in binary
    f"INSERT INTO events ({', '.join(_COLUMNS)}) "  # noqa: S608
    "SELECT * FROM unnest("
    "%b::varchar[], %b::varchar[], %b::varchar[], %b::varchar[], %b::varchar[], "
    "%b::varchar[], %b::varchar[], %b::varchar[], %b::uuid[], %b::uuid[], "
    "%b::timestamptz[], %b::timestamptz[], %b::timestamptz[], %b::timestamptz[], "
    "%b::jsonb[], %b::jsonb[], %b::jsonb[]) "
    "ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
)


_LOG_LOCK_KEY = 0x7E_1A_C0_6  # pg_advisory_xact_lock: inserts into the log take turns


def _sqlite_time(value: datetime | None) -> str | None:
    # The text form SQLAlchemy's SQLite DATETIME writes and reads back (UTC, no zone),
    # formatted field by field: half the time of isoformat(), twice per event.
    if value is None:
        return None
    if value.tzinfo is not UTC:  # parsed times and the clock's already are
        value = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 (faster than format)
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


# One row per execution, run with executemany: SQLite prepares it once per request, and
# without RETURNING it cost a quarter less than one multi-row statement returning the
# stored ids (measured on the bench's batches of 500).
_SQLITE_INSERT = (  # built from constants and placeholders only
    f"INSERT INTO events ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(_COLUMNS))}) ON CONFLICT (message_id) DO NOTHING"
)


def _insert(session: Session, source_id: uuid.UUID | None, events: list[PreparedEvent]) -> set[str]:
    """Insert the rows in bulk with INSERT … ON CONFLICT DO NOTHING; the
    messageIds actually stored (a replayed one is skipped by the unique index)."""
    if not events:
        return set()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # The log's readers (identity first) move a cursor along `seq`: an event must
        # never commit after one numbered past it. Inserts take turns until their
        # commit, as they do on SQLite, whose transactions hold its write lock.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (_LOG_LOCK_KEY,))
        return _insert_postgres(connection, source_id, events)
    return _insert_sqlite(connection, source_id, events)


def _insert_sqlite(
    connection: Connection, source_id: uuid.UUID | None, events: list[PreparedEvent]
) -> set[str]:
    source = source_id.hex if source_id else None
    # The request's time and (mostly) the batch's sentAt are shared by its events.
    shared: dict[datetime | None, str | None] = {None: None}
    rows: list[tuple[Any, ...]] = []
    for event in events:
        row = event.row
        received, sent, original = row["received_at"], row["sent_at"], row["original_timestamp"]
        if received not in shared:
            shared[received] = _sqlite_time(received)
        if sent not in shared:
            shared[sent] = _sqlite_time(sent)
        store = row["store_id"]
        properties, traits, context = event.texts
        rows.append(
            (
                row["message_id"],
                row["type"],
                row["event"],
                row["user_id"],
                row["anonymous_id"],
                row["previous_id"],
                row["group_id"],
                row["channel"],
                store.hex if store else None,
                source,
                _sqlite_time(row["timestamp"]),
                shared[received],
                shared[sent],
                _sqlite_time(original),
                properties,
                traits,
                context,
            )
        )
    # The transaction holds SQLite's write lock (BEGIN IMMEDIATE), so the rows numbered
    # past the log's last `seq` are exactly the ones this insert stores.
    last = connection.exec_driver_sql("SELECT max(seq) FROM events").scalar()
    result = connection.exec_driver_sql(_SQLITE_INSERT, rows)
    if result.rowcount == len(rows):
        return {row[0] for row in rows}
    stored = connection.exec_driver_sql("SELECT message_id FROM events WHERE seq > ?", (last or 0,))
    return set(stored.scalars())


def _insert_postgres(
    connection: Connection, source_id: uuid.UUID | None, events: list[PreparedEvent]
) -> set[str]:
    # One statement whatever the batch size: each column travels as one array, in
    # psycopg's binary format (the text format escapes every quote of the JSON, which
    # made it four times slower).
    plain = _COLUMNS[:-3]  # the last three are the JSON texts
    columns: list[list[Any]] = [[] for _ in _COLUMNS]
    for event in events:
        event.row["source_id"] = source_id
        values = [event.row[name] for name in plain]
        values += event.texts
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    result = connection.exec_driver_sql(_POSTGRES_INSERT, tuple(columns))
    return set(result.scalars())


def _source(db: Database, key: str | None, body: Body) -> uuid.UUID:
    """The sender's key id (the key presented in a header, else the body's `writeKey`),
    read in a transaction of its own, or remembered from a request a moment ago."""
    presented = key or body_write_key(body)
    known = db.cache("tracking.write_keys", KEY_MEMORY_S)
    digest = hashlib.sha256(presented.encode()).digest() if presented else None
    source_id: uuid.UUID | None = known.get(digest)
    if source_id is None:
        with db.transaction() as session:
            source_id = authenticate_source(session, presented)
        known.put(digest, source_id)
    return source_id


def track_batch(db: Database, now: datetime, key: str | None, body: Body) -> IngestResult:
    """`/v1/batch`: authenticate the key (presented in a header, else the body's
    `writeKey`), store the good events, report the bad ones (see `prepare_batch`).

    Three steps, the events checked between two transactions: on SQLite a transaction
    holds the write lock from its start, and other server processes can write while
    this one checks its events.
    """
    source_id = _source(db, key, body)
    events, rejected = prepare_batch(body, now)
    remembered = Remembered.of(db)
    with db.transaction() as session:
        return ingest(session, now, source_id, events, rejected, remembered)


def ingest_messages(
    session: Session,
    now: datetime,
    messages: Sequence[Any],
    source_id: uuid.UUID | None = None,
) -> IngestResult:
    """Store Segment messages handed over in-process (the demo, event files) exactly as
    `/v1/batch` stores them, except the size limits; bad ones are reported, not raised.
    """
    body = Body({"batch": list(messages)}, size=0, suspect_text=True)
    events, rejected = prepare_batch(body, now)
    return ingest(session, now, source_id, events, rejected)


def track_one(db: Database, now: datetime, key: str | None, kind: str, body: Body) -> IngestResult:
    """`/v1/track`, `/v1/identify`, …: store one event of call type `kind`, or raise
    `InvalidInput` pointing at what is wrong with it (steps as in `track_batch`)."""
    source_id = _source(db, key, body)
    event = prepare_single(body, kind, now)
    remembered = Remembered.of(db)
    with db.transaction() as session:
        result = ingest(session, now, source_id, [event], (), remembered)
        if result.rejected:
            errors = [FieldError(r.detail, pointer=r.pointer) for r in result.rejected]
            raise InvalidInput(f"The {kind} event was refused: {errors[0].detail}.", errors)
    return result


# ------------------------------------------------------------------ reading the log


@dataclass(frozen=True)
class EventFilter:
    """Which events to read; every given field must match."""

    user_id: str | None = None
    anonymous_id: str | None = None
    type: str | None = None
    event: str | None = None
    channel: str | None = None

    def used(self) -> list[str]:
        return [name for name, value in vars(self).items() if value is not None]


def event_as_dict(event: TrackedEvent) -> dict[str, Any]:
    """A stored event as JSON-ready values (times in ISO-8601 UTC, ids as strings)."""
    return {
        "seq": event.seq,
        "message_id": event.message_id,
        "type": event.type,
        "event": event.event,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "previous_id": event.previous_id,
        "group_id": event.group_id,
        "channel": event.channel,
        "store_id": str(event.store_id) if event.store_id else None,
        "source_id": str(event.source_id) if event.source_id else None,
        "timestamp": event.timestamp.isoformat(),
        "received_at": event.received_at.isoformat(),
        "sent_at": event.sent_at.isoformat() if event.sent_at else None,
        "original_timestamp": (
            event.original_timestamp.isoformat() if event.original_timestamp else None
        ),
        "properties": event.properties,
        "traits": event.traits,
        "context": event.context,
    }


def encode_seq_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(seq.to_bytes(8, "big")).decode().rstrip("=")


def decode_seq_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 8:
        raise not_a_cursor()
    return int.from_bytes(raw, "big")


def list_events(
    session: Session,
    now: datetime,
    actor: Actor,
    where: EventFilter,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[dict[str, Any]]:
    """A page of the log in arrival order (`seq`), filtered; the read is audited."""
    check_limit(limit)
    if where.type is not None and where.type not in TYPES:
        raise InvalidInput(
            f"type must be one of {', '.join(TYPES)}",
            [FieldError(f"must be one of {', '.join(TYPES)}", parameter="type")],
        )
    stmt = select(TrackedEvent)
    for name in where.used():
        value = getattr(where, name)
        if name in identity_log.SENDER_KINDS:  # no index on the log: its sender filing
            stmt = stmt.where(identity_log.sender_events({name: [value]}))
        else:
            stmt = stmt.where(getattr(TrackedEvent, name) == value)
    if cursor:
        stmt = stmt.where(TrackedEvent.seq > decode_seq_cursor(cursor))
    rows = list(session.scalars(stmt.order_by(TrackedEvent.seq).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    audit.record(
        session, now, actor, "events.read", "events", None, count=len(rows), filters=where.used()
    )
    next_cursor = encode_seq_cursor(rows[-1].seq) if more and rows else None
    return Page([event_as_dict(r) for r in rows], next_cursor)


# ------------------------------------------------------------------ privacy


def _person_clause(identifiers: Iterable[tuple[str, str]]) -> ColumnElement[bool]:
    """Events of a person: their user ids or anonymous ids as sender, or as the
    previousId of an alias. Other kinds (email, phone, ...) are ignored: the log is
    keyed by user and anonymous ids only."""
    user_ids = sorted({v for kind, v in identifiers if kind == "user_id"})
    anonymous_ids = sorted({v for kind, v in identifiers if kind == "anonymous_id"})
    clauses: list[ColumnElement[bool]] = []
    if user_ids:
        clauses.append(TrackedEvent.user_id.in_(user_ids))
    if anonymous_ids:
        clauses.append(TrackedEvent.anonymous_id.in_(anonymous_ids))
    if user_ids or anonymous_ids:
        clauses.append(TrackedEvent.previous_id.in_(user_ids + anonymous_ids))
    return or_(*clauses) if clauses else false()


def export_events(session: Session, identifiers: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every logged event of a person, for a subject access export, in log order.

    `identifiers` are (kind, value) pairs; kinds `user_id` and `anonymous_id` are used
    (matched on the sender's ids and on an alias's previousId), others ignored. The
    caller audits the access.
    """
    stmt = select(TrackedEvent).where(_person_clause(identifiers)).order_by(TrackedEvent.seq)
    return [event_as_dict(e) for e in session.scalars(stmt)]


def erase_events(session: Session, identifiers: Sequence[tuple[str, str]]) -> int:
    """Delete every logged event of a person (found as in `export_events`); the count.

    The log is append-only for everyone else: erasure is its only deletion. Blocking
    the same identifiers afterwards is `privacy`'s job (`erased_identifiers`), so that
    replayed events are refused.
    """
    result = session.execute(delete(TrackedEvent).where(_person_clause(identifiers)))
    return int(result.rowcount)  # type: ignore[attr-defined]
