"""Segment-compatible tracking: what the endpoints accept, refuse, store and report.

Identity resolution is the identity graph's business: it reads the log afterwards
(`identity_log`). Here `identity.observe` is replaced by a recorder, so that these tests
assert what the log hands it.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select
from sqlalchemy.dialects import sqlite

from parcours import stores
from parcours.core import auth
from parcours.core.audit import SYSTEM_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.core.models import ApiKey, AuditEntry
from parcours.customers import identity, identity_log, privacy, tracking, tracking_messages
from parcours.customers.models import TrackedEvent
from tests import builders

pytestmark = pytest.mark.anyio
PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def observed(monkeypatch: pytest.MonkeyPatch) -> list[list[identity.Observation]]:
    """Every `identity.observe` call tracking makes, in order."""
    calls: list[list[identity.Observation]] = []

    def record(session: Any, now: datetime, observations: Any) -> list[None]:
        calls.append(list(observations))
        return [None for _ in observations]

    monkeypatch.setattr(identity, "observe", record)
    return calls


@pytest.fixture
def write_key(db: Database, clock: ManualClock) -> str:
    return builders.api_key(db, clock, kind="write")


def basic(key: str) -> dict[str, str]:
    """HTTP Basic with the key as user name and no password, as Segment libraries send it."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def logged(db: Database, **where: Any) -> list[TrackedEvent]:
    with db.transaction() as session:
        stmt = select(TrackedEvent).filter_by(**where).order_by(TrackedEvent.seq)
        return list(session.scalars(stmt))


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Product Viewed", "anonymousId": "anon-1", **fields}


# ------------------------------------------------------------------ pure rules


def test_skew_correction_moves_the_event_by_the_senders_clock_offset() -> None:
    received = builders.utc(2026, 3, 14, 9, 30)
    # The till's clock runs 10 minutes fast: it sent at 09:40 an event it dated 09:39.
    corrected = tracking_messages.correct_skew(
        received, builders.utc(2026, 3, 14, 9, 40), builders.utc(2026, 3, 14, 9, 39)
    )
    assert corrected == builders.utc(2026, 3, 14, 9, 29)


def test_without_sent_at_the_senders_time_is_kept_and_without_any_time_reception_is_used() -> None:
    received = builders.utc(2026, 3, 14, 9, 30)
    old = builders.utc(2025, 1, 2, 8, 0)
    assert tracking_messages.correct_skew(received, None, old) == old
    assert (
        tracking_messages.correct_skew(received, builders.utc(2026, 3, 14, 9, 31), None) == received
    )


def test_the_channel_comes_from_the_context_or_the_sending_library() -> None:
    assert tracking_messages.event_channel({"channel": "call_centre"}) == "call_centre"
    assert tracking_messages.event_channel({"library": {"name": "analytics.js"}}) == "web"
    assert tracking_messages.event_channel({"library": {"name": "parcours.js"}}) == "web"
    assert tracking_messages.event_channel({"library": {"name": "analytics-ios"}}) == "app"
    assert tracking_messages.event_channel({"library": {"name": "analytics-python"}}) == "server"
    assert tracking_messages.event_channel({}) == "server"
    assert tracking_messages.event_channel({"channel": "carrier-pigeon"}) is None


def test_a_message_is_checked_with_pointers_to_each_bad_field() -> None:
    received = builders.utc(2026, 3, 14, 9, 30)
    outcome = tracking_messages.prepare_event(
        {
            "type": "track",
            "userId": ["u"],
            "event": 12,
            "properties": "big",
            "timestamp": "yesterday",
            "context": {"channel": "fax"},
        },
        received,
        "#/batch/2",
    )
    assert isinstance(outcome, list)
    assert {e.pointer for e in outcome} == {
        "#/batch/2/userId",
        "#/batch/2/event",
        "#/batch/2/properties",
        "#/batch/2/timestamp",
        "#/batch/2/context/channel",
    }


def test_numeric_ids_become_strings_and_blank_ones_count_as_absent() -> None:
    received = builders.utc(2026, 3, 14, 9, 30)
    outcome = tracking_messages.prepare_event(track(userId=42, anonymousId="  "), received)
    assert isinstance(outcome, tracking_messages.PreparedEvent)
    assert outcome.row["user_id"] == "42"
    assert outcome.row["anonymous_id"] is None
    blank = tracking_messages.prepare_event(track(userId="", anonymousId=" "), received)
    assert isinstance(blank, list)
    assert blank[0].pointer == "#/userId"


def test_bodies_read_by_orjson_or_the_exact_decoder_give_the_same_values() -> None:
    message = {"type": "track", "event": "Vu", "anonymousId": "a", "properties": {"n": 1.5}}
    fast = tracking_messages.decode_body(json.dumps({"batch": [message]}).encode(), None, 10_000)
    assert fast.codec is tracking_messages.FAST
    assert fast.value == {"batch": [message]}
    # An integer past 64 bits would become a float in orjson: the exact decoder reads it.
    long = tracking_messages.decode_body(
        b'{"batch": [], "n": 123456789012345678901234567890}', None, 99
    )
    assert long.codec is tracking_messages.EXACT
    assert long.value["n"] == 123456789012345678901234567890


def test_an_event_is_measured_as_compact_json_in_utf8_bytes() -> None:
    message = {"type": "track", "event": "Vu", "anonymousId": "a", "properties": {"é": "été"}}
    compact = len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())
    assert tracking_messages.FAST.size(message) == tracking_messages.EXACT.size(message) == compact
    assert tracking_messages.FAST.text(message) == tracking_messages.EXACT.text(message)


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"batch": [1,]}', b'{"batch": []} x', b"[1, 2", b"NaN", b"\xff"],
)
def test_malformed_bodies_are_refused_as_malformed(raw: bytes) -> None:
    from parcours.core.errors import MalformedRequest

    with pytest.raises(MalformedRequest):
        tracking_messages.decode_body(raw, None, tracking_messages.MAX_BATCH_BYTES)


def test_a_body_marked_gzip_that_is_not_is_malformed() -> None:
    from parcours.core.errors import MalformedRequest

    with pytest.raises(MalformedRequest, match="gzip"):
        tracking_messages.decode_body(b'{"batch": []}', "gzip", tracking_messages.MAX_BATCH_BYTES)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
message_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*tracking_messages.TYPES, "shout"]) | json_values,
        "userId": st.text(max_size=5) | st.integers() | json_values,
        "anonymousId": st.text(max_size=5) | json_values,
        "event": st.text(max_size=5) | json_values,
        "previousId": st.text(max_size=5) | json_values,
        "groupId": st.text(max_size=5) | json_values,
        "properties": json_values,
        "traits": json_values,
        "context": st.fixed_dictionaries(
            {}, optional={"channel": json_values, "store_id": json_values, "device": json_values}
        )
        | json_values,
        "timestamp": st.datetimes(timezones=st.just(UTC)).map(iso) | json_values,
        "sentAt": st.datetimes(timezones=st.just(UTC)).map(iso) | json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(message=message_fields | json_values)
def test_any_json_value_is_either_an_event_or_pointed_problems(message: Any) -> None:
    outcome = tracking_messages.prepare_event(
        message, builders.utc(2026, 3, 14, 9, 30), "#/batch/0"
    )
    if isinstance(outcome, tracking_messages.PreparedEvent):
        row = outcome.row
        assert row["type"] in tracking_messages.TYPES
        assert row["channel"] in tracking_messages.EVENT_CHANNELS
        assert row["user_id"] or row["anonymous_id"]
        assert row["timestamp"] - builders.utc(2026, 3, 14, 9, 30) <= tracking_messages.MAX_FUTURE
    else:
        assert outcome
        assert all(e.pointer and e.pointer.startswith("#/batch/0") for e in outcome)


@given(
    moment=st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))]
        )
    )
)
def test_the_log_stores_times_as_sqlalchemy_writes_them_on_sqlite(moment: datetime) -> None:
    assume(datetime.min.replace(tzinfo=UTC) + timedelta(days=1) < moment)
    write = sqlite.DATETIME().bind_processor(sqlite.dialect())
    assert write is not None
    assert tracking._sqlite_time(moment) == write(moment.astimezone(UTC).replace(tzinfo=None))


@given(
    skew=st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)),
    delay=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=12)),
)
def test_skew_correction_ignores_how_wrong_the_senders_clock_is(
    skew: timedelta, delay: timedelta
) -> None:
    received = builders.utc(2026, 3, 14, 9, 30)
    sent_by_true_clock = received  # the request is sent and received at once
    happened = sent_by_true_clock - delay
    corrected = tracking_messages.correct_skew(received, sent_by_true_clock + skew, happened + skew)
    assert corrected == happened


# ------------------------------------------------------------------ the endpoints


async def test_a_track_call_is_stored_with_its_corrected_timestamp(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    now = clock.now()
    sent = now + timedelta(minutes=10)  # the sender's clock runs 10 minutes fast
    response = await client.post(
        "/v1/track",
        json={
            "userId": "web-42",
            "anonymousId": "anon-1",
            "event": "Product Added",
            "properties": {"sku": "ROBE-LIN-S", "price": 89.0, "note": "lin lavé ✓"},
            "timestamp": iso(sent - timedelta(seconds=30)),
            "sentAt": iso(sent),
            "messageId": "m-1",
            "context": {"channel": "web", "library": {"name": "analytics.js"}},
        },
        headers=basic(write_key),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "accepted": 1,
        "stored": 1,
        "duplicates": 0,
        "rejected": [],
    }
    [stored] = logged(db)
    assert stored.message_id == "m-1"
    assert (stored.type, stored.event, stored.channel) == ("track", "Product Added", "web")
    assert (stored.user_id, stored.anonymous_id) == ("web-42", "anon-1")
    assert stored.timestamp == now - timedelta(seconds=30)
    assert stored.received_at == now
    assert stored.sent_at == sent
    assert stored.original_timestamp == sent - timedelta(seconds=30)
    assert stored.properties == {"sku": "ROBE-LIN-S", "price": 89.0, "note": "lin lavé ✓"}
    with db.transaction() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.prefix == write_key[:15]))
    assert stored.source_id == key_id


async def test_every_segment_call_type_has_its_endpoint(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    calls: dict[str, dict[str, Any]] = {
        "identify": {"userId": "u-1", "traits": {"email": "lea@example.com"}},
        "track": {"userId": "u-1", "event": "Order Completed", "properties": {"revenue": 89}},
        "page": {"anonymousId": "a-1", "name": "Robes", "category": "Mode"},
        "screen": {"userId": "u-1", "name": "Panier"},
        "alias": {"previousId": "a-1", "userId": "u-1"},
        "group": {"userId": "u-1", "groupId": "company-9", "traits": {"name": "Atelier"}},
    }
    for kind, body in calls.items():
        response = await client.post(f"/v1/{kind}", json=body, headers=basic(write_key))
        assert response.status_code == 200, (kind, response.text)
    rows = {row.type: row for row in logged(db)}
    assert set(rows) == set(calls)
    assert rows["identify"].traits == {"email": "lea@example.com"}
    assert rows["page"].event == "Robes"
    assert rows["page"].properties == {"category": "Mode"}
    assert rows["screen"].event == "Panier"
    assert (rows["alias"].previous_id, rows["alias"].user_id) == ("a-1", "u-1")
    assert rows["group"].group_id == "company-9"
    assert {row.channel for row in rows.values()} == {"server"}  # no context: a back end


async def test_keys_work_as_bearer_x_api_key_and_write_key_in_the_body(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    secret = builders.api_key(db, clock, "tracking:write")
    answers = [
        await client.post(
            "/v1/track", json=track(), headers={"Authorization": f"Bearer {write_key}"}
        ),
        await client.post("/v1/track", json=track(), headers={"X-API-Key": secret}),
        await client.post("/v1/batch", json={"batch": [track()], "writeKey": write_key}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(logged(db)) == 3


async def test_a_wrong_or_missing_write_key_is_401_problem_json(
    client: httpx.AsyncClient, db: Database
) -> None:
    wrong = await client.post(
        "/v1/batch", json={"batch": [track()]}, headers=basic("pk_0123456789ab_not-the-key")
    )
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == PROBLEM
    assert wrong.json()["type"] == "urn:parcours:problem:unauthenticated"
    missing = await client.post("/v1/track", json=track())
    assert missing.status_code == 401
    assert "write key" in missing.json()["detail"]
    assert logged(db) == []


async def test_a_revoked_write_key_is_refused_once_the_processs_memory_of_it_expires(
    client: httpx.AsyncClient,
    db: Database,
    clock: ManualClock,
    write_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (await client.post("/v1/track", json=track(), headers=basic(write_key))).is_success
    with db.transaction() as session:
        prefix = "_".join(write_key.split("_", 2)[:2])  # pk_<id>
        auth.revoke_api_key(session, clock.now(), SYSTEM_ACTOR, prefix)
    # Remembered for KEY_MEMORY_S by the process that checked it a moment ago.
    assert (await client.post("/v1/track", json=track(), headers=basic(write_key))).is_success
    later = time.monotonic() + tracking.KEY_MEMORY_S + 1
    monkeypatch.setattr("parcours.core.memo.time.monotonic", lambda: later)
    refused = await client.post("/v1/track", json=track(), headers=basic(write_key))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


async def test_a_secret_key_without_the_tracking_scope_is_403(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    reader = builders.api_key(db, clock, "customers:read")
    response = await client.post("/v1/track", json=track(), headers=basic(reader))
    assert response.status_code == 403
    assert "tracking:write" in response.json()["detail"]


async def test_malformed_json_is_400_problem_json(
    client: httpx.AsyncClient, write_key: str
) -> None:
    for path in ("/v1/track", "/v1/batch"):
        response = await client.post(path, content=b'{"batch": [', headers=basic(write_key))
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert "not valid JSON" in response.json()["detail"]


async def test_a_body_that_is_not_a_batch_is_422_pointing_at_it(
    client: httpx.AsyncClient, write_key: str
) -> None:
    listed = await client.post("/v1/batch", json=[track()], headers=basic(write_key))
    assert listed.status_code == 422
    assert listed.json()["errors"] == [{"detail": "must be a JSON object", "pointer": "#"}]
    no_batch = await client.post("/v1/batch", json={"events": []}, headers=basic(write_key))
    assert no_batch.json()["errors"][0]["pointer"] == "#/batch"


async def test_an_event_without_user_or_anonymous_id_is_422_with_a_pointer(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    response = await client.post(
        "/v1/track", json={"event": "Product Viewed"}, headers=basic(write_key)
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"] == [
        {"detail": "an event needs a userId or an anonymousId", "pointer": "#/userId"}
    ]
    assert logged(db) == []


async def test_wrong_types_are_422_with_a_pointer_each(
    client: httpx.AsyncClient, write_key: str
) -> None:
    response = await client.post(
        "/v1/identify",
        json={"userId": {"id": 1}, "anonymousId": "a", "traits": ["x"], "sentAt": 12},
        headers=basic(write_key),
    )
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"#/userId", "#/traits", "#/sentAt"}


async def test_an_event_over_32_kb_is_413_naming_the_limit(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    body = track(properties={"blob": "x" * 33_000})
    response = await client.post("/v1/track", json=body, headers=basic(write_key))
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert "32 KB" in response.json()["detail"]
    assert logged(db) == []


async def test_a_batch_over_500_kb_is_413_naming_the_limit(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    events = [track(properties={"blob": "x" * 20_000}) for _ in range(26)]
    response = await client.post("/v1/batch", json={"batch": events}, headers=basic(write_key))
    assert response.status_code == 413
    assert "500 KB" in response.json()["detail"]
    assert logged(db) == []


async def test_a_gzip_bomb_is_stopped_at_the_batch_limit(
    client: httpx.AsyncClient, write_key: str
) -> None:
    bomb = gzip.compress(b'{"batch": ["' + b"x" * 5_000_000 + b'"]}')
    response = await client.post(
        "/v1/batch", content=bomb, headers={**basic(write_key), "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413


async def test_a_gzip_body_is_read_as_segment_libraries_send_it(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    body = gzip.compress(json.dumps({"batch": [track(messageId="gz-1")]}).encode())
    response = await client.post(
        "/v1/batch",
        content=body,
        headers={**basic(write_key), "Content-Encoding": "gzip", "Content-Type": "text/plain"},
    )
    assert response.status_code == 200
    assert [e.message_id for e in logged(db)] == ["gz-1"]


async def test_an_oversized_event_in_a_batch_is_reported_and_the_others_kept(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    events = [
        track(messageId="small-1"),
        track(messageId="huge", properties={"blob": "x" * 33_000}),
        track(messageId="small-2"),
    ]
    response = await client.post("/v1/batch", json={"batch": events}, headers=basic(write_key))
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 2
    [rejected] = answer["rejected"]
    assert (rejected["index"], rejected["messageId"]) == (1, "huge")
    assert rejected["pointer"] == "#/batch/1"
    assert "32 KB" in rejected["detail"]
    assert [e.message_id for e in logged(db)] == ["small-1", "small-2"]


async def test_a_timestamp_far_in_the_future_is_refused_with_a_pointer(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    tomorrow = iso(clock.now() + timedelta(days=1))
    single = await client.post(
        "/v1/track", json=track(timestamp=tomorrow), headers=basic(write_key)
    )
    assert single.status_code == 422
    [error] = single.json()["errors"]
    assert error["pointer"] == "#/timestamp"
    assert "in the future" in error["detail"]
    # After skew correction the same timestamp is fine: the sender's clock is a day fast.
    corrected = await client.post(
        "/v1/batch",
        json={"batch": [track(timestamp=tomorrow), track(originalTimestamp=tomorrow)]},
        headers=basic(write_key),
    )
    pointers = [r["pointer"] for r in corrected.json()["rejected"]]
    assert pointers == ["#/batch/0/timestamp", "#/batch/1/originalTimestamp"]
    skewed = await client.post(
        "/v1/batch",
        json={"batch": [track(timestamp=tomorrow)], "sentAt": tomorrow},
        headers=basic(write_key),
    )
    assert skewed.json()["accepted"] == 1
    assert [e.timestamp for e in logged(db)] == [clock.now()]


async def test_a_store_is_named_by_id_or_code_and_an_unknown_one_is_reported(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    builders.add_store(db, clock, "LYO-1")
    with db.transaction() as session:
        lyon = stores.get_store_by_code(session, "LYO-1").id
    events = [
        track(messageId="by-code", context={"channel": "store", "store_id": "LYO-1"}),
        track(messageId="by-id", context={"channel": "store", "store_id": str(lyon)}),
        track(messageId="unknown", context={"channel": "store", "store_id": "NOPE-9"}),
        track(messageId="no-id", context={"channel": "store", "store_id": str(uuid.uuid4())}),
    ]
    response = await client.post("/v1/batch", json={"batch": events}, headers=basic(write_key))
    answer = response.json()
    assert [(r["index"], r["pointer"]) for r in answer["rejected"]] == [
        (2, "#/batch/2/context/store_id"),
        (3, "#/batch/3/context/store_id"),
    ]
    assert "NOPE-9" in answer["rejected"][0]["detail"]
    assert [(e.message_id, e.store_id) for e in logged(db)] == [
        ("by-code", lyon),
        ("by-id", lyon),
    ]


async def test_store_codes_are_remembered_and_a_new_store_is_found_at_once(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    def sent_to(code: str) -> dict[str, Any]:
        return {"batch": [track(context={"channel": "store", "store_id": code})]}

    first = await client.post("/v1/batch", json=sent_to("LYO-1"), headers=basic(write_key))
    assert first.json()["rejected"][0]["pointer"] == "#/batch/0/context/store_id"
    builders.add_store(db, clock, "LYO-1")
    second = await client.post("/v1/batch", json=sent_to("LYO-1"), headers=basic(write_key))
    assert second.json()["stored"] == 1  # an unknown code is not remembered
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        third = await client.post("/v1/batch", json=sent_to("LYO-1"), headers=basic(write_key))
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert third.json()["stored"] == 1
    assert not [s for s in statements if "FROM stores" in s]


async def test_a_replayed_message_id_is_stored_once(
    client: httpx.AsyncClient,
    db: Database,
    clock: ManualClock,
    write_key: str,
    observed: list[Any],
) -> None:
    identify = {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "messageId": "m-7"}
    first = await client.post("/v1/batch", json={"batch": [identify]}, headers=basic(write_key))
    again = await client.post(
        "/v1/batch", json={"batch": [identify, identify]}, headers=basic(write_key)
    )
    single = await client.post("/v1/identify", json=identify, headers=basic(write_key))
    assert first.json()["stored"] == 1
    assert again.json() | {"rejected": []} == {
        "success": True,
        "accepted": 1,
        "stored": 0,
        "duplicates": 1,
        "rejected": [],
    }
    assert single.json()["duplicates"] == 1
    assert len(logged(db, message_id="m-7")) == 1
    identity_log.resolve_job(db, clock)
    assert [[o.reference for o in call] for call in observed] == [["m-7"]]  # stored once


async def test_a_batch_mixing_replayed_and_new_events_stores_and_observes_only_the_new(
    client: httpx.AsyncClient,
    db: Database,
    clock: ManualClock,
    write_key: str,
    observed: list[Any],
) -> None:
    def identify(n: int) -> dict[str, Any]:
        return {
            "type": "identify",
            "userId": f"u-{n}",
            "anonymousId": f"a-{n}",
            "messageId": f"m-{n}",
        }

    await client.post(
        "/v1/batch", json={"batch": [identify(1), identify(3)]}, headers=basic(write_key)
    )
    identity_log.resolve_job(db, clock)
    batch = [identify(n) for n in (1, 2, 3, 4)]
    again = await client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key))
    assert again.json() | {"rejected": []} == {
        "success": True,
        "accepted": 4,
        "stored": 2,
        "duplicates": 2,
        "rejected": [],
    }
    assert sorted(e.message_id for e in logged(db)) == ["m-1", "m-2", "m-3", "m-4"]
    identity_log.resolve_job(db, clock)
    assert [o.reference for o in observed[-1]] == ["m-2", "m-4"]


async def test_a_missing_message_id_is_generated(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    await client.post("/v1/batch", json={"batch": [track(), track()]}, headers=basic(write_key))
    ids = [e.message_id for e in logged(db)]
    assert len(set(ids)) == 2
    assert all(i.startswith("parcours-") for i in ids)


async def test_a_mixed_batch_keeps_the_good_events_and_reports_the_bad(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    batch = [
        track(messageId="good-1"),
        {"type": "track", "event": "Product Viewed"},
        "not an event",
        {"type": "shout", "userId": "u"},
        track(messageId="good-2", context={"channel": "store", "store_id": "NOWHERE"}),
        track(messageId="good-3", context={"channel": "call_centre"}),
    ]
    response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key))
    assert response.status_code == 200
    answer = response.json()
    assert (answer["accepted"], answer["stored"]) == (2, 2)
    assert [(r["index"], r["pointer"]) for r in answer["rejected"]] == [
        (1, "#/batch/1/userId"),
        (2, "#/batch/2"),
        (3, "#/batch/3/type"),
        (4, "#/batch/4/context/store_id"),
    ]
    assert [(e.message_id, e.channel) for e in logged(db)] == [
        ("good-1", "server"),
        ("good-3", "call_centre"),
    ]


async def test_the_batch_context_and_sent_at_apply_to_every_event(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    sent = clock.now() + timedelta(hours=2)
    body = {
        "batch": [
            track(timestamp=iso(sent - timedelta(minutes=1))),
            track(context={"channel": "app"}),
        ],
        "sentAt": iso(sent),
        "context": {"channel": "email", "campaign": {"name": "soldes"}},
    }
    await client.post("/v1/batch", json=body, headers=basic(write_key))
    first, second = logged(db)
    assert first.timestamp == clock.now() - timedelta(minutes=1)
    assert (first.channel, second.channel) == ("email", "app")
    assert second.context == {"channel": "app", "campaign": {"name": "soldes"}}


async def test_text_no_database_can_store_is_refused_with_a_pointer(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    raw = b'{"batch": [{"type": "track", "event": "x", "anonymousId": "a", "properties": {"note": "a\\u0000b"}}, {"type": "track", "event": "ok \\ud83d\\ude00", "anonymousId": "a"}, {"type": "track", "event": "\\ud800", "anonymousId": "a"}]}'  # noqa: E501
    response = await client.post("/v1/batch", content=raw, headers=basic(write_key))
    assert response.status_code == 200
    assert [r["pointer"] for r in response.json()["rejected"]] == [
        "#/batch/0/properties/note",
        "#/batch/2/event",
    ]
    assert [e.event for e in logged(db)] == ["ok 😀"]


async def test_numbers_json_cannot_hold_are_refused(
    client: httpx.AsyncClient, db: Database, write_key: str
) -> None:
    raw = b'{"batch": [{"type": "track", "event": "x", "anonymousId": "a", "properties": {"n": 1e999}}, {"type": "track", "event": "y", "anonymousId": "a", "userId": -1e400}, {"type": "track", "event": "z", "anonymousId": "a", "properties": {"n": 1e308}}]}'  # noqa: E501
    response = await client.post("/v1/batch", content=raw, headers=basic(write_key))
    assert [r["pointer"] for r in response.json()["rejected"]] == [
        "#/batch/0/properties",
        "#/batch/1/userId",
    ]
    assert [e.event for e in logged(db)] == ["z"]
    nan = await client.post(
        "/v1/track",
        content=b'{"event": "x", "anonymousId": "a", "properties": {"n": NaN}}',
        headers=basic(write_key),
    )
    assert nan.status_code == 400


async def test_an_erased_persons_events_are_refused_until_a_new_consent(
    client: httpx.AsyncClient, db: Database, write_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[set[tuple[str, str]]] = []

    def erased(session: Any, pairs: Any, remembered: Any, blocked: Any) -> set[tuple[str, str]]:
        asked.append(set(pairs))
        return {("email", "lea@example.com"), ("anonymous_id", "gone-1")}

    monkeypatch.setattr(privacy, "erased_identifiers", erased)
    monkeypatch.setattr(privacy, "blocked_digests", lambda session, memory: frozenset({"d"}))
    batch = [
        track(messageId="kept"),
        {"type": "identify", "userId": "u-9", "traits": {"email": " Lea@Example.com "}},
        track(anonymousId="gone-1"),
    ]
    response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key))
    rejected = response.json()["rejected"]
    assert [(r["index"], r["pointer"]) for r in rejected] == [
        (1, "#/batch/1/traits/email"),
        (2, "#/batch/2/anonymousId"),
    ]
    assert all(r["detail"].startswith("erased person") for r in rejected)
    assert [e.message_id for e in logged(db)] == ["kept"]
    assert len(asked) == 1  # one call per batch
    assert ("email", "lea@example.com") in asked[0]


async def test_identity_reads_the_identity_bearing_events_of_the_log_in_one_call(
    client: httpx.AsyncClient,
    db: Database,
    clock: ManualClock,
    write_key: str,
    observed: list[list[identity.Observation]],
) -> None:
    batch = [
        {
            "type": "identify",
            "userId": "u-1",
            "anonymousId": "a-1",
            "messageId": "i-1",
            "traits": {"email": "lea@example.com", "phone": "06 12 34 56 78"},
            "context": {"channel": "app", "device": {"id": "dev-1"}},
        },
        {"type": "alias", "previousId": "a-2", "userId": "u-1"},
        track(userId="u-1", anonymousId="a-3"),
        track(userId="u-1", anonymousId="a-3"),
        track(anonymousId="a-4"),  # anonymous only: nothing to link
        track(userId="u-5", anonymousId=None),  # one id only: nothing to link
    ]
    await client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key))
    assert observed == []  # ingestion only writes the log
    assert identity_log.resolve_job(db, clock) == len(batch)  # log positions read
    assert len(observed) == 1
    observations = observed[0]
    assert [dict(o.identifiers) for o in observations] == [
        {
            "user_id": "u-1",
            "anonymous_id": "a-1",
            "email": "lea@example.com",
            "phone": "06 12 34 56 78",
            "device_id": "dev-1",
        },
        {"user_id": "u-1", "anonymous_id": "a-2"},
        {"user_id": "u-1", "anonymous_id": "a-3"},  # seen twice at the same time: once
    ]
    first = observations[0]
    assert (first.source, first.reference) == ("app", "i-1")
    assert first.traits["email"] == "lea@example.com"


async def test_a_batch_costs_the_same_statements_whatever_its_size(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    builders.add_store(db, clock, "LYO-1")
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    async def cost(size: int) -> int:
        statements.clear()
        batch = [
            track(userId=f"u-{n}", context={"channel": "store", "store_id": "LYO-1"})
            for n in range(size)
        ]
        response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(write_key))
        assert response.json()["stored"] == size
        return len(statements)

    first = await cost(300)
    assert sum("FROM stores" in s for s in statements) == 1  # one store query per batch
    # Then the process remembers the write key and the store.
    assert await cost(3) == await cost(300) < first
    assert not any("FROM stores" in s or "FROM api_keys" in s for s in statements)


async def test_stored_values_read_back_unchanged_through_the_model(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    builders.add_store(db, clock, "LYO-1")
    properties = {
        "products": [{"sku": "A", "price": 12.5, "tags": ["été", "lin"]}],
        "big": 2**62,
        "nothing": None,
        "yes": True,
        "quote": 'il a dit "oui"',
    }
    message = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-1",
        "anonymousId": "a-1",
        "timestamp": "2026-03-14T10:30:00.123456+01:00",
        "properties": properties,
        "context": {"channel": "store", "store_id": "LYO-1", "locale": "fr-FR"},
    }
    await client.post("/v1/batch", json={"batch": [message]}, headers=basic(write_key))
    [stored] = logged(db)
    assert stored.timestamp == datetime(2026, 3, 14, 9, 30, 0, 123456, tzinfo=UTC)
    assert stored.properties == properties
    assert stored.context == message["context"]
    assert stored.traits is None
    with db.transaction() as session:
        assert stores.get_store_by_code(session, "LYO-1").id == stored.store_id
        found = session.scalar(
            select(func.count())
            .select_from(TrackedEvent)
            .where(TrackedEvent.timestamp == stored.timestamp)
        )
    assert found == 1


async def test_browsers_may_post_from_any_site(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/v1/batch",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


# ------------------------------------------------------------------ the tracker script


async def test_the_tracker_script_is_served_cacheable_as_javascript(
    client: httpx.AsyncClient,
) -> None:
    script = await client.get("/v1/parcours.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "max-age" in script.headers["cache-control"]
    assert "window.parcours" in script.text
    again = await client.get("/v1/parcours.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304


# ------------------------------------------------------------------ reading the log


@pytest.fixture
def some_events(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session:
        events = []
        for n, (user, anonymous) in enumerate(
            [("u-1", "a-1"), (None, "a-1"), ("u-2", "a-2"), (None, "a-3"), ("u-1", None)]
        ):
            prepared = tracking_messages.prepare_event(
                track(userId=user, anonymousId=anonymous, messageId=f"m-{n}"), clock.now()
            )
            assert isinstance(prepared, tracking_messages.PreparedEvent)
            events.append(prepared)
        alias = tracking_messages.prepare_event(
            {"type": "alias", "previousId": "a-3", "userId": "u-3", "messageId": "m-alias"},
            clock.now(),
        )
        assert isinstance(alias, tracking_messages.PreparedEvent)
        tracking.ingest(session, clock.now(), None, [*events, alias])


@pytest.mark.usefixtures("some_events")
async def test_the_log_is_read_page_by_page_with_filters_and_each_read_audited(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    reader = {"Authorization": f"Bearer {builders.api_key(db, clock, 'customers:read')}"}
    first = await client.get("/v1/events?anonymous_id=a-1&limit=1", headers=reader)
    assert first.status_code == 200
    page = first.json()
    assert [e["message_id"] for e in page["items"]] == ["m-0"]
    second = await client.get(
        f"/v1/events?anonymous_id=a-1&limit=1&cursor={page['next_cursor']}", headers=reader
    )
    assert [e["message_id"] for e in second.json()["items"]] == ["m-1"]
    assert second.json()["next_cursor"] is None
    by_user = await client.get("/v1/events?user_id=u-1&type=track", headers=reader)
    assert [e["message_id"] for e in by_user.json()["items"]] == ["m-0", "m-4"]
    with db.transaction() as session:
        audits = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "events.read")))
    assert len(audits) == 3
    assert audits[0].detail == {"count": 1, "filters": ["anonymous_id"]}


async def test_reading_the_log_needs_the_customers_read_scope(
    client: httpx.AsyncClient, db: Database, clock: ManualClock, write_key: str
) -> None:
    assert (await client.get("/v1/events", headers=basic(write_key))).status_code == 403
    assert (await client.get("/v1/events")).status_code == 401
    reader = {"Authorization": f"Bearer {builders.api_key(db, clock, 'customers:read')}"}
    bad = await client.get("/v1/events?cursor=zz&type=shout", headers=reader)
    assert bad.status_code == 422
    cursor = (await client.get("/v1/events?cursor=zz", headers=reader)).json()
    assert cursor["detail"] == "The cursor is not one this API returned; start again without it."
    assert cursor["errors"] == [{"detail": "not a valid cursor", "parameter": "cursor"}]


def test_in_process_messages_are_ingested_as_a_batch_would_be(
    db: Database, clock: ManualClock
) -> None:
    from parcours import customers

    with db.transaction() as session:
        result = customers.ingest_messages(
            session,
            clock.now(),
            [
                track(messageId="demo-1", timestamp="2025-01-02T10:00:00Z"),
                {"type": "track", "event": "x"},
            ],
        )
    assert (result.stored, [r.pointer for r in result.rejected]) == (1, ["#/batch/1/userId"])
    [stored] = logged(db)
    assert (stored.source_id, stored.timestamp) == (None, builders.utc(2025, 1, 2, 10, 0))


@pytest.mark.parametrize("limit", [0, 501])
def test_reading_the_log_refuses_a_page_size_out_of_range(
    db: Database, clock: ManualClock, limit: int
) -> None:
    with db.transaction() as session, pytest.raises(InvalidInput) as refused:
        tracking.list_events(
            session, clock.now(), SYSTEM_ACTOR, tracking.EventFilter(), limit=limit
        )
    assert refused.value.detail == "limit must be between 1 and 500"
    assert [e.as_dict() for e in refused.value.errors] == [
        {"detail": "must be between 1 and 500", "parameter": "limit"}
    ]


@pytest.mark.usefixtures("some_events")
def test_a_persons_events_are_exported_and_erased_by_their_ids(db: Database) -> None:
    person = [("user_id", "u-3"), ("anonymous_id", "a-3"), ("email", "x@example.com")]
    with db.transaction() as session:
        exported = tracking.export_events(session, person)
    assert [e["message_id"] for e in exported] == ["m-3", "m-alias"]
    assert exported[0]["timestamp"].endswith("+00:00")
    json.dumps(exported)  # ready for the export file
    with db.transaction() as session:
        assert tracking.erase_events(session, person) == 2
        assert tracking.export_events(session, person) == []
        assert tracking.erase_events(session, [("email", "x@example.com")]) == 0
    assert len(logged(db)) == 4
