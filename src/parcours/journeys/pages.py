"""Console pages of journeys: the list with status and people inside, a new journey
(JSON editor, errors shown with their pointer), and a journey's page showing its steps
as a vertical flow with counts per step, the editor for a new version, and
activate/pause."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours.core.deps import DbSession
from parcours.core.errors import ParcoursError, Refused
from parcours.journeys import ready_made, service
from parcours.journeys.definition import (
    EXAMPLE,
    MESSAGES,
    NOT_AN_OBJECT,
    NOT_JSON,
    STEP_TYPES,
    TRIGGERS,
)
from parcours.web.console import Console, VerifiedConsole, render, require_role

router = APIRouter(prefix="/console/activation/journeys", include_in_schema=False)
ROLES = ("admin", "marketer")
HERE = "/console/activation/journeys"
# Words the pages translate from Python data: statuses, step and trigger types, and what
# the definition and the service refuse.
MSGIDS = (
    "draft", "active", "paused", "archived",
    "wait", "condition", "send", "promo_code", "points", "tag", "webhook", "exit",
    "event", "segment_entered", "date_trait", "geo_entered", "back_in_stock",
    *MESSAGES, *service.SERVICE_MESSAGES,
)  # fmt: skip
assert set(STEP_TYPES) <= set(MSGIDS)
assert set(TRIGGERS) <= set(MSGIDS)


def _parsed(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise Refused.of(NOT_JSON, problem=exc) from None
    if not isinstance(found, dict):
        raise Refused(NOT_AN_OBJECT)
    return found


def _list(
    request: Request, context: Any, session: Any, status_code: int = 200, **extra: Any
) -> Response:
    extra.setdefault("form", {"definition": json.dumps(EXAMPLE, indent=2)})
    response = render(
        request, context, "journeys/list.html", journeys=service.list_journeys(session), **extra
    )
    response.status_code = status_code
    return response


@router.get("", response_class=HTMLResponse)
def list_page(request: Request, context: Console, session: DbSession) -> Response:
    require_role(context, *ROLES)
    return _list(request, context, session)


@router.post("", response_class=HTMLResponse)
def create(
    request: Request,
    context: VerifiedConsole,
    session: DbSession,
    key: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    definition: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, *ROLES)
    form = {"key": key, "name": name, "definition": definition}
    try:
        made = service.create_journey(session, context.now, actor, key, name, _parsed(definition))
    except ParcoursError as error:
        return _list(request, context, session, 422, error=error, form=form)
    return RedirectResponse(f"{HERE}/{made.key}", status_code=303)


@router.post("/ready-made", response_class=HTMLResponse)
def install_ready_made(context: VerifiedConsole, session: DbSession) -> Response:
    """Install the ready-made journeys (in draft) with their templates, promotions and
    segment; what exists already is kept."""
    actor = require_role(context, *ROLES)
    ready_made.install_ready_made(session, context.now, actor)
    return RedirectResponse(HERE, status_code=303)


def _page(
    request: Request, context: Any, session: Any, key: str, status_code: int = 200, **extra: Any
) -> Response:
    journey = service.get_journey(session, key)
    extra.setdefault("draft", json.dumps(journey.definition, indent=2, ensure_ascii=False))
    response = render(
        request, context, "journeys/journey.html", journey=journey,
        stats=service.journey_stats(session, key),
        steps={s["id"]: s for s in journey.definition.get("steps", [])}, **extra,
    )  # fmt: skip
    response.status_code = status_code
    return response


@router.get("/{key}", response_class=HTMLResponse)
def journey_page(key: str, request: Request, context: Console, session: DbSession) -> Response:
    require_role(context, *ROLES)
    return _page(request, context, session, key)


@router.post("/{key}", response_class=HTMLResponse)
def save_version(
    key: str,
    request: Request,
    context: VerifiedConsole,
    session: DbSession,
    definition: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, *ROLES)
    try:
        service.update_journey(session, context.now, actor, key, _parsed(definition))
    except ParcoursError as error:
        return _page(request, context, session, key, 422, error=error, draft=definition)
    return RedirectResponse(f"{HERE}/{key}", status_code=303)


@router.post("/{key}/status", response_class=HTMLResponse)
def change_status(
    key: str,
    context: VerifiedConsole,
    session: DbSession,
    status: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, *ROLES)
    service.set_status(session, context.now, actor, key, status)
    return RedirectResponse(f"{HERE}/{key}", status_code=303)
