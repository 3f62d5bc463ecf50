"""Pages of consent and privacy.

Public (no login, French or English): the double opt-in confirmation page and the
unsubscribe page, whose POST is also the RFC 8058 one-click endpoint mail clients call.

Console: a consent panel for a customer page (an HTMX fragment, embeddable with
`<div hx-get="/console/customers/{id}/consents" hx-trigger="load"></div>`), a privacy
page around it, and the administrator's export and erasure actions.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from parcours.core.deps import ClockDep, DbSession, SettingsDep
from parcours.core.errors import FieldError, InvalidInput, ParcoursError
from parcours.core.i18n import SUPPORTED_LOCALES, negotiate_locale
from parcours.customers import consent, privacy
from parcours.customers.privacy_api import Handlers
from parcours.web.console import (
    Console,
    ConsoleContext,
    VerifiedConsole,
    render,
    require_role,
)

router = APIRouter(include_in_schema=False)

ONE_CLICK_VALUE = "One-Click"


# ------------------------------------------------------------------ public pages


def _public_context(
    request: Request, clock: ClockDep, settings: SettingsDep, lang: str | None
) -> ConsoleContext:
    locale = negotiate_locale(
        lang, accept_language=request.headers.get("accept-language"), default="fr"
    )
    return ConsoleContext(None, None, "", locale, settings.timezone, clock.now())


def _lang_links(request: Request) -> dict[str, str]:
    return {code: f"{request.url.path}?lang={code}" for code in SUPPORTED_LOCALES}


def _click_evidence(request: Request) -> dict[str, str]:
    """What proves who clicked: the address and the browser, as the server saw them."""
    return {
        "ip": request.client.host if request.client else "",
        "user_agent": request.headers.get("user-agent", "")[:500],
    }


def _public_page(
    request: Request,
    context: ConsoleContext,
    template: str,
    error: ParcoursError | None,
    **values: Any,
) -> HTMLResponse:
    response = render(
        request,
        context,
        template,
        status_code=error.status if error else 200,
        error=error,
        lang_links=_lang_links(request),
        **values,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the address
    return response


@router.get("/consent/confirm/{token}", response_class=HTMLResponse)
def confirmation_page(
    request: Request,
    token: str,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    lang: str | None = None,
) -> Response:
    """The link of a double opt-in email: a button confirms (a GET never does, as mail
    scanners open links)."""
    context = _public_context(request, clock, settings, lang)
    pending, error = None, None
    try:
        pending = consent.pending_confirmation(session, context.now, token)
    except ParcoursError as exc:
        error = exc
    return _public_page(
        request, context, "customers/consent_confirm.html", error, pending=pending, done=None
    )


@router.post("/consent/confirm/{token}", response_class=HTMLResponse)
def confirm(
    request: Request,
    token: str,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    lang: str | None = None,
) -> Response:
    context = _public_context(request, clock, settings, lang)
    done, error = None, None
    try:
        with session.begin_nested():
            done = consent.confirm(session, context.now, token, _click_evidence(request))
    except ParcoursError as exc:
        error = exc
    return _public_page(
        request, context, "customers/consent_confirm.html", error, pending=None, done=done
    )


@router.get("/consent/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_page(
    request: Request,
    token: str,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    lang: str | None = None,
) -> Response:
    """The unsubscribe link of a message: a page with a button (a GET changes nothing)."""
    context = _public_context(request, clock, settings, lang)
    target, error = None, None
    try:
        target = consent.read_unsubscribe_token(session, context.now, token)
    except ParcoursError as exc:
        error = exc
    return _public_page(
        request, context, "customers/consent_unsubscribe.html", error, target=target, done=None
    )


@router.post("/consent/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe(
    request: Request,
    token: str,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    one_click: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
    lang: str | None = None,
) -> Response:
    """The page's button, and RFC 8058 one-click: a POST of `List-Unsubscribe=One-Click`
    from the mail client, without cookies, answered 200 without a redirect."""
    context = _public_context(request, clock, settings, lang)
    is_one_click = one_click == ONE_CLICK_VALUE
    source = "one_click_unsubscribe" if is_one_click else "unsubscribe_page"
    done, error = None, None
    try:
        with session.begin_nested():
            done = consent.unsubscribe(
                session, context.now, token, _click_evidence(request), source
            )
    except ParcoursError as exc:
        error = exc
    if is_one_click:
        status = error.status if error else 200
        return PlainTextResponse(error.detail if error else "Unsubscribed.", status_code=status)
    return _public_page(
        request, context, "customers/consent_unsubscribe.html", error, target=None, done=done
    )


# ------------------------------------------------------------------ console


def _panel_values(
    session: Session, context: ConsoleContext, customer_id: uuid.UUID
) -> dict[str, Any]:
    actor = require_role(context, "admin", "marketer")
    assert context.user is not None
    return {
        "state": consent.consent_state(session, context.now, actor, customer_id),
        "purposes": consent.PURPOSES,
        "channels": consent.CHANNELS,
        "is_admin": context.user.role == "admin",
    }


@router.get("/console/customers/{customer_id}/consents", response_class=HTMLResponse)
def consent_panel(
    request: Request, customer_id: uuid.UUID, context: Console, session: DbSession
) -> Response:
    """The consent panel fragment (embed it in a customer page with HTMX)."""
    values = _panel_values(session, context, customer_id)
    return render(request, context, "customers/consent_panel.html", **values)


@router.post("/console/customers/{customer_id}/consents", response_class=HTMLResponse)
def record_consent(
    request: Request,
    customer_id: uuid.UUID,
    context: VerifiedConsole,
    session: DbSession,
    settings: SettingsDep,
    purpose: Annotated[str, Form(max_length=32)],
    channel: Annotated[str, Form(max_length=16)],
    granted: Annotated[str, Form(max_length=3)],
    proof: Annotated[str, Form(max_length=500)] = "",
    wording_version: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """A decision the person told a colleague (phone, counter): recorded with who did."""
    actor = require_role(context, "admin", "marketer")
    decision = consent.ConsentInput(
        purpose=purpose,
        channel=channel,
        granted=granted == "yes",
        source="console",
        wording_version=wording_version.strip() or None,
        proof=proof.strip() or None,
        evidence={"recorded_by": actor.label},
    )
    message, error = None, None
    try:
        with session.begin_nested():
            outcome = consent.record_consents(
                session,
                context.now,
                actor,
                customer_id,
                [decision],
                consent.DoubleOptIn.from_settings(settings),
            )
        message = "pending" if outcome.pending else "recorded"
    except ParcoursError as exc:
        error = exc
    if not request.headers.get("hx-request") and error is None:
        return RedirectResponse(f"/console/customers/{customer_id}/privacy", status_code=303)
    values = _panel_values(session, context, customer_id)
    return render(
        request,
        context,
        "customers/consent_panel.html",
        status_code=error.status if error else 200,
        message=message,
        error=error,
        **values,
    )


@router.get("/console/customers/{customer_id}/privacy", response_class=HTMLResponse)
def privacy_page(
    request: Request,
    customer_id: uuid.UUID,
    context: Console,
    session: DbSession,
    erased: Annotated[int, Query()] = 0,
) -> Response:
    """Consents, export and erasure of one customer, on one page."""
    values = _panel_values(session, context, customer_id)
    return render(
        request,
        context,
        "customers/privacy_page.html",
        customer_id=customer_id,
        just_erased=bool(erased),
        **values,
    )


@router.post("/console/customers/{customer_id}/export")
def export_customer(
    customer_id: uuid.UUID,
    context: VerifiedConsole,
    session: DbSession,
    handlers: Handlers,
) -> Response:
    """Download the subject access export (administrators; audited)."""
    actor = require_role(context, "admin")
    export = privacy.export_person(session, context.now, actor, customer_id, handlers)
    return Response(
        privacy.export_zip(export),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{customer_id}.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/console/customers/{customer_id}/erase")
def erase_customer(
    customer_id: uuid.UUID,
    context: VerifiedConsole,
    session: DbSession,
    handlers: Handlers,
    confirm: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Erase the customer everywhere (administrators; the box must be ticked)."""
    actor = require_role(context, "admin")
    if confirm != "yes":
        raise InvalidInput(
            "Tick the box to confirm the erasure: it cannot be undone.",
            [FieldError("must be ticked", parameter="confirm")],
        )
    privacy.erase_person(
        session,
        context.now,
        actor,
        customer_id,
        handlers,
        reason.strip() or "request of the person",
    )
    return RedirectResponse(f"/console/customers/{customer_id}/privacy?erased=1", status_code=303)
