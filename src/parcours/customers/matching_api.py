"""REST endpoints of probabilistic matching: runs and the review queue (secret keys)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, IdempotencyKey, api_caller, respond_once
from parcours.customers import matching
from parcours.customers.matching_schemas import PairOut, PairPage, RunIn, RunList, RunOut

router = APIRouter(prefix="/v1/customers/matching", tags=["matching"])
Reader = Annotated[Actor, Depends(api_caller("customers:read"))]
Writer = Annotated[Actor, Depends(api_caller("customers:write"))]


@router.post("/runs", status_code=201, response_model=RunOut, summary="Run a matching")
def create_run(
    body: RunIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Compare the profiles of two sources (or all profiles), queue the uncertain pairs
    and, with `auto_merge`, merge the sure ones. Runs synchronously."""
    now = clock.now()

    def act() -> object:
        run = matching.run_matching(session, now, caller, body.request())
        return RunOut.model_validate(run).model_dump(mode="json")

    return respond_once(request, session, now, caller, key, body, act)


@router.get("/runs", response_model=RunList, summary="Latest matching runs")
def list_runs(
    session: DbSession, caller: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> RunList:
    return RunList(items=[RunOut.model_validate(r) for r in matching.list_runs(session, limit)])


@router.get("/runs/{run_id}", response_model=RunOut, summary="One matching run")
def get_run(run_id: uuid.UUID, session: DbSession, caller: Reader) -> RunOut:
    return RunOut.model_validate(matching.get_run(session, run_id))


@router.get("/pairs", response_model=PairPage, summary="Proposed pairs (the review queue)")
def list_pairs(
    session: DbSession,
    clock: ClockDep,
    caller: Reader,
    status: str = "pending",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PairPage:
    """Pairs with both profiles side by side (personal data: audited)."""
    page = matching.review_queue(session, clock.now(), caller, status, cursor, limit)
    return PairPage(items=[PairOut.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/pairs/{pair_id}", response_model=PairOut, summary="One proposed pair")
def get_pair(pair_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Reader) -> PairOut:
    return PairOut.of(matching.get_candidate(session, clock.now(), caller, pair_id))


@router.post("/pairs/{pair_id}/accept", response_model=PairOut, summary="Merge a proposed pair")
def accept_pair(pair_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Writer) -> PairOut:
    """The two profiles are one person: merge them (the older is kept). 409 when the
    pair was already decided or the identity rules refuse the merge."""
    now = clock.now()
    matching.accept_candidate(session, now, caller, pair_id)
    return PairOut.of(matching.get_candidate(session, now, caller, pair_id))


@router.post("/pairs/{pair_id}/reject", response_model=PairOut, summary="Keep a pair apart")
def reject_pair(pair_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Writer) -> PairOut:
    """Two people: the pair is remembered and never proposed again. 409 if decided."""
    now = clock.now()
    matching.reject_candidate(session, now, caller, pair_id)
    return PairOut.of(matching.get_candidate(session, now, caller, pair_id))
