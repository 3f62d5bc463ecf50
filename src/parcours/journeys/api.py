"""REST API of the journeys context (`/v1/journeys`), scope `activation:write`.

Creating is idempotent with `Idempotency-Key`; `PUT` saves a new version (people inside
keep theirs); a bad definition is a 422 problem+json whose pointers name each part
(`#/definition/steps/2/next`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, IdempotencyKey, api_caller, respond_once
from parcours.journeys import service
from parcours.journeys.definition import EXAMPLE

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])
Writer = Annotated[Actor, Depends(api_caller("activation:write"))]
Definition = Field(
    description="Trigger, steps, exit and re-entry rules (docs/journeys.md).",
    examples=[EXAMPLE],
)


class JourneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=64, examples=["abandoned-cart"])
    name: str = Field(min_length=1, max_length=200, examples=["Abandoned cart"])
    definition: dict[str, Any] = Definition


class JourneyChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    definition: dict[str, Any] = Definition


class JourneyOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    status: str
    version: int
    definition: dict[str, Any]
    active_instances: int
    created_at: datetime
    updated_at: datetime


class JourneyList(BaseModel):
    items: list[JourneyOut]


class StepOut(BaseModel):
    step_id: str
    type: str
    entered: int
    waiting: int
    done: int
    exited: int
    outcomes: dict[str, int]


class StatsOut(BaseModel):
    key: str
    version: int
    entered: int
    active: int
    completed: int
    exited: int
    steps: list[StepOut]


class InstanceOut(BaseModel):
    id: uuid.UUID
    version: int
    profile_id: uuid.UUID
    status: str
    current_step: str | None
    next_run_at: datetime | None
    entered_at: datetime
    ended_at: datetime | None
    exit_reason: str | None
    state: dict[str, Any]


class InstancePage(BaseModel):
    items: list[InstanceOut]
    next_cursor: str | None


def _out(view: service.JourneyView) -> JourneyOut:
    return JourneyOut(
        id=view.id, key=view.key, name=view.name, status=view.status, version=view.version,
        definition=view.definition, active_instances=view.active_instances,
        created_at=view.created_at, updated_at=view.updated_at,
    )  # fmt: skip


@router.post("", status_code=201, response_model=JourneyOut, summary="Create a journey (draft)")
def create(
    request: Request,
    body: JourneyIn,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def action() -> Any:
        made = service.create_journey(session, now, caller, body.key, body.name, body.definition)
        return _out(made).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, action)


@router.get("", response_model=JourneyList, summary="List the journeys")
def list_all(session: DbSession, _: Writer) -> JourneyList:
    return JourneyList(items=[_out(v) for v in service.list_journeys(session)])


@router.get("/{key}", response_model=JourneyOut, summary="A journey and its current definition")
def get_one(key: str, session: DbSession, _: Writer) -> JourneyOut:
    return _out(service.get_journey(session, key))


@router.put("/{key}", response_model=JourneyOut, summary="Save a new version")
def change(
    key: str, body: JourneyChange, session: DbSession, clock: ClockDep, caller: Writer
) -> JourneyOut:
    return _out(
        service.update_journey(session, clock.now(), caller, key, body.definition, body.name)
    )


@router.post("/{key}/activate", response_model=JourneyOut, summary="Start entering people")
def activate(key: str, session: DbSession, clock: ClockDep, caller: Writer) -> JourneyOut:
    return _out(service.set_status(session, clock.now(), caller, key, "active"))


@router.post("/{key}/pause", response_model=JourneyOut, summary="Stop entering people")
def pause(key: str, session: DbSession, clock: ClockDep, caller: Writer) -> JourneyOut:
    return _out(service.set_status(session, clock.now(), caller, key, "paused"))


@router.get("/{key}/stats", response_model=StatsOut, summary="Counts per step")
def stats(key: str, session: DbSession, _: Writer) -> StatsOut:
    found = service.journey_stats(session, key)
    return StatsOut(
        key=found.key, version=found.version, entered=found.entered, active=found.active,
        completed=found.completed, exited=found.exited,
        steps=[StepOut(**vars(s)) for s in found.steps],
    )  # fmt: skip


@router.get("/{key}/instances", response_model=InstancePage, summary="People in the journey")
def instances(
    key: str,
    session: DbSession,
    _: Writer,
    status: Annotated[str | None, Query(description="active, completed or exited")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> InstancePage:
    page = service.list_instances(session, key, status, cursor, limit)
    return InstancePage(
        items=[InstanceOut(**service.instance_dict(i)) for i in page.items],
        next_cursor=page.next_cursor,
    )
