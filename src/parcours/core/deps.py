"""FastAPI dependencies shared by every router: session, clock, settings, API caller."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from parcours.core.audit import Actor
from parcours.core.auth import require_scope, verify_api_key
from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.errors import Unauthenticated
from parcours.core.idempotency import IdempotentResult, fingerprint, run_once
from parcours.core.settings import Settings

# The three readers of the app's state are coroutines: FastAPI runs a plain function
# dependency in its thread pool, and the hop cost more than the rest of a request's
# dependencies together (about 0.3 ms each).


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    with db.transaction() as session:
        yield session


# `scope="function"`: the commit runs before the response is sent. With FastAPI's
# default ("request") it ran after, so a client could read before the commit, and a
# failed commit still left the client with a success.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_database)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def presented_key(request: Request) -> str:
    """The API key from `Authorization: Bearer`, HTTP Basic (user name) or `X-API-Key`.

    Basic is how Segment clients send their write key: the key as user name, no password.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("The Basic credentials are not valid base64.") from None
        return decoded.partition(":")[0]
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        return api_key
    raise Unauthenticated(
        "This endpoint needs an API key: send `Authorization: Bearer <key>`. "
        "Create one with `parcours keys create`."
    )


def api_caller(scope: str) -> Callable[..., Actor]:
    """A dependency authenticating the API key and checking it holds `scope`."""

    def dependency(request: Request, session: DbSession) -> Actor:
        actor = verify_api_key(session, presented_key(request))
        require_scope(actor, scope)
        return actor

    return dependency


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Send the same key when retrying: the request is acted on only once.",
    ),
]


def idempotent_response(result: IdempotentResult) -> JSONResponse:
    """The stored or fresh answer of an idempotent request; replays are marked."""
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


def respond_once(
    request: Request,
    session: Session,
    now: datetime,
    caller: Actor,
    key: str | None,
    body: BaseModel,
    action: Callable[[], Any],
    status_code: int = 201,
) -> JSONResponse:
    """Run a creating request's `action` (returning a JSON-able body) once per
    `Idempotency-Key` of this caller, and answer it or the stored replay."""
    request_print = fingerprint(request.method, request.url.path, body.model_dump(mode="json"))
    result = run_once(session, now, caller.label, key, request_print, action, status_code)
    return idempotent_response(result)
