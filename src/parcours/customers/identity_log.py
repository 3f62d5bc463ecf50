"""Identity resolution as a reader of the tracking log.

Ingestion only writes the log; this reader feeds the identity graph from it afterwards,
with a durable cursor (`identity@events`), as the other readers of the log do. So a
request of 500 events costs its insert and nothing more, and identity resolution takes
the graph's lock once per pass instead of once per request.

Which events carry identity: identify calls (their user and anonymous ids, device id,
and the email and phone of their traits), alias calls (previousId, read as an anonymous
id, with the new userId), and track, page and screen events sent with both a userId and
an anonymousId. Each stored event is read once: a replayed messageId is not stored
again, so it feeds nothing again.

Readers that find people through the links (profile traits, segments, journeys) read
the log only up to the position `resolve_logged_events` returns once it has caught
this reader up (`customers.event_log_head`), so every event they read has its
identifiers resolved. The log grows in commit order (SQLite has one writer; on
PostgreSQL ingestion takes a lock for its insert), so the cursor never passes an event
that commits later.

The same reader files each event it passes under its sender ids (`event_senders`):
ingestion writes no index on those random keys, which would cost it a third of its
time. `sender_events` finds a sender's events through that index up to the reader's
position, and by scanning the few events past it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    and_,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.events import PeriodicJob, try_locked_cursor
from parcours.core.models import ConsumerCursor
from parcours.customers import identity
from parcours.customers.models import EventSender
from parcours.customers.models import TrackedEvent as E

log = logging.getLogger("parcours.identity")

CURSOR = "identity@events"
PASS_EVENTS = 5_000  # log positions read per pass of the worker's job
EVERY_S = 1.0
SENDER_KINDS = ("user_id", "anonymous_id")

_CARRIES_IDENTITY = or_(
    E.type.in_(("identify", "alias")),
    and_(
        E.type.in_(("track", "page", "screen")),
        E.user_id.is_not(None),
        E.anonymous_id.is_not(None),
    ),
)


class Sighting(NamedTuple):
    """What identity reads of a logged event."""

    seq: int
    message_id: str
    type: str
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    channel: str
    timestamp: datetime
    traits: Mapping[str, Any] | None
    context: Mapping[str, Any] | None


_SIGHTINGS = select(*(getattr(E, name) for name in Sighting._fields))


def device_id(context: Mapping[str, Any] | None) -> str | None:
    """`context.device.id`, trimmed, when it is a non-empty string."""
    device = context.get("device") if context else None
    if not isinstance(device, dict):
        return None
    value = device.get("id")
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def observation(event: Sighting) -> identity.Observation | None:
    """The identity evidence of one logged event (None when it carries none)."""
    kind = event.type
    ids: dict[str, str] = {}
    traits = event.traits or {}
    if kind == "identify":
        ids = {
            k: v for k, v in (("user_id", event.user_id), ("anonymous_id", event.anonymous_id)) if v
        }
        for trait in ("email", "phone"):
            value = traits.get(trait)
            if isinstance(value, str) and value.strip():
                ids[trait] = value
    elif kind == "alias" and event.user_id and event.previous_id:
        ids = {"user_id": event.user_id, "anonymous_id": event.previous_id}
    elif kind in ("track", "page", "screen") and event.user_id and event.anonymous_id:
        ids = {"user_id": event.user_id, "anonymous_id": event.anonymous_id}
    else:
        return None
    device = device_id(event.context)
    if device:
        ids["device_id"] = device
    return identity.Observation(
        identifiers=ids,
        source=event.channel,
        observed_at=event.timestamp,
        traits=dict(traits) if kind == "identify" else {},
        reference=event.message_id,
    )


def observations(events: Iterable[Sighting]) -> list[identity.Observation]:
    """The identity evidence of logged events, in time order.

    Repeats of the same ids without traits (a logged-in visitor's page views) are sent
    once, as their first and (when later) last sighting.
    """
    found: list[identity.Observation] = []
    sightings: dict[tuple[tuple[str, str], ...], list[identity.Observation]] = {}
    for event in events:
        seen_now = observation(event)
        if seen_now is None:
            continue
        if seen_now.traits:
            found.append(seen_now)
            continue
        key = tuple(sorted(seen_now.identifiers.items()))
        seen = sightings.get(key)
        if seen is None:
            sightings[key] = [seen_now, seen_now]
        elif seen_now.observed_at < seen[0].observed_at:
            seen[0] = seen_now
        elif seen_now.observed_at > seen[1].observed_at:
            seen[1] = seen_now
    for first, last in sightings.values():
        found.append(first)
        if last.observed_at > first.observed_at:
            found.append(last)
    found.sort(key=lambda o: o.observed_at)
    return found


def log_head(session: Session) -> int:
    """The position (`seq`) of the latest event in the tracking log (0 when empty)."""
    return int(session.scalar(select(func.max(E.seq))) or 0)


_POSITION = select(ConsumerCursor.position).where(ConsumerCursor.consumer == CURSOR)


def resolve_logged_events(session: Session, now: datetime, limit: int | None = None) -> int:
    """Feed the graph with the events logged since the last pass, in the caller's
    transaction (at most `limit` log positions, None: all); the cursor's new position.

    On PostgreSQL the cursor is locked until the transaction ends, so two passes never
    read the same events; while another transaction holds it, this one does not wait
    and answers the position that transaction started from.
    """
    cursor = try_locked_cursor(session, CURSOR, now)
    if cursor is None:
        return int(session.scalar(_POSITION) or 0)
    head = log_head(session)
    stop = head if limit is None else min(head, cursor.position + limit)
    while cursor.position < stop:
        up_to = min(stop, cursor.position + PASS_EVENTS)
        window = and_(E.seq > cursor.position, E.seq <= up_to, _CARRIES_IDENTITY)
        rows = session.execute(_SIGHTINGS.where(window).order_by(E.seq))
        found = observations(Sighting(*row) for row in rows)
        # Filed first: the profiles `observe` refreshes count this pass's events.
        file_senders(session, cursor.position, up_to)
        if found:
            _observe(session, now, cursor, found)
        cursor.position = up_to
        cursor.updated_at = now
    return int(cursor.position)


def _observe(
    session: Session, now: datetime, cursor: ConsumerCursor, found: list[identity.Observation]
) -> None:
    """One `observe` call for the pass; if it fails, one per event, skipping the events
    that fail, so that a bad event never stops identity nor the readers waiting for it.
    A skipped event is logged by its message id and kept in the cursor's `last_error`
    (`parcours worker --status` shows it with the log's other readers)."""
    try:
        with session.begin_nested():
            identity.observe(session, now, found)
        return
    except Exception as exc:  # retried one by one below, to find the failing events
        log.warning(
            "identity pass failed, reading its events one by one",
            extra={"error": type(exc).__name__},
        )
    for observation in found:
        try:
            with session.begin_nested():
                identity.observe(session, now, [observation])
        except Exception as exc:
            cursor.failures += 1
            cursor.last_error = f"skipped event {observation.reference}: {type(exc).__name__}"
            log.error(
                "identity skipped an event it could not read",
                extra={"message_id": observation.reference, "error": type(exc).__name__},
            )


def file_senders(session: Session, after: int, up_to: int) -> None:
    """File the events at positions (`after`, `up_to`] under their sender ids, in key
    order (neighbouring keys share index pages)."""
    for kind in SENDER_KINDS:
        column = getattr(E, kind)
        rows = (
            select(literal(kind), column, E.timestamp, E.seq)
            .where(E.seq > after, E.seq <= up_to, column.is_not(None))
            .order_by(column, E.timestamp, E.seq)
        )
        session.execute(
            insert(EventSender).from_select(["kind", "value", "timestamp", "seq"], rows)
        )


def filed_position() -> ColumnElement[int]:
    """The log position up to which events are filed in `event_senders` (SQL)."""
    return func.coalesce(_POSITION.scalar_subquery(), 0)


def unfiled_clause(senders: Mapping[str, Sequence[str]]) -> ColumnElement[bool]:
    """Events past the filed position sent by one of `senders` (values by kind, `user_id`
    or `anonymous_id`): a scan of the log's tail, short while the worker keeps up."""
    wanted = [getattr(E, kind).in_(list(values)) for kind, values in senders.items() if values]
    if not wanted:
        return false()
    return and_(E.seq > filed_position(), or_(*wanted))


def sender_events(senders: Mapping[str, Sequence[str]]) -> ColumnElement[bool]:
    """Events sent by one of `senders` (values by kind, `user_id` or `anonymous_id`),
    filed or not yet: a condition on `events`."""
    filed = [
        and_(EventSender.kind == kind, EventSender.value.in_(list(values)))
        for kind, values in senders.items()
        if values
    ]
    if not filed:
        return false()
    # One IN list of positions (the filed ones, then the tail's, `events` read by its
    # own scan): with an OR of the two, SQLite walked the whole log in `seq` order.
    positions = union_all(
        select(EventSender.seq).where(or_(*filed)),
        select(E.seq).where(unfiled_clause(senders)).correlate(None),
    )
    return E.seq.in_(positions)


def pending_events(session: Session) -> int:
    """How many log positions identity has not read yet."""
    return max(0, log_head(session) - int(session.scalar(_POSITION) or 0))


def resolve_job(db: Database, clock: Clock) -> int:
    """The worker's pass: the backlog in transactions of `PASS_EVENTS` positions each,
    so that a large backlog never holds SQLite's write lock for long; how many
    positions it moved."""
    moved = 0
    while True:
        with db.transaction() as session:
            before = int(session.scalar(_POSITION) or 0)
            after = resolve_logged_events(session, clock.now(), PASS_EVENTS)
        moved += after - before
        if after == before:
            return moved


def periodic_job() -> PeriodicJob:
    return PeriodicJob("customers.identity.resolve", EVERY_S, resolve_job)
