"""HTTP plumbing shared by every router: problem+json errors, request ids, body limits.

This is the one place where exceptions become responses (RFC 9457).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parcours.core.errors import (
    FieldError,
    InvalidInput,
    MalformedRequest,
    ParcoursError,
    PayloadTooLarge,
    problem_body,
)
from parcours.core.ids import new_id
from parcours.core.logs import request_id_var

PROBLEM_JSON = "application/problem+json"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
log = logging.getLogger("parcours.http")
access_log = logging.getLogger("parcours.access")

_STATUS_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


def problem_response(error: ParcoursError, request: Request | None = None) -> JSONResponse:
    """Render any `ParcoursError` as problem+json, with Retry-After/WWW-Authenticate."""
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return _problem_json(error.problem(_instance(request)), headers)


def _instance(request: Request | None) -> str | None:
    return str(request.url.path) if request else None


def _problem_json(body: dict[str, Any], headers: dict[str, str]) -> JSONResponse:
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    if body["status"] == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="parcours", Basic realm="parcours"'
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def _field_errors(exc: RequestValidationError) -> tuple[list[FieldError], bool]:
    """Translate FastAPI's errors; the flag is True when the body was not valid JSON."""
    fields: list[FieldError] = []
    malformed = False
    for item in exc.errors():
        loc = tuple(item.get("loc", ()))
        if item.get("type") == "json_invalid":
            malformed = True
        message = str(item.get("msg", "invalid value"))
        if loc and loc[0] == "body":
            path = "".join(f"/{str(p).replace('~', '~0').replace('/', '~1')}" for p in loc[1:])
            fields.append(FieldError(message, pointer="#" + path))
        else:
            name = str(loc[-1]) if loc else "?"
            where = str(loc[0]) if loc else "request"
            fields.append(FieldError(f"{where} parameter: {message}", parameter=name))
    return fields, malformed


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields, malformed = _field_errors(exc)
    if malformed:
        error: ParcoursError = MalformedRequest(
            "The request body is not valid JSON: " + fields[0].detail
        )
    else:
        count = len(fields)
        error = InvalidInput(f"{count} field{'s' if count != 1 else ''} failed validation", fields)
    return problem_response(error, request)


async def _on_parcours_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ParcoursError)
    # The app may render errors of browser pages as HTML (the console); it returns None
    # for everything else, which gets problem+json.
    error_page = getattr(request.app.state, "error_page", None)
    page = error_page(request, exc) if error_page else None
    return page if page is not None else problem_response(exc, request)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = _STATUS_TITLES.get(exc.status_code, "Error")
    slug = title.lower().replace(" ", "-")
    body = problem_body(exc.status_code, slug, title, str(exc.detail), _instance(request))
    return _problem_json(body, dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, _route_template(request.scope))
    return problem_response(
        ParcoursError("An unexpected error occurred; quote the request id when reporting it."),
        request,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to problem+json; called once by the app factory."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ParcoursError, _on_parcours_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)


def _route_template(scope: Scope) -> str:
    # The route's template (`/v1/customers/{customer_id}`) carries no personal data,
    # unlike the raw path or query string.
    route = scope.get("route")
    return str(getattr(route, "path", None) or "<unmatched>")


class _BodyTooLarge(StarletteHTTPException):
    """Raised while streaming a body past the limit. An HTTPException, because FastAPI
    turns any other error raised during body parsing into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large_detail(limit))


def _too_large_detail(limit: int) -> str:
    return f"The request body exceeds the limit of {limit} bytes; split it into smaller requests."


class RequestContextMiddleware:
    """Pure ASGI middleware: request id, body size limit and one access-log line.

    Written against raw ASGI rather than `BaseHTTPMiddleware`, which costs a task and
    a stream copy per request on the hot tracking path.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = [500]
        try:
            if self._declared_length(scope) > self.max_body_bytes:
                await self._reject_too_large(scope, receive, send, status_holder)
                return
            await self.app(
                scope,
                self._limited(receive),
                self._with_request_id(send, request_id, status_holder),
            )
        except _BodyTooLarge:
            await self._reject_too_large(scope, receive, send, status_holder)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": _route_template(scope),
                        "status": status_holder[0],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            request_id_var.reset(token)

    @staticmethod
    def _request_id(scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate: str = value.decode("latin-1")
                if _REQUEST_ID_OK.match(candidate):
                    return candidate
        return new_id().hex

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def wrapped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge(self.max_body_bytes)
            return message

        return wrapped

    @staticmethod
    def _with_request_id(send: Send, request_id: str, status_holder: list[int]) -> Send:
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        return wrapped

    async def _reject_too_large(
        self, scope: Scope, receive: Receive, send: Send, status_holder: list[int]
    ) -> None:
        error = PayloadTooLarge(_too_large_detail(self.max_body_bytes))
        response = problem_response(error)
        response.headers["x-request-id"] = request_id_var.get() or ""
        status_holder[0] = error.status
        await response(scope, receive, send)
