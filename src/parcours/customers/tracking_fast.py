"""The fast path of `/v1/batch`: events of the common shape, read into typed structs.

Nearly every batch a Segment library sends holds `track`, `identify`, `page` and
`screen` calls whose ids, names and times are strings, with objects for `properties`
and `context`. msgspec reads each such event straight into a struct (the fields
ingestion does not use, `integrations` say, are skipped unread), and this module checks
it in one pass, instead of reading the body into dicts first and checking each message
with the full rules of `tracking_messages.prepare_event`, which collect every problem
with a pointer (about a tenth less time per event in all; docs/tracking.md).

It accepts only what `prepare_event` accepts and gives the same event, stored JSON
included. Anything else goes to the full checks: the whole body when it is not a batch
of this kind or orjson would not read it exactly (see `decode_batch`), one event when
it is not of the common shape or is wrong in any way (its problems are worded there).
`tests/customers/test_tracking_fast.py` holds the two paths to the same events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
import orjson

from parcours.core.ids import new_id
from parcours.customers import identity_log, tracking_messages
from parcours.customers.tracking_messages import (
    FAST,
    MAX_EVENT_BYTES,
    MAX_FUTURE,
    MAX_ID_LENGTH,
    BatchDefaults,
    Body,
    PreparedEvent,
    Rejection,
)

# orjson refuses a number beyond a double; such a number needs an exponent of three
# digits (longer digit runs already fail `orjson_reads_exactly`).
_BIG_EXPONENT = re.compile(rb"[0-9][eE][-+]?[0-9]{3}")
# An event's compact JSON is at most 4.5 times its text (`1e15` is written
# `1000000000000000.0`): an event of at most this many bytes is within the limit.
_SURELY_WITHIN = MAX_EVENT_BYTES // 5
_NULL = msgspec.Raw(b"null")


class _Event(msgspec.Struct):
    type: Literal["track", "identify", "page", "screen"]
    messageId: str | None = None  # noqa: N815 (Segment's names)
    userId: str | None = None  # noqa: N815
    anonymousId: str | None = None  # noqa: N815
    event: str | None = None
    name: str | None = None
    category: msgspec.Raw = msgspec.Raw()
    timestamp: str | None = None
    originalTimestamp: str | None = None  # noqa: N815
    sentAt: str | None = None  # noqa: N815
    properties: dict[str, Any] | None = None
    traits: msgspec.Raw = msgspec.Raw()  # read for identify calls only, as the full checks do
    context: dict[str, Any] | None = None


class _Batch(msgspec.Struct):
    batch: list[msgspec.Raw]
    sentAt: str | None = None  # noqa: N815
    writeKey: str | None = None  # noqa: N815
    context: msgspec.Raw = msgspec.Raw()


_BATCH = msgspec.json.Decoder(_Batch)
_EVENT = msgspec.json.Decoder(_Event)
_ANY = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class CommonBatch:
    """A `/v1/batch` body read by the fast path: each event's JSON text, the batch's
    `sentAt` (parsed) and `writeKey`, and the body's size in bytes."""

    events: list[msgspec.Raw]
    sent_at: datetime | None
    write_key: str | None
    size: int


def decode_batch(raw: bytes, content_encoding: str | None) -> CommonBatch | Body:
    """A `/v1/batch` body: a `CommonBatch` when the fast path can take it, else the
    body as `tracking_messages.decode_body` reads it (with the same errors).

    The fast path takes a batch object with no batch-level `context`, a readable
    `sentAt`, UTF-8 text without escaped NULs or surrogates, whose numbers orjson reads
    exactly; so the full checks, when they take over one of its events, read it as
    they would have read it in the body."""
    raw = tracking_messages.within_limit(raw, content_encoding, tracking_messages.MAX_BATCH_BYTES)
    common = _common_batch(raw)
    return common if common is not None else tracking_messages.decode_json(raw)


def _common_batch(raw: bytes) -> CommonBatch | None:
    if (
        tracking_messages.has_suspect_escape(raw)
        or not tracking_messages.orjson_reads_exactly(raw)
        or _BIG_EXPONENT.search(raw) is not None
    ):
        return None
    try:
        raw.decode()  # msgspec does not check the UTF-8 of what it skips
        body = _BATCH.decode(raw)
    except (UnicodeDecodeError, msgspec.MsgspecError, RecursionError):
        return None
    if _given(body.context):
        return None
    sent_at = tracking_messages.parse_time(body.sentAt) if body.sentAt is not None else None
    if body.sentAt is not None and sent_at is None:
        return None
    write_key = body.writeKey.strip() if body.writeKey is not None else None
    return CommonBatch(body.batch, sent_at, write_key or None, len(raw))


def prepare(
    batch: CommonBatch, received_at: datetime
) -> tuple[list[PreparedEvent], list[Rejection]]:
    """The batch's valid events and a rejection per bad one, as
    `tracking_messages.prepare_batch` gives them."""
    defaults = BatchDefaults(batch.sent_at, None)
    measure = FAST.size if batch.size > MAX_EVENT_BYTES else None
    prepared: list[PreparedEvent] = []
    rejected: list[Rejection] = []
    for index, text in enumerate(batch.events):
        event = None
        if len(text) <= _SURELY_WITHIN:
            event = _common_event(text, received_at, index, defaults)
        if event is None:
            message = orjson.loads(memoryview(text))
            outcome = tracking_messages.prepare_message(
                message, received_at, index, defaults, measure, False, FAST
            )
            if not isinstance(outcome, PreparedEvent):
                rejected.extend(outcome)
                continue
            event = outcome
        prepared.append(event)
    return prepared, rejected


class _Uncommon(Exception):
    """The event is not of the common shape, or is wrong: the full checks take it."""


def _common_event(
    text: msgspec.Raw, received_at: datetime, index: int, defaults: BatchDefaults
) -> PreparedEvent | None:
    try:
        return _checked(_EVENT.decode(text), received_at, index, defaults)
    except (msgspec.MsgspecError, _Uncommon):
        return None


def _checked(
    event: _Event, received_at: datetime, index: int, defaults: BatchDefaults
) -> PreparedEvent:
    kind = event.type
    user_id = _id(event.userId)
    anonymous_id = _id(event.anonymousId)
    if user_id is None and anonymous_id is None:
        raise _Uncommon
    if kind == "track":
        name = _name(event.event)
        if name is None:
            raise _Uncommon
    elif kind == "identify":
        name = None
    else:
        name = _name(event.name)
        if _given(event.category):  # merged into the properties: the full checks do it
            raise _Uncommon
    properties = event.properties
    traits: dict[str, Any] | None = None
    if kind == "identify" and _given(event.traits):
        traits = _ANY.decode(event.traits)
        if type(traits) is not dict:
            raise _Uncommon
    context = event.context or {}
    channel = tracking_messages.event_channel(context)
    if channel is None:
        raise _Uncommon
    store_ref = _store_ref(context.get("store_id"))
    timestamp, sent_at, original = _times(event, received_at, defaults)
    message_id = _id(event.messageId) or f"parcours-{new_id()}"
    try:  # last, as prepare_event encodes only once every field passed
        texts = (
            None if properties is None else FAST.text(properties),
            None if traits is None else FAST.text(traits),
            FAST.text(context) if context else None,
        )
    except (ValueError, TypeError):  # an integer past 64 bits, for one
        raise _Uncommon from None
    return PreparedEvent(
        row={
            "message_id": message_id,
            "type": kind,
            "event": name,
            "user_id": user_id,
            "anonymous_id": anonymous_id,
            "previous_id": None,
            "group_id": None,
            "channel": channel,
            "store_id": None,
            "source_id": None,
            "timestamp": timestamp,
            "received_at": received_at,
            "sent_at": sent_at,
            "original_timestamp": original,
            "properties": properties,
            "traits": traits,
            "context": context or None,
        },
        pointer=f"#/batch/{index}",
        index=index,
        store_ref=store_ref,
        device_id=identity_log.device_id(context),
        traits=traits or {},
        texts=texts,
    )


def _id(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if len(text) > MAX_ID_LENGTH:
        raise _Uncommon
    return text or None


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_ID_LENGTH:
        raise _Uncommon
    return value.strip() or None


def _given(value: msgspec.Raw) -> bool:
    return len(value) > 0 and value != _NULL


def _store_ref(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str or not (ref := value.strip()):
        raise _Uncommon
    return ref


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = tracking_messages.parse_time(value)
    if parsed is None:
        raise _Uncommon
    return parsed


def _times(
    event: _Event, received_at: datetime, defaults: BatchDefaults
) -> tuple[datetime, datetime | None, datetime | None]:
    timestamp = _time(event.timestamp)
    original = _time(event.originalTimestamp) or timestamp
    sent_at = _time(event.sentAt) or defaults.sent_at
    try:
        corrected = tracking_messages.correct_skew(received_at, sent_at, original)
    except OverflowError:
        raise _Uncommon from None
    if corrected - received_at > MAX_FUTURE:
        raise _Uncommon
    return corrected, sent_at, original
