"""The console shell: login, logout, language, home, and the Settings pages."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours.core import audit, auth, webhooks
from parcours.core.deps import ClockDep, DbSession, SettingsDep
from parcours.core.errors import ParcoursError, TooManyRequests, Unauthenticated
from parcours.core.i18n import SUPPORTED_LOCALES, gettext
from parcours.web.console import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Console,
    ConsoleContext,
    Counter,
    VerifiedConsole,
    check_csrf,
    optional_console,
    render,
    require_role,
)

router = APIRouter(prefix="/console", include_in_schema=False)
Anyone = Annotated[ConsoleContext, Depends(optional_console)]


def _safe_next(url: str | None) -> str:
    # Only local paths: an attacker must not turn the login form into an open redirect.
    if not url or not url.startswith("/") or url.startswith("//") or urlparse(url).netloc:
        return "/console/"
    return url


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request,
    context: Anyone,
    settings: SettingsDep,
    next: str | None = None,
    expired: bool = False,
    lang: str | None = None,
) -> Response:
    if context.user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    # Before login, CSRF is a double-submit token: a cookie and the same value in the form.
    csrf = context.csrf_token or secrets.token_urlsafe(32)
    locale = lang if lang in SUPPORTED_LOCALES else context.locale
    context = replace(context, csrf_token=csrf, locale=locale)
    response = render(request, context, "login.html", next=_safe_next(next), expired=expired)
    _set_cookie(response, settings.secure_cookies, LOGIN_CSRF_COOKIE, csrf, 3600)
    if lang in SUPPORTED_LOCALES:
        _set_cookie(response, settings.secure_cookies, LANG_COOKIE, lang, 365 * 86400)
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    context: Anyone,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/console/",
) -> Response:
    await check_csrf(request, context)
    window = timedelta(seconds=settings.login_window_s)
    try:
        user = auth.authenticate(
            session, clock.now(), username, password, settings.login_max_failures, window
        )
    except TooManyRequests as exc:
        response = render(
            request, context, "login.html", status_code=429, next=_safe_next(next), error=exc
        )
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    if user is None:
        error = Unauthenticated(auth.WRONG_CREDENTIALS)
        return render(
            request, context, "login.html", status_code=401, next=_safe_next(next), error=error
        )
    opened = auth.open_session(
        session, clock.now(), user, timedelta(seconds=settings.session_max_age_s)
    )
    redirect = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(
        redirect, settings.secure_cookies, SESSION_COOKIE, opened.token, settings.session_max_age_s
    )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return redirect


@router.post("/logout")
def logout(
    request: Request, context: VerifiedConsole, session: DbSession, clock: ClockDep
) -> Response:
    auth.close_session(session, clock.now(), request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@router.post("/lang")
def switch_language(
    context: VerifiedConsole,
    session: DbSession,
    settings: SettingsDep,
    lang: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/console/",
) -> Response:
    if lang not in SUPPORTED_LOCALES:
        raise ParcoursError(f"unsupported language {lang!r}")
    assert context.user is not None
    auth.set_user_locale(session, context.user.id, lang)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_cookie(response, settings.secure_cookies, LANG_COOKIE, lang, 365 * 86400)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, context: Console, session: DbSession) -> Response:
    counters = _counts(request, session)
    labels = [gettext(context.locale, counter.label) for counter, _ in counters]
    return render(
        request, context, "home.html", counters=counters, chart=_counts_chart(labels, counters)
    )


def _counts_chart(labels: list[str], counters: list[tuple[Counter, int]]) -> dict[str, object]:
    """An ECharts bar chart of the counts, on a log scale (customers dwarf stores)."""
    return {
        "tooltip": {},
        "grid": {"containLabel": True, "left": 10, "right": 20, "top": 10, "bottom": 10},
        "xAxis": {"type": "log", "logBase": 10, "min": 1},
        "yAxis": {"type": "category", "data": labels},
        "series": [
            {
                "type": "bar",
                # A log axis cannot show 0: an empty kind draws as a bar of length zero at 1.
                "data": [max(value, 1) for _, value in counters],
                "itemStyle": {"color": "#2b5f8a"},
            }
        ],
    }


@router.get("/counts", response_class=HTMLResponse)
def counts(request: Request, context: Console, session: DbSession) -> Response:
    """The count cards alone, refreshed by HTMX every few seconds."""
    return render(request, context, "_counts.html", counters=_counts(request, session))


def _counts(request: Request, session: DbSession) -> list[tuple[Counter, int]]:
    return [(counter, counter.count(session)) for counter in request.app.state.home_counters]


@router.get("/settings/keys", response_class=HTMLResponse)
def keys_page(request: Request, context: Console, session: DbSession) -> Response:
    require_role(context, "admin")
    return render(
        request, context, "settings/keys.html", keys=auth.list_api_keys(session), scopes=auth.SCOPES
    )


@router.post("/settings/keys", response_class=HTMLResponse)
async def create_key(
    request: Request, context: VerifiedConsole, session: DbSession, clock: ClockDep
) -> Response:
    actor = require_role(context, "admin")
    form = await request.form()
    issued = auth.create_api_key(
        session,
        clock.now(),
        actor,
        str(form.get("name", "")),
        str(form.get("kind", "")),
        [str(s) for s in form.getlist("scopes")],
    )
    return render(
        request,
        context,
        "settings/keys.html",
        status_code=201,
        keys=auth.list_api_keys(session),
        scopes=auth.SCOPES,
        issued=issued,
    )


@router.post("/settings/keys/{prefix}/revoke")
def revoke_key(
    prefix: str, context: VerifiedConsole, session: DbSession, clock: ClockDep
) -> Response:
    actor = require_role(context, "admin")
    auth.revoke_api_key(session, clock.now(), actor, prefix)
    return RedirectResponse("/console/settings/keys", status_code=303)


def _webhooks_page(
    request: Request,
    context: ConsoleContext,
    session: DbSession,
    *,
    shown: str | None = None,
    created: webhooks.CreatedEndpoint | None = None,
    error: ParcoursError | None = None,
) -> Response:
    endpoints = webhooks.list_endpoints(session)
    chosen = next((e for e in endpoints if str(e.id) == shown), None)
    if chosen is None and created is not None:
        chosen = created.endpoint
    deliveries = webhooks.list_deliveries(session, chosen.id) if chosen else []
    status = error.status if error else 201 if created else 200
    return render(
        request, context, "settings/webhooks.html", status_code=status, endpoints=endpoints,
        chosen=chosen, deliveries=deliveries, created=created, error=error,
    )  # fmt: skip


@router.get("/settings/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request, context: Console, session: DbSession, endpoint: str | None = None
) -> Response:
    """Endpoints receiving signed events, and the delivery log of one of them."""
    require_role(context, "admin")
    return _webhooks_page(request, context, session, shown=endpoint)


@router.post("/settings/webhooks", response_class=HTMLResponse)
async def create_webhook(
    request: Request, context: VerifiedConsole, session: DbSession, clock: ClockDep
) -> Response:
    actor = require_role(context, "admin")
    form = await request.form()
    types = [t.strip() for t in str(form.get("event_types", "")).split(",") if t.strip()]
    try:
        with session.begin_nested():
            created = webhooks.create_endpoint(
                session, clock.now(), str(form.get("url", "")), types,
                str(form.get("description", "")),
            )  # fmt: skip
    except ParcoursError as exc:
        return _webhooks_page(request, context, session, error=exc)
    audit.record(
        session, clock.now(), actor, "webhook.created", "webhook_endpoint", str(created.endpoint.id)
    )
    return _webhooks_page(request, context, session, created=created)


@router.post("/settings/webhooks/{endpoint_id}/disable")
def disable_webhook(
    endpoint_id: uuid.UUID, context: VerifiedConsole, session: DbSession, clock: ClockDep
) -> Response:
    actor = require_role(context, "admin")
    webhooks.disable_endpoint(session, endpoint_id)
    audit.record(
        session, clock.now(), actor, "webhook.disabled", "webhook_endpoint", str(endpoint_id)
    )
    return RedirectResponse(f"/console/settings/webhooks?endpoint={endpoint_id}", status_code=303)


@router.post("/settings/webhooks/deliveries/{delivery_id}/redeliver")
def redeliver_webhook(
    delivery_id: uuid.UUID, context: VerifiedConsole, session: DbSession, clock: ClockDep
) -> Response:
    require_role(context, "admin")
    delivery = webhooks.redeliver(session, clock.now(), delivery_id)
    return RedirectResponse(
        f"/console/settings/webhooks?endpoint={delivery.endpoint_id}", status_code=303
    )


@router.get("/settings/users", response_class=HTMLResponse)
def users_page(request: Request, context: Console, session: DbSession) -> Response:
    require_role(context, "admin")
    return render(
        request, context, "settings/users.html", users=auth.list_users(session), roles=auth.ROLES
    )


@router.post("/settings/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    context: VerifiedConsole,
    session: DbSession,
    clock: ClockDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
    display_name: Annotated[str, Form()] = "",
    store_ids: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, "admin")
    stores = [s.strip() for s in store_ids.split(",") if s.strip()]
    auth.create_user(
        session, clock.now(), actor, username, password, role, display_name or None, stores
    )
    return RedirectResponse("/console/settings/users", status_code=303)


@router.get("/settings/audit", response_class=HTMLResponse)
def audit_page(request: Request, context: Console, session: DbSession) -> Response:
    require_role(context, "admin")
    return render(
        request, context, "settings/audit.html", entries=audit.recent_entries(session, 200)
    )


def _set_cookie(response: Response, secure: bool, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/console", httponly=True, samesite="lax", secure=secure
    )
