"""The fast path of /v1/batch gives the events the full checks give.

`tracking_fast` reads batches of the common shape with msgspec into typed structs;
everything else goes to `tracking_messages`. These tests hold the two to the same
events and pin which bodies may not take the fast path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import MalformedRequest
from parcours.customers import tracking_fast, tracking_messages
from parcours.customers.tracking_fast import CommonBatch
from parcours.customers.tracking_messages import Body, PreparedEvent, Rejection
from tests import builders

pytestmark = pytest.mark.anyio
RECEIVED = builders.utc(2026, 3, 14, 9, 30)


def both_paths(
    raw: bytes,
) -> tuple[
    tuple[list[PreparedEvent], list[Rejection]], tuple[list[PreparedEvent], list[Rejection]]
]:
    """(fast, full) outcomes of one body; the body must take the fast path."""
    batch = tracking_fast.decode_batch(raw, None)
    assert isinstance(batch, CommonBatch)
    full = tracking_messages.prepare_batch(
        tracking_messages.decode_body(raw, None, tracking_messages.MAX_BATCH_BYTES), RECEIVED
    )
    return tracking_fast.prepare(batch, RECEIVED), full


def assert_same_events(fast: list[PreparedEvent], full: list[PreparedEvent]) -> None:
    assert len(fast) == len(full)
    for quick, checked in zip(fast, full, strict=True):
        ids = quick.row["message_id"], checked.row["message_id"]
        if all(i.startswith("parcours-") for i in ids):  # each drew a new id
            quick.row["message_id"] = checked.row["message_id"]
        assert quick == checked


@pytest.fixture
def fast_events(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The index of each event the fast path checked itself (not handed over)."""
    checked: list[int] = []
    check = tracking_fast._checked

    def counting(event: Any, received_at: datetime, index: int, defaults: Any) -> PreparedEvent:
        prepared = check(event, received_at, index, defaults)
        checked.append(index)
        return prepared

    monkeypatch.setattr(tracking_fast, "_checked", counting)
    return checked


# ------------------------------------------------------------------ the same events

# Values the fast path may take: no NUL, no character beyond 16 bits (escaped as a
# surrogate pair), no number beyond what orjson reads exactly
# (bodies holding those are pinned below).
_CHARACTERS = st.characters(
    max_codepoint=0xFFFF, exclude_categories=("Cs",), exclude_characters="\x00"
)
_texts = st.text(_CHARACTERS, max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(-1e99, 1e99, allow_nan=False)
    | st.sampled_from([1e15, 1e-7, 0.1, -0.0])
    | _texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_texts, children, max_size=3),
    max_leaves=8,
)


def _mostly(good: st.SearchStrategy[Any], *wrong: Any) -> st.SearchStrategy[Any]:
    """`good` nine times in ten, else one of `wrong` or any JSON value."""
    bad = st.sampled_from(wrong) | json_values if wrong else json_values
    return st.sampled_from(range(10)).flatmap(lambda n: bad if n == 0 else good)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ids = _mostly(
    st.sampled_from([" u-1 ", "a-2", "x" * 200, " " + "x" * 200])
    | st.text(_CHARACTERS, min_size=1, max_size=5),
    "",
    "  ",
    "x" * 201,
    7,
)
_times = _mostly(
    st.datetimes(
        datetime(2026, 3, 14, 9), datetime(2026, 3, 14, 9, 30), timezones=st.just(UTC)
    ).map(_iso)
    | st.sampled_from(["2026-03-14T10:29:58+02:00", "2026-03-14 09:30:00", "2026-03-14"]),
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "soon",
)
_contexts = st.fixed_dictionaries(
    {},
    optional={
        "channel": _mostly(st.sampled_from(tracking_messages.EVENT_CHANNELS), "fax", None),
        "library": _mostly(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["analytics.js", "analytics-kotlin", "analytics-python"])}
            ),
            {"name": 1},
            None,
        ),
        "store_id": _mostly(st.sampled_from(["ML-01", " ML-02 "]), "", " ", None),
        "device": _mostly(st.fixed_dictionaries({"id": st.sampled_from(["d-1", " d-2", " "])})),
        "page": st.fixed_dictionaries({"path": st.text(_CHARACTERS, max_size=6)}),
    },
)
messages = st.fixed_dictionaries(
    {
        "type": _mostly(st.sampled_from(["track", "identify", "page", "screen"]), "alias"),
        "anonymousId": _ids,
        "event": _mostly(st.sampled_from(["Product Viewed", " Vu "]), " ", "x" * 201),
    },
    optional={
        "messageId": _ids,
        "userId": _ids,
        "name": _mostly(st.sampled_from(["Accueil", " "]), "x" * 201),
        "category": st.sampled_from(["Robes", None]) | json_values,
        "properties": _mostly(
            st.dictionaries(st.text(_CHARACTERS, max_size=5), json_values, max_size=3)
        ),
        "traits": _mostly(
            st.fixed_dictionaries({}, optional={"email": st.text(_CHARACTERS, max_size=5)})
        ),
        "context": _mostly(_contexts, {}, "web"),
        "timestamp": _times,
        "originalTimestamp": _times,
        "sentAt": _times,
        "integrations": json_values,
    },
)
_spacings = st.sampled_from([(",", ":"), (", ", ": ")])


@settings(max_examples=300, deadline=None)
@given(
    batch=st.lists(messages, min_size=1, max_size=6),
    sent_at=st.none() | st.just("2026-03-14T09:31:00.000Z"),
    spacing=_spacings,
    ascii_only=st.booleans(),
)
def test_the_fast_path_gives_the_events_and_rejections_of_the_full_checks(
    batch: list[dict[str, Any]], sent_at: str | None, spacing: tuple[str, str], ascii_only: bool
) -> None:
    body: dict[str, Any] = {"batch": batch} | ({"sentAt": sent_at} if sent_at else {})
    raw = json.dumps(body, separators=spacing, ensure_ascii=ascii_only).encode()
    if not isinstance(tracking_fast.decode_batch(raw, None), CommonBatch):
        return  # a number orjson would not read exactly, say: the full checks only
    (fast, fast_rejected), (full, full_rejected) = both_paths(raw)
    assert_same_events(fast, full)
    assert fast_rejected == full_rejected


def test_what_senders_send_takes_the_fast_path(fast_events: list[int]) -> None:
    message = {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "a-1",
        "messageId": "m-1",
        "timestamp": "2026-03-14T09:29:58.120Z",
        "properties": {"price": 1.50, "name": "Robe été"},
        "context": {"library": {"name": "analytics-python", "version": "2.4"}, "ip": "1.2.3.4"},
        "integrations": {},
    }
    identify = {"type": "identify", "userId": "u-1", "traits": {"email": "lea@example.com"}}
    page = {"type": "page", "anonymousId": "a-1", "name": "Robes", "context": {"channel": "web"}}
    store = {
        "type": "track",
        "event": "Order Completed",
        "userId": "pos-1",
        "context": {"channel": "store", "store_id": " ML-01 ", "device": {"id": " t-1 "}},
    }
    batch = [message, identify, page, store]
    raw = json.dumps({"batch": batch, "sentAt": "2026-03-14T09:30:00.000Z"}).encode()
    (fast, rejected), (full, _) = both_paths(raw)
    assert fast_events == [0, 1, 2, 3]
    assert not rejected
    assert_same_events(fast, full)
    assert fast[0].texts[0] == '{"price":1.5,"name":"Robe été"}'
    assert fast[0].row["channel"] == "server"
    assert fast[1].traits == {"email": "lea@example.com"}
    assert (fast[3].store_ref, fast[3].device_id) == ("ML-01", "t-1")


def test_an_event_outside_the_common_shape_is_checked_in_full_among_fast_ones(
    fast_events: list[int],
) -> None:
    batch = [
        {"type": "track", "event": "Vu", "anonymousId": "a-1"},
        {"type": "alias", "previousId": "a-1", "userId": "u-1"},
        {"type": "track", "event": "Vu", "userId": 42},
        {"type": "track", "anonymousId": "a-2"},  # no event name
        {"type": "page", "anonymousId": "a-3", "category": "Robes", "properties": {"x": 1}},
        {"type": "track", "event": "Vu", "anonymousId": "a-4", "context": {"channel": "fax"}},
    ]
    (fast, rejected), (full, full_rejected) = both_paths(json.dumps({"batch": batch}).encode())
    assert_same_events(fast, full)
    assert rejected == full_rejected
    assert [r.pointer for r in rejected] == ["#/batch/3/event", "#/batch/5/context/channel"]
    assert fast_events == [0]
    assert fast[2].row["user_id"] == "42"
    assert fast[3].texts[0] == '{"category":"Robes","x":1}'


def test_an_empty_context_is_stored_as_none_however_it_is_spaced() -> None:
    raw = b'{"batch": [{"type": "track", "event": "Vu", "anonymousId": "a", "context": { }}]}'
    (fast, _), (full, _) = both_paths(raw)
    assert_same_events(fast, full)
    assert fast[0].texts[2] is None


def test_an_event_over_the_limit_in_a_fast_batch_is_refused_as_the_full_checks_refuse_it() -> None:
    big = {"type": "track", "event": "Vu", "anonymousId": "a", "properties": {"t": "x" * 40_000}}
    small = {"type": "track", "event": "Vu", "anonymousId": "b"}
    (fast, rejected), (full, full_rejected) = both_paths(
        json.dumps({"batch": [small, big]}).encode()
    )
    assert_same_events(fast, full)
    assert rejected == full_rejected
    assert [r.index for r in rejected] == [1]
    assert "over the limit of 32 KB" in rejected[0].detail


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"batch": [], "context": {"ip": "1.2.3.4"}}', "a batch-level context"),
        (b'{"batch": [{"type": "track", "x": "\\u0000"}]}', "an escaped NUL"),
        (b'{"batch": [{"type": "track", "n": 123456789012345678901}]}', "a long integer"),
        (b'{"batch": [{"type": "track", "integrations": {"n": 1e400}}]}', "beyond a double"),
        (b'{"batch": [], "sentAt": "yesterday"}', "an unreadable sentAt"),
        (b'{"batch": {}}', "no batch array"),
        (b"[]", "not an object"),
    ],
)
def test_bodies_the_full_checks_must_read_do_not_take_the_fast_path(raw: bytes, why: str) -> None:
    assert isinstance(tracking_fast.decode_batch(raw, None), Body), why


def test_bad_utf8_in_a_field_no_one_reads_is_still_refused() -> None:
    raw = b'{"batch": [{"type": "track", "event": "Vu", "anonymousId": "a", "x": "\xff"}]}'
    with pytest.raises(MalformedRequest, match="UTF-8"):
        tracking_fast.decode_batch(raw, None)


async def test_the_log_gives_back_the_values_a_fast_batch_sent(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    key = builders.api_key(db, clock, kind="write")
    reader = {"Authorization": f"Bearer {builders.api_key(db, clock, 'customers:read')}"}
    raw = (
        b'{"writeKey": "' + key.encode() + b'", "batch": [{"type": "track", "event": "Vu", '
        b'"anonymousId": "a-1", "messageId": "m-1", "properties": {"price": 1.50, '
        b'"note": "\\u00e9t\\u00e9"}, "context": {"channel": "web"}}]}'
    )
    sent = await client.post("/v1/batch", content=raw)
    assert sent.status_code == 200, sent.text
    assert sent.json()["stored"] == 1
    read = await client.get("/v1/events?anonymous_id=a-1", headers=reader)
    assert read.status_code == 200, read.text
    (event,) = read.json()["items"]
    assert event["properties"] == {"price": 1.5, "note": "été"}
    assert event["context"] == {"channel": "web"}
