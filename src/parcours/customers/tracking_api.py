"""Segment-compatible tracking endpoints, the event log reader and the web tracker.

Thin: read the body, authenticate the write key, hand over to `tracking`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DatabaseDep, DbSession, api_caller, presented_key
from parcours.customers import tracking, tracking_messages

router = APIRouter(tags=["tracking"])
Reader = Annotated[Actor, Depends(api_caller("customers:read"))]

# Write keys are public and no cookie is used, so any web site may send events.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding, X-API-Key",
    "Access-Control-Max-Age": "86400",
}


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


class Rejected(BaseModel):
    index: int | None = Field(description="position in `batch` (null for single calls)")
    messageId: str | None  # noqa: N815 - Segment's spelling
    pointer: str = Field(description="JSON pointer to the bad value, e.g. #/batch/3/userId")
    detail: str


class TrackingAnswer(BaseModel):
    success: bool = True
    accepted: int = Field(description="valid events: stored now or already stored")
    stored: int = Field(description="events written to the log by this request")
    duplicates: int = Field(description="valid events whose messageId was already stored")
    rejected: list[Rejected] = Field(description="refused events, one entry per problem")


class EventOut(BaseModel):
    seq: int
    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    group_id: str | None
    channel: str
    store_id: str | None
    source_id: str | None
    timestamp: datetime
    received_at: datetime
    sent_at: datetime | None
    original_timestamp: datetime | None
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Segment-spec message (https://segment.com/docs/connections/spec/).",
    "properties": {
        "type": {"type": "string", "enum": list(tracking_messages.TYPES)},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string"},
        "event": {"type": "string", "description": "track: the event name"},
        "name": {"type": "string", "description": "page/screen: the page name"},
        "previousId": {"type": "string", "description": "alias"},
        "groupId": {"type": "string", "description": "group"},
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {
            "type": "object",
            "properties": {
                "channel": {"type": "string", "enum": list(tracking_messages.EVENT_CHANNELS)},
                "store_id": {"type": "string", "description": "a store id or code"},
            },
        },
        "timestamp": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
    },
}


def _body_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _header_key(request: Request) -> str | None:
    headers = request.headers
    if headers.get("authorization") or headers.get("x-api-key"):
        return presented_key(request)
    return None


def _answer(result: tracking.IngestResult) -> JSONResponse:
    return JSONResponse(result.as_dict(), headers=CORS_HEADERS)


@router.post(
    "/v1/batch",
    response_model=TrackingAnswer,
    summary="Send many events (Segment batch)",
    description="Good events are stored, bad ones listed in `rejected` (200). "
    "A body that is not a batch is 400/422; over 500 KB is 413.",
    openapi_extra=_body_doc(
        {
            "type": "object",
            "required": ["batch"],
            "properties": {
                "batch": {"type": "array", "items": _MESSAGE_SCHEMA},
                "sentAt": {"type": "string", "format": "date-time"},
                "context": {"type": "object"},
                "writeKey": {"type": "string"},
            },
        }
    ),
)
def batch(request: Request, raw: RawBody, db: DatabaseDep, clock: ClockDep) -> JSONResponse:
    # Transactions of its own (see track_batch), committed before the answer.
    body = tracking_messages.decode_body(
        raw, request.headers.get("content-encoding"), tracking_messages.MAX_BATCH_BYTES
    )
    return _answer(tracking.track_batch(db, clock.now(), _header_key(request), body))


def _single_call(kind: str) -> None:
    def handler(request: Request, raw: RawBody, db: DatabaseDep, clock: ClockDep) -> JSONResponse:
        body = tracking_messages.decode_body(
            raw, request.headers.get("content-encoding"), tracking_messages.MAX_EVENT_BYTES
        )
        return _answer(tracking.track_one(db, clock.now(), _header_key(request), kind, body))

    router.add_api_route(
        f"/v1/{kind}",
        handler,
        methods=["POST"],
        response_model=TrackingAnswer,
        summary=f"Send one {kind} event (Segment spec)",
        description="A bad event is 422 problem+json pointing at each bad field; "
        "over 32 KB is 413.",
        openapi_extra=_body_doc(_MESSAGE_SCHEMA),
        name=f"tracking_{kind}",
    )


for _kind in tracking_messages.TYPES:
    _single_call(_kind)


async def preflight() -> Response:
    """CORS preflight for browsers posting JSON with a key header."""
    return Response(status_code=204, headers=CORS_HEADERS)


# One route per call rather than `/v1/{call}`: a catch-all would answer 405 instead of
# 404 for every unknown GET under /v1.
for _call in (*tracking_messages.TYPES, "batch"):
    router.add_api_route(f"/v1/{_call}", preflight, methods=["OPTIONS"], include_in_schema=False)


@router.get(
    "/v1/events",
    response_model=EventPage,
    summary="Read the tracked events log (audited)",
    description="Events in arrival order, filtered; needs `customers:read`.",
)
def list_events(
    session: DbSession,
    clock: ClockDep,
    caller: Reader,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    type: str | None = None,
    event: str | None = None,
    channel: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    where = tracking.EventFilter(user_id, anonymous_id, type, event, channel)
    page = tracking.list_events(session, clock.now(), caller, where, cursor, limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@lru_cache(maxsize=1)
def _tracker_script() -> tuple[bytes, str]:
    source = resources.files("parcours.customers").joinpath("static/tracker.js").read_bytes()
    return source, '"' + hashlib.sha256(source).hexdigest()[:32] + '"'


@router.get("/v1/parcours.js", include_in_schema=False)
async def tracker_script(request: Request) -> Response:
    """The first-party web tracker (see docs/tracking.md)."""
    source, etag = _tracker_script()
    headers = {
        "Cache-Control": "public, max-age=3600",
        "ETag": etag,
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(source, media_type="text/javascript; charset=utf-8", headers=headers)
