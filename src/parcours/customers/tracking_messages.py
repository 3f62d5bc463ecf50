"""Segment messages as they arrive: read request bodies and check each message.

The pure half of tracking (no database): `decode_body` reads a request's JSON,
`prepare_event` checks one Segment message (`track`, `identify`, `page`, `screen`,
`alias`, `group`) with plain code (no per-event pydantic: it is the hot path),
corrects the sender's clock skew and turns it into an `events` row, pointing at each
bad field otherwise; `prepare_batch` does it for a `/v1/batch` body, keeping the good
events and reporting the bad ones. `tracking` stores what they prepared.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from parcours.core.errors import (
    FieldError,
    InvalidInput,
    MalformedRequest,
    PayloadTooLarge,
)
from parcours.core.ids import new_id
from parcours.customers import identity_log

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
