"""Console pages of probabilistic matching: the review queue of uncertain pairs (both
profiles side by side, agreeing fields highlighted), decisions, and runs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours.core.deps import DbSession
from parcours.customers import matching
from parcours.customers.matching_records import FIELDS
from parcours.web.console import Console, VerifiedConsole, render, require_role

router = APIRouter(prefix="/console/matching", include_in_schema=False)
REVIEWERS = ("admin", "marketer")
PAGE = 25
HERE = "/console/matching"


@router.get("", response_class=HTMLResponse)
def queue_page(
    request: Request,
    context: Console,
    session: DbSession,
    status: Annotated[str, Query()] = "pending",
    cursor: str | None = None,
    run: uuid.UUID | None = None,
) -> Response:
    actor = require_role(context, *REVIEWERS)
    page = matching.review_queue(session, context.now, actor, status, cursor, PAGE)
    runs = matching.list_runs(session, 5)
    return render(
        request,
        context,
        "customers/matching_queue.html",
        page=page,
        status=status,
        statuses=matching.STATUSES,
        runs=runs,
        fields=FIELDS,
        pending=matching.count_pending(session),
        done=next((r for r in runs if r.id == run), None),
    )


@router.post("/runs", response_class=HTMLResponse)
def start_run(
    context: VerifiedConsole,
    session: DbSession,
    source_a: Annotated[str, Form()] = "",
    source_b: Annotated[str, Form()] = "",
    lower: Annotated[float, Form()] = 0.5,
    upper: Annotated[float, Form()] = 0.95,
    auto_merge: Annotated[bool, Form()] = False,
) -> Response:
    actor = require_role(context, *REVIEWERS)
    request = matching.RunRequest(
        source_a=source_a.strip() or None,
        source_b=source_b.strip() or None,
        lower=lower,
        upper=upper,
        auto_merge=auto_merge,
    )
    done = matching.run_matching(session, context.now, actor, request)
    return RedirectResponse(f"{HERE}?run={done.id}", status_code=303)


def _back(back: str) -> str:
    """Return to the queue with its filters, never to another site."""
    return back if back.startswith(f"{HERE}?") or back == HERE else HERE


@router.post("/pairs/{pair_id}/accept", response_class=HTMLResponse)
def accept(
    pair_id: uuid.UUID,
    context: VerifiedConsole,
    session: DbSession,
    back: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, *REVIEWERS)
    matching.accept_candidate(session, context.now, actor, pair_id)
    return RedirectResponse(_back(back), status_code=303)


@router.post("/pairs/{pair_id}/reject", response_class=HTMLResponse)
def reject(
    pair_id: uuid.UUID,
    context: VerifiedConsole,
    session: DbSession,
    back: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, *REVIEWERS)
    matching.reject_candidate(session, context.now, actor, pair_id)
    return RedirectResponse(_back(back), status_code=303)
