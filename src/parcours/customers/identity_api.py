"""REST endpoints of the identity graph: resolve, identifiers, merge history, merge, unmerge.

Reads need `customers:read` and are audited (identifiers are personal data); merges and
unmerges need `customers:write`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, IdempotencyKey, api_caller, respond_once
from parcours.core.errors import NotFound
from parcours.customers import identity

router = APIRouter(prefix="/v1/identity", tags=["identity"])
Reader = Annotated[Actor, Depends(api_caller("customers:read"))]
Writer = Annotated[Actor, Depends(api_caller("customers:write"))]


class IdentifierRef(BaseModel):
    kind: str
    value: str


class ResolvedOut(BaseModel):
    kind: str
    value: str = Field(description="The value as stored (normalised)")
    profile_id: uuid.UUID


class IdentifierOut(BaseModel):
    kind: str
    value: str
    source: str
    first_seen: datetime
    last_seen: datetime


class IdentifierList(BaseModel):
    profile_id: uuid.UUID = Field(description="The live profile (after following merges)")
    items: list[IdentifierOut]


class MergeOut(BaseModel):
    id: uuid.UUID
    outcome: str = Field(description='"merged", or "refused" for a link a rule refused')
    kept_id: uuid.UUID
    absorbed_id: uuid.UUID | None
    rule: str
    identifiers: list[IdentifierRef]
    reason: str | None
    source: str
    reference: str | None
    observed_at: datetime
    at: datetime
    actor: str
    undone_at: datetime | None
    undone_by: str | None
    undone_reason: str | None


class MergeList(BaseModel):
    profile_id: uuid.UUID
    items: list[MergeOut]


class MergeIn(BaseModel):
    keep: uuid.UUID = Field(description="The profile that survives")
    other: uuid.UUID = Field(description="The profile merged into `keep`")
    reason: str = Field(min_length=1, max_length=500, description="Why, for the audit trail")


def _merge_out(record: identity.MergeRecord) -> MergeOut:
    return MergeOut(
        id=record.id,
        outcome=record.outcome,
        kept_id=record.kept_id,
        absorbed_id=record.absorbed_id,
        rule=record.rule,
        identifiers=[IdentifierRef(kind=k, value=v) for k, v in record.identifiers],
        reason=record.reason,
        source=record.source,
        reference=record.reference,
        observed_at=record.observed_at,
        at=record.at,
        actor=record.actor,
        undone_at=record.undone_at,
        undone_by=record.undone_by,
        undone_reason=record.undone_reason,
    )


@router.get("/resolve", response_model=ResolvedOut, summary="The profile an identifier belongs to")
def resolve(
    session: DbSession,
    clock: ClockDep,
    caller: Reader,
    kind: Annotated[str, Query(description=f"One of {', '.join(identity.IDENTIFIER_KINDS)}")],
    value: Annotated[str, Query(min_length=1, max_length=320)],
) -> ResolvedOut:
    found = identity.resolve(session, kind, value)
    if found is None:
        raise NotFound(f"No profile holds this {kind}.")
    audit.record(session, clock.now(), caller, "identity.resolved", "customer", str(found))
    normalised = identity.normalise(kind, value) or value
    return ResolvedOut(kind=kind, value=normalised, profile_id=found)


@router.get(
    "/profiles/{profile_id}/identifiers",
    response_model=IdentifierList,
    summary="Every identifier linked to a profile",
)
def list_identifiers(
    profile_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Reader
) -> IdentifierList:
    items = identity.identifiers_of(session, profile_id)
    live = identity.canonical_profile_id(session, profile_id) or profile_id
    audit.record(session, clock.now(), caller, "identity.identifiers_viewed", "customer", str(live))
    return IdentifierList(
        profile_id=live,
        items=[
            IdentifierOut(
                kind=i.kind,
                value=i.value,
                source=i.source,
                first_seen=i.first_seen,
                last_seen=i.last_seen,
            )
            for i in items
        ],
    )


@router.get(
    "/profiles/{profile_id}/merges",
    response_model=MergeList,
    summary="Merges and refused links of a profile, oldest first",
)
def list_merges(
    profile_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Reader
) -> MergeList:
    history = identity.merge_history(session, profile_id)
    live = identity.canonical_profile_id(session, profile_id) or profile_id
    audit.record(session, clock.now(), caller, "identity.merges_viewed", "customer", str(live))
    return MergeList(profile_id=live, items=[_merge_out(record) for record in history])


@router.post(
    "/merges",
    response_model=MergeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Merge two profiles (a person's decision); idempotent",
)
def merge(
    body: MergeIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def act() -> object:
        merge_id = identity.merge_profiles(session, now, caller, body.keep, body.other, body.reason)
        return _merge_out(identity.get_merge(session, merge_id)).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, act)


@router.post(
    "/merges/{merge_id}/unmerge",
    response_model=MergeOut,
    summary="Undo a merge: the absorbed profile comes back with its own id",
)
def unmerge(merge_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Writer) -> MergeOut:
    identity.unmerge(session, clock.now(), caller, merge_id)
    return _merge_out(identity.get_merge(session, merge_id))
