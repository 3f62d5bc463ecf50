"""Segment-compatible tracking: validate, normalise and store events in the log.

Every channel sends Segment-spec messages (`track`, `identify`, `page`, `screen`,
`alias`, `group`); this module checks them with plain code (no per-event pydantic: it
is the hot path), corrects the sender's clock skew, drops what an erasure blocked, and
writes the append-only `events` log with one bulk insert per request. The identity
graph reads the log afterwards, as its other readers do (`identity_log`).

The validation functions are pure (`prepare_event`, `prepare_batch`, `correct_skew`,
`event_channel`), so they are easy to test; `ingest` does the database work.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, delete, false, or_, select
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core import audit, auth
from parcours.core.audit import Actor
from parcours.core.db import Database
from parcours.core.errors import (
    FieldError,
    InvalidInput,
    MalformedRequest,
    PayloadTooLarge,
    Unauthenticated,
)
from parcours.core.ids import new_id
from parcours.core.memo import Expiring
from parcours.core.models import ApiKey
from parcours.core.pagination import Page, check_limit, not_a_cursor
from parcours.customers import identity, identity_log, privacy
from parcours.customers.models import TrackedEvent

TRACKING_SCOPE = "tracking:write"
TYPES = ("track", "identify", "page", "screen", "alias", "group")
# Where an event happened; `server` is the default for back-end senders.
EVENT_CHANNELS = (
    "web",
    "app",
    "store",
    "call_centre",
    "email",
    "sms",
    "marketplace",
    "social",
    "server",
)
# Client libraries that run in a browser or on a phone, to default the channel.
_WEB_LIBRARIES = frozenset({"analytics.js", "analytics-next", "parcours.js"})
_APP_LIBRARIES = frozenset(
    {
        "analytics-ios",
        "analytics-android",
        "analytics-kotlin",
        "analytics-swift",
        "analytics-react-native",
        "analytics-flutter",
    }
)
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# How far past the reception time a corrected timestamp may lie (network jitter and
# senders without `sentAt` whose clock runs a little fast).
MAX_FUTURE = timedelta(hours=1)
MAX_ID_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused event of a request: where it is and why."""

    index: int | None
    message_id: str | None
    pointer: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "messageId": self.message_id,
            "pointer": self.pointer,
            "detail": self.detail,
        }


@dataclass(slots=True)
class PreparedEvent:
    """A valid message turned into an `events` row, awaiting the database checks."""

    row: dict[str, Any]
    pointer: str  # where the message sits in the body: "#" or "#/batch/3"
    index: int | None
    store_ref: str | None = None  # context.store_id as sent: a store id or a code
    device_id: str | None = None
    traits: Mapping[str, Any] = field(default_factory=dict)  # identify traits
    # properties, traits and context as stored: compact JSON text
    texts: tuple[str | None, str | None, str | None] = (None, None, None)


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


# ------------------------------------------------------------------ reading bodies


class Codec:
    """How a request's JSON values become the stored JSON text, and how big an event is.

    `FAST` (orjson) serves bodies orjson read: their numbers fit 64-bit integers and
    doubles, their text is valid, so encoding cannot fail. `EXACT` (the standard
    library) serves every other value: it refuses infinities (a number too large for a
    double) instead of writing them as null, and keeps integers of any size.
    """

    def text(self, value: Any) -> str:
        """Compact JSON text; ValueError for a number that overflowed to infinity."""
        return _ENCODER.encode(value)

    def size(self, value: Any) -> int:
        """The length of `value` as compact JSON, in UTF-8 bytes."""
        return len(_ENCODER.encode(value).encode())


class _FastCodec(Codec):
    def text(self, value: Any) -> str:
        return orjson.dumps(value).decode()

    def size(self, value: Any) -> int:
        return len(orjson.dumps(value))


EXACT = Codec()
FAST = _FastCodec()


@dataclass(frozen=True, slots=True)
class Body:
    """A decoded request body.

    `value` is the JSON value; `size` its length in bytes (after gunzip);
    `suspect_text` is True when the body has an escaped NUL or surrogate, which the
    database may refuse (checked then); `codec` encodes its values for storage.
    """

    value: Any
    size: int
    suspect_text: bool = False
    codec: Codec = EXACT


_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# orjson reads an integer past 64 bits as a float: a body with 20 digits in a row goes
# to the exact decoder. Found by mapping every digit to 0 and looking for 20 zeros,
# ten times faster than a regular expression over a 500 KB body.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 20


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> Body:
    """The JSON body of a request (gunzipped when sent gzip-encoded), in UTF-8.

    Raises `PayloadTooLarge` past `limit` bytes (after decompression) and
    `MalformedRequest` when the body is not JSON (NaN and Infinity included; a number
    too large for a float is refused later, with the event holding it).

    orjson reads the body; whatever it refuses or would read inexactly (long integers,
    numbers beyond a double, unpaired surrogates, bad JSON) is read again by the
    standard library, which keeps every number exact and words the errors.
    """
    if content_encoding and content_encoding.strip().lower() == "gzip":
        raw = _gunzip(raw, limit)
    if len(raw) > limit:
        raise PayloadTooLarge(_too_large(limit))
    suspect = _SUSPECT_ESCAPE.search(raw) is not None
    if _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return Body(orjson.loads(raw), len(raw), suspect, FAST)
        except orjson.JSONDecodeError:
            pass
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise MalformedRequest("The request body is not UTF-8 text.") from None
    if not text.strip():
        raise MalformedRequest("The request body is empty; send a JSON object.")
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise MalformedRequest("The request body nests too deeply to be read.") from None
    except ValueError as exc:
        raise MalformedRequest(f"The request body is not valid JSON: {exc}.") from None
    return Body(value, len(raw), suspect, EXACT)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# NaN and Infinity are refused here; a number too large for a float (1e999) decodes to
# infinity and is refused when the event's JSON is encoded for storage.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
# Values come from the decoder: no cycles to look for, and compact UTF-8 text is smallest.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, allow_nan=False
)


def body_write_key(body: Body) -> str | None:
    """The `writeKey` a body carries (how browsers' beacons send it), if any."""
    value = body.value
    key = value.get("writeKey") if isinstance(value, dict) else None
    return key.strip() if isinstance(key, str) and key.strip() else None


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


def _too_large(limit: int) -> str:
    what = "a batch" if limit == MAX_BATCH_BYTES else "an event"
    return (
        f"The body exceeds the limit of {limit // 1024} KB for {what} "
        f"({MAX_EVENT_BYTES // 1024} KB per event, {MAX_BATCH_BYTES // 1024} KB per batch); "
        "send fewer events per request."
    )


def _gunzip(raw: bytes, limit: int) -> bytes:
    # Decompress at most limit + 1 bytes: a small bomb cannot grow past the limit.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise MalformedRequest("The body is marked gzip but is not valid gzip.") from None
    if len(out) > limit:
        raise PayloadTooLarge(_too_large(limit))
    return out


# ------------------------------------------------------------------ validating messages


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 date-time as UTC, or None if it is not one. A time without a zone is
    read as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or beyond year 1-9999 in UTC
        return None


def correct_skew(
    received_at: datetime, sent_at: datetime | None, original: datetime | None
) -> datetime:
    """The event time in the server's clock, as Segment computes it.

    With `sentAt`, the sender's clock offset is removed:
    `timestamp = receivedAt - (sentAt - originalTimestamp)`. Without it, the sender's
    timestamp is kept (a historical import); without any, the reception time is used.
    """
    if original is None:
        return received_at
    if sent_at is None:
        return original
    return received_at - (sent_at - original)


def event_channel(context: Mapping[str, Any]) -> str | None:
    """The channel of an event: `context.channel` when sent (None if it is not a known
    channel), else `web` for browser libraries, `app` for mobile ones, `server` otherwise."""
    channel = context.get("channel")
    if channel is not None:
        return channel if isinstance(channel, str) and channel in EVENT_CHANNELS else None
    library = context.get("library")
    name = library.get("name") if isinstance(library, dict) else None
    if name in _WEB_LIBRARIES:
        return "web"
    if name in _APP_LIBRARIES:
        return "app"
    return "server"


def _identifier(
    message: Mapping[str, Any], key: str, pointer: str, errors: list[FieldError]
) -> str | None:
    """A Segment id field: a string (stripped; empty means absent) or a number."""
    value = message.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, float) and value == value and abs(value) != float("inf"):
        text = str(int(value)) if value.is_integer() else str(value)
    else:
        errors.append(FieldError("must be a string", pointer=f"{pointer}/{key}"))
        return None
    if len(text) > MAX_ID_LENGTH:
        errors.append(
            FieldError(f"must be at most {MAX_ID_LENGTH} characters", pointer=f"{pointer}/{key}")
        )
        return None
    return text or None


def _name(
    message: Mapping[str, Any], key: str, pointer: str, errors: list[FieldError]
) -> str | None:
    value = message.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError("must be a string", pointer=f"{pointer}/{key}"))
        return None
    if len(value) > MAX_ID_LENGTH:
        errors.append(
            FieldError(f"must be at most {MAX_ID_LENGTH} characters", pointer=f"{pointer}/{key}")
        )
        return None
    return value.strip() or None


def _object(
    message: Mapping[str, Any], key: str, pointer: str, errors: list[FieldError]
) -> dict[str, Any] | None:
    value = message.get(key)
    if value is None or isinstance(value, dict):
        return value
    errors.append(FieldError("must be a JSON object", pointer=f"{pointer}/{key}"))
    return None


def _time_field(
    message: Mapping[str, Any], key: str, pointer: str, errors: list[FieldError]
) -> datetime | None:
    value = message.get(key)
    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        errors.append(
            FieldError(
                "must be an ISO-8601 date-time, e.g. 2026-03-14T09:30:00.000Z",
                pointer=f"{pointer}/{key}",
            )
        )
    return parsed


@dataclass(frozen=True, slots=True)
class BatchDefaults:
    """What a batch body says for all its events: `sentAt` and a shared `context`."""

    sent_at: datetime | None = None
    context: Mapping[str, Any] | None = None


_NO_DEFAULTS = BatchDefaults()


def prepare_event(
    message: Any,
    received_at: datetime,
    pointer: str = "#",
    index: int | None = None,
    forced_type: str | None = None,
    defaults: BatchDefaults = _NO_DEFAULTS,
    codec: Codec = EXACT,
) -> PreparedEvent | list[FieldError]:
    """Check one Segment message and turn it into an `events` row, or say what is wrong
    with it (JSON pointers into the request body, under `pointer`); `codec` writes
    its JSON texts (`FAST` only for values orjson decoded)."""
    if not isinstance(message, dict):
        return [FieldError("an event must be a JSON object", pointer=pointer)]
    errors: list[FieldError] = []
    kind = message.get("type")
    if forced_type is not None:
        if kind is not None and kind != forced_type:
            errors.append(
                FieldError(f"must be {forced_type!r} on this endpoint", pointer=f"{pointer}/type")
            )
        kind = forced_type
    elif kind not in TYPES:
        detail = "is required" if kind is None else "is not a Segment call type"
        return [FieldError(f"{detail}: one of {', '.join(TYPES)}", pointer=f"{pointer}/type")]

    user_id = _identifier(message, "userId", pointer, errors)
    anonymous_id = _identifier(message, "anonymousId", pointer, errors)
    message_id = _identifier(message, "messageId", pointer, errors)
    properties = _object(message, "properties", pointer, errors)
    own_context = _object(message, "context", pointer, errors)
    name, previous_id, group_id, traits = _type_fields(kind, message, pointer, errors)
    if kind in ("page", "screen") and isinstance(message.get("category"), str):
        properties = {"category": message["category"], **(properties or {})}
    if kind == "alias":
        if user_id is None:
            errors.append(FieldError("alias needs the new userId", pointer=f"{pointer}/userId"))
    elif (
        user_id is None
        and anonymous_id is None
        and not (_flagged(errors, pointer, "/userId") or _flagged(errors, pointer, "/anonymousId"))
    ):
        errors.append(
            FieldError("an event needs a userId or an anonymousId", pointer=f"{pointer}/userId")
        )

    context = _merged_context(defaults.context, own_context)
    channel = event_channel(context)
    if channel is None:
        errors.append(
            FieldError(
                f"must be one of {', '.join(EVENT_CHANNELS)}", pointer=f"{pointer}/context/channel"
            )
        )
    store_ref = _store_ref(context, pointer, errors)
    timestamp, sent_at, original = _times(message, pointer, received_at, defaults, errors)
    if errors:
        return errors
    texts = (
        _encoded(codec, properties, pointer, "properties", errors),
        _encoded(codec, traits, pointer, "traits", errors),
        _encoded(codec, context or None, pointer, "context", errors),
    )
    if errors:
        return errors
    assert channel is not None
    assert timestamp is not None
    return PreparedEvent(
        row={
            "message_id": message_id or f"parcours-{new_id()}",
            "type": kind,
            "event": name,
            "user_id": user_id,
            "anonymous_id": anonymous_id,
            "previous_id": previous_id,
            "group_id": group_id,
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
        pointer=pointer,
        index=index,
        store_ref=store_ref,
        device_id=identity_log.device_id(context),
        traits=traits or {},
        texts=texts,
    )


def _encoded(
    codec: Codec, value: dict[str, Any] | None, pointer: str, key: str, errors: list[FieldError]
) -> str | None:
    """The JSON text stored for an object (None stays NULL)."""
    if value is None:
        return None
    try:
        return codec.text(value)
    except ValueError:  # a number that overflowed to infinity
        errors.append(FieldError("holds a number too large for JSON", pointer=f"{pointer}/{key}"))
        return None


def _type_fields(
    kind: str, message: Mapping[str, Any], pointer: str, errors: list[FieldError]
) -> tuple[str | None, str | None, str | None, dict[str, Any] | None]:
    """(event or page/screen name, previousId, groupId, traits) by call type."""
    name = previous_id = group_id = None
    traits = None
    if kind == "track":
        name = _name(message, "event", pointer, errors)
        if name is None and not _flagged(errors, pointer, "/event"):
            errors.append(
                FieldError("a track call needs an event name", pointer=f"{pointer}/event")
            )
    elif kind in ("page", "screen"):
        name = _name(message, "name", pointer, errors)
    elif kind in ("identify", "group"):
        traits = _object(message, "traits", pointer, errors)
    if kind == "alias":
        previous_id = _identifier(message, "previousId", pointer, errors)
        if previous_id is None and not _flagged(errors, pointer, "/previousId"):
            errors.append(FieldError("alias needs the previousId", pointer=f"{pointer}/previousId"))
    if kind == "group":
        group_id = _identifier(message, "groupId", pointer, errors)
        if group_id is None and not _flagged(errors, pointer, "/groupId"):
            errors.append(FieldError("group needs a groupId", pointer=f"{pointer}/groupId"))
    return name, previous_id, group_id, traits


def _flagged(errors: list[FieldError], pointer: str, suffix: str) -> bool:
    """Whether the field at `pointer` + `suffix` already has an error."""
    where = pointer + suffix
    return any(e.pointer == where for e in errors)


def _merged_context(shared: Mapping[str, Any] | None, own: dict[str, Any] | None) -> dict[str, Any]:
    if not shared:
        return own or {}
    return {**shared, **(own or {})}


def _store_ref(context: Mapping[str, Any], pointer: str, errors: list[FieldError]) -> str | None:
    value = context.get("store_id")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(
            FieldError("must be a store id or a store code", pointer=f"{pointer}/context/store_id")
        )
        return None
    return value.strip()


def _times(
    message: Mapping[str, Any],
    pointer: str,
    received_at: datetime,
    defaults: BatchDefaults,
    errors: list[FieldError],
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(corrected timestamp, sentAt, originalTimestamp) of a message."""
    timestamp = _time_field(message, "timestamp", pointer, errors)
    original = _time_field(message, "originalTimestamp", pointer, errors)
    sent_at = _time_field(message, "sentAt", pointer, errors) or defaults.sent_at
    key = "originalTimestamp" if original is not None else "timestamp"
    original = original or timestamp
    try:
        corrected = correct_skew(received_at, sent_at, original)
    except OverflowError:
        errors.append(
            FieldError("is too far from sentAt to be corrected", pointer=f"{pointer}/{key}")
        )
        return None, sent_at, original
    if corrected - received_at > MAX_FUTURE:
        errors.append(
            FieldError(
                f"lies {_duration(corrected - received_at)} in the future once corrected for "
                f"the sender's clock; events may be at most {_duration(MAX_FUTURE)} ahead",
                pointer=f"{pointer}/{key}",
            )
        )
    return corrected, sent_at, original


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def _bad_text(value: str) -> bool:
    if "\x00" in value:
        return True
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


def bad_text_pointer(value: Any, pointer: str) -> str | None:
    """Where a string holds a NUL character or a lone surrogate, which databases refuse
    (PostgreSQL, and UTF-8 itself), or None."""
    if isinstance(value, str):
        return pointer if _bad_text(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            escaped = key.replace("~", "~0").replace("/", "~1")
            found = bad_text_pointer(key, pointer) or bad_text_pointer(item, f"{pointer}/{escaped}")
            if found:
                return found
    if isinstance(value, list):
        for position, item in enumerate(value):
            found = bad_text_pointer(item, f"{pointer}/{position}")
            if found:
                return found
    return None


_BAD_TEXT = "text may not contain a NUL character (\\u0000) or an unpaired surrogate"


def prepare_batch(body: Body, received_at: datetime) -> tuple[list[PreparedEvent], list[Rejection]]:
    """Check a `/v1/batch` body: the valid events, and a rejection per bad one.

    Raises `InvalidInput` only when the body as a whole is unusable (not an object,
    no `batch` array, a bad batch-level `sentAt` or `context`). An event's size is its
    compact JSON in UTF-8 bytes, measured only when the whole body exceeds the
    per-event limit.
    """
    data = body.value
    if not isinstance(data, dict):
        raise InvalidInput(
            "A batch must be a JSON object with a `batch` array of events.",
            [FieldError("must be a JSON object", pointer="#")],
        )
    messages = data.get("batch")
    if not isinstance(messages, list):
        raise InvalidInput(
            "A batch needs a `batch` array of events.",
            [FieldError("must be an array of events", pointer="#/batch")],
        )
    defaults = _batch_defaults(data)
    # No event can pass the per-event limit in a body within it.
    measure = body.codec.size if body.size > MAX_EVENT_BYTES else None
    prepared: list[PreparedEvent] = []
    rejected: list[Rejection] = []
    for index, message in enumerate(messages):
        pointer = f"#/batch/{index}"
        problem = _size_or_text_problem(message, pointer, measure, body.suspect_text)
        if problem is not None:
            rejected.append(Rejection(index, _message_id_of(message), *problem))
            continue
        outcome = prepare_event(message, received_at, pointer, index, None, defaults, body.codec)
        if isinstance(outcome, PreparedEvent):
            prepared.append(outcome)
        else:
            mid = _message_id_of(message)
            rejected.extend(Rejection(index, mid, e.pointer or pointer, e.detail) for e in outcome)
    return prepared, rejected


def _batch_defaults(body: Mapping[str, Any]) -> BatchDefaults:
    errors: list[FieldError] = []
    sent_at = _time_field(body, "sentAt", "#", errors)
    context = _object(body, "context", "#", errors)
    if errors:
        raise InvalidInput("The batch's own fields are invalid.", errors)
    return BatchDefaults(sent_at, context)


def _size_or_text_problem(
    message: Any, pointer: str, measure: Callable[[Any], int] | None, suspect_text: bool
) -> tuple[str, str] | None:
    if measure is not None:
        size = measure(message)
        if size > MAX_EVENT_BYTES:
            return pointer, (
                f"the event is {size:,} bytes, over the limit of {MAX_EVENT_BYTES // 1024} KB "
                "per event"
            )
    if suspect_text:
        where = bad_text_pointer(message, pointer)
        if where is not None:
            return where, _BAD_TEXT
    return None


def _message_id_of(message: Any) -> str | None:
    if isinstance(message, dict) and isinstance(message.get("messageId"), str):
        return str(message["messageId"])[:MAX_ID_LENGTH]
    return None


def prepare_single(body: Body, kind: str, received_at: datetime) -> PreparedEvent:
    """Check the body of `/v1/track`, `/v1/identify`, …: the event, or `InvalidInput`
    pointing at every bad field."""
    if body.suspect_text:
        where = bad_text_pointer(body.value, "#")
        if where is not None:
            raise InvalidInput(
                "The event holds text no database can store.",
                [FieldError(_BAD_TEXT, pointer=where)],
            )
    outcome = prepare_event(body.value, received_at, "#", None, kind, codec=body.codec)
    if isinstance(outcome, PreparedEvent):
        return outcome
    count = len(outcome)
    raise InvalidInput(
        f"The {kind} event is invalid ({count} problem{'s' * (count > 1)}).", outcome
    )


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
    # The text form SQLAlchemy's SQLite DATETIME writes and reads back (UTC, no zone).
    if value is None:
        return None
    text = value.isoformat(" ", "microseconds")
    if text.endswith("+00:00"):  # already UTC, as parsed times and the clock's are
        return text[:-6]
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


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
