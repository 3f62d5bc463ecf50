"""REST API of the segments context (`/v1/segments`).

Writing (create, change, delete, refresh, preview, export) needs a secret key with the
`activation:write` scope; reading a segment and its members also accepts `customers:read`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from parcours.core.audit import Actor
from parcours.core.auth import require_scope, verify_api_key
from parcours.core.deps import (
    ClockDep,
    DbSession,
    IdempotencyKey,
    api_caller,
    presented_key,
    respond_once,
)
from parcours.core.errors import Forbidden
from parcours.core.pagination import decode_cursor, encode_cursor
from parcours.segments import exports, service

router = APIRouter(prefix="/v1/segments", tags=["segments"])
WRITE_SCOPE = "activation:write"
READ_SCOPES = (WRITE_SCOPE, "customers:read")
Writer = Annotated[Actor, Depends(api_caller(WRITE_SCOPE))]


def _reader(request: Request, session: DbSession) -> Actor:
    actor = verify_api_key(session, presented_key(request))
    for scope in READ_SCOPES:
        try:
            require_scope(actor, scope)
            return actor
        except Forbidden:
            continue
    raise Forbidden("Reading segments needs the activation:write or customers:read scope.")


Reader = Annotated[Actor, Depends(_reader)]
Definition = Field(
    description="The definition: all/any/not of conditions (docs/segments.md).",
    examples=[{"all": [{"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"}]}],
)


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=64, examples=["lyon-robes"])
    name: str = Field(min_length=1, max_length=200, examples=["Lyon, dresses"])
    description: str = Field(default="", max_length=1000)
    definition: dict[str, Any] = Definition


class SegmentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    definition: dict[str, Any] | None = Definition


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any] = Definition


class SegmentOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    description: str
    definition: dict[str, Any]
    version: int
    member_count: int
    created_at: datetime
    updated_at: datetime
    last_evaluated_at: datetime | None


class SegmentList(BaseModel):
    items: list[SegmentOut]


class SampleOut(BaseModel):
    profile_id: uuid.UUID
    name: str


class PreviewOut(BaseModel):
    count: int
    sample: list[SampleOut]


class RefreshOut(BaseModel):
    key: str
    entered: int
    exited: int
    member_count: int


class MemberPage(BaseModel):
    items: list[uuid.UUID]
    next_cursor: str | None


def _out(session: DbSession, ref: str) -> SegmentOut:
    s = service.get_segment(session, ref)
    return SegmentOut(
        id=s.id, key=s.key, name=s.name, description=s.description, definition=s.definition,
        version=s.version, member_count=s.member_count, created_at=s.created_at,
        updated_at=s.updated_at, last_evaluated_at=s.last_evaluated_at,
    )  # fmt: skip


@router.post("", status_code=201, response_model=SegmentOut, summary="Create a segment")
def create(
    request: Request,
    body: SegmentIn,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def action() -> Any:
        made = service.create_segment(
            session, now, caller, body.key, body.name, body.definition, body.description
        )
        return _out(session, made.key).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, action)


@router.get("", response_model=SegmentList, summary="List the segments")
def list_all(session: DbSession, _: Reader) -> SegmentList:
    return SegmentList(items=[_out(session, s.key) for s in service.list_segments(session)])


@router.post("/preview", response_model=PreviewOut, summary="Count and sample, unsaved")
def preview(body: PreviewIn, session: DbSession, clock: ClockDep, _: Writer) -> PreviewOut:
    found = service.preview(session, clock.now(), body.definition)
    return PreviewOut(
        count=found.count, sample=[SampleOut(profile_id=i, name=n) for i, n in found.sample]
    )


@router.get("/{key}", response_model=SegmentOut, summary="One segment")
def get_one(key: str, session: DbSession, _: Reader) -> SegmentOut:
    return _out(session, key)


@router.put("/{key}", response_model=SegmentOut, summary="Change a segment")
def change(
    key: str, body: SegmentChange, session: DbSession, clock: ClockDep, caller: Writer
) -> SegmentOut:
    service.update_segment(
        session, clock.now(), caller, key, body.name, body.definition, body.description
    )
    return _out(session, key)


@router.delete("/{key}", status_code=204, summary="Delete a segment")
def remove(key: str, session: DbSession, clock: ClockDep, caller: Writer) -> Response:
    service.delete_segment(session, clock.now(), caller, key)
    return Response(status_code=204)


@router.post("/{key}/refresh", response_model=RefreshOut, summary="Evaluate a segment now")
def refresh(key: str, session: DbSession, clock: ClockDep, _: Writer) -> RefreshOut:
    segment = service.find_segment(session, key)
    change = service.refresh_segment(session, clock.now(), segment.id)
    after = service.find_segment(session, key)
    return RefreshOut(
        key=after.key, entered=len(change.entered), exited=len(change.exited),
        member_count=after.member_count,
    )  # fmt: skip


@router.get("/{key}/members", response_model=MemberPage, summary="Member profile ids, paged")
def members(
    key: str,
    session: DbSession,
    _: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MemberPage:
    segment = service.find_segment(session, key)
    after = decode_cursor(cursor) if cursor else None
    ids = service.members_page(session, segment.id, after, limit + 1)
    more = len(ids) > limit
    ids = ids[:limit]
    return MemberPage(items=ids, next_cursor=encode_cursor(ids[-1]) if more and ids else None)


@router.get("/{key}/export", summary="Export the members: csv or audience (hashed)")
def export(
    key: str,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    format: Annotated[str, Query(description="csv or audience")] = "csv",
) -> StreamingResponse:
    lines = list(exports.export_lines(session, clock.now(), caller, key, format))
    name = f"segment-{key}-{format}.csv"
    return StreamingResponse(
        iter(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
