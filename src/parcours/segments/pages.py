"""Console pages of segments: the list with sizes, a builder (condition rows, all/any,
and a JSON editor for nesting) with a preview before saving, and a segment's page with
its definition, its size over time and its members."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours.core.deps import DbSession
from parcours.core.errors import ParcoursError, Refused
from parcours.segments import service
from parcours.segments.definition import MESSAGES
from parcours.web.console import Console, VerifiedConsole, render, require_role

router = APIRouter(prefix="/console/activation/segments", include_in_schema=False)
ROLES = ("admin", "marketer")
HERE = "/console/activation/segments"
ROW_KINDS = ("trait", "event", "consent", "segment", "rfm")
ROWS = 4
MEMBERS_SHOWN = 50
NOT_JSON = "The JSON definition is not valid JSON: %(problem)s."
NOT_AN_OBJECT = "The JSON definition must be an object."
NO_CONDITION = "Give at least one condition, or a definition in JSON."
# Words the pages translate from Python data: evaluation modes and the definition's
# mistakes (shown in the reader's language; the API says them in English).
MSGIDS = (
    "full",
    "incremental",
    NOT_JSON,
    NOT_AN_OBJECT,
    NO_CONDITION,
    *MESSAGES,
    *service.SERVICE_MESSAGES,
)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _condition(kind: str, field: str, operator: str, value: str) -> dict[str, Any]:
    if kind == "trait":
        found: dict[str, Any] = {"kind": kind, "field": field, "operator": operator}
        if value:
            found["value"] = _value(value)
        return found
    if kind == "event":
        found = {"kind": kind, "name": field, "operator": operator or "did"}
        if value:
            found["value"] = _value(value)
        return found
    if kind == "consent":
        return {"kind": kind, "purpose": field, "channel": value}
    if kind == "segment":
        return {"kind": kind, "segment": field}
    return {"kind": kind, "segment": field}


def built_definition(
    combinator: str, rows: list[tuple[str, str, str, str]], raw_json: str
) -> dict[str, Any]:
    """The definition the builder's form describes; the JSON editor wins when filled."""
    if raw_json.strip():
        try:
            found = json.loads(raw_json)
        except ValueError as exc:
            raise Refused.of(NOT_JSON, problem=exc) from None
        if not isinstance(found, dict):
            raise Refused(NOT_AN_OBJECT)
        return found
    conditions = [_condition(*row) for row in rows if row[0] and row[1].strip()]
    if not conditions:
        raise Refused(NO_CONDITION)
    return {"any" if combinator == "any" else "all": conditions}


@router.get("", response_class=HTMLResponse)
def list_page(request: Request, context: Console, session: DbSession) -> Response:
    require_role(context, *ROLES)
    return _builder(request, context, session)


def _builder(
    request: Request, context: Any, session: Any, status_code: int = 200, **extra: Any
) -> Response:
    segments = [service.get_segment(session, s.key) for s in service.list_segments(session)]
    response = render(
        request, context, "segments/list.html", segments=segments, kinds=ROW_KINDS,
        rows=range(ROWS), **extra,
    )  # fmt: skip
    response.status_code = status_code
    return response


@router.post("", response_class=HTMLResponse)
async def build(request: Request, context: VerifiedConsole, session: DbSession) -> Response:
    actor = require_role(context, *ROLES)
    form = await request.form()

    def field(name: str) -> str:
        value = form.get(name, "")
        return value if isinstance(value, str) else ""

    rows = [
        (field(f"kind_{i}"), field(f"field_{i}"), field(f"operator_{i}"), field(f"value_{i}"))
        for i in range(ROWS)
    ]
    values = {name: field(name) for name in ("key", "name", "combinator", "definition")}
    try:
        definition = built_definition(values["combinator"], rows, values["definition"])
        if field("action") == "save":
            made = service.create_segment(
                session, context.now, actor, values["key"], values["name"], definition
            )
            service.refresh_segment(session, context.now, made.id)
            return RedirectResponse(f"{HERE}/{made.key}", status_code=303)
        found = service.preview(session, context.now, definition)
    except ParcoursError as error:
        return _builder(request, context, session, 422, error=error, form=values, filled=rows)
    shown = json.dumps(definition, indent=2, ensure_ascii=False)
    return _builder(
        request, context, session, preview=found, form={**values, "definition": shown}, filled=rows
    )


@router.get("/{key}", response_class=HTMLResponse)
def segment_page(key: str, request: Request, context: Console, session: DbSession) -> Response:
    require_role(context, *ROLES)
    segment = service.get_segment(session, key)
    members = service.members_page(session, segment.id, None, MEMBERS_SHOWN)
    return render(
        request, context, "segments/segment.html", segment=segment,
        definition=json.dumps(segment.definition, indent=2, ensure_ascii=False),
        history=service.history(session, segment.id), members=members,
    )  # fmt: skip


@router.post("/{key}/refresh", response_class=HTMLResponse)
def refresh(
    key: str, context: VerifiedConsole, session: DbSession, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    require_role(context, *ROLES)
    segment = service.find_segment(session, key)
    service.refresh_segment(session, context.now, segment.id)
    return RedirectResponse(f"{HERE}/{segment.key}", status_code=303)
