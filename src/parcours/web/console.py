"""Console plumbing every context's pages use: templates, login, CSRF, language.

Pages are server-rendered Jinja2 with HTMX; the current user comes from a session
cookie, and every state-changing request must carry the session's CSRF token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from parcours.core.audit import Actor
from parcours.core.auth import resolve_session, user_actor
from parcours.core.deps import ClockDep, DbSession, SettingsDep
from parcours.core.errors import SaidForbidden, Term
from parcours.core.i18n import (
    LANGUAGE_NAMES,
    format_local_datetime,
    format_number,
    negotiate_locale,
    translations,
)
from parcours.core.models import User

SESSION_COOKIE = "parcours_session"
LANG_COOKIE = "parcours_lang"
LOGIN_CSRF_COOKIE = "parcours_login_csrf"
BAD_CSRF = (
    "The form's security token is missing or does not match your session; "
    "reload the page and try again."
)
ROLE_REFUSED = "Your role does not give access to this page."
# The shell's refusals, said on the error page with `said(...)` in the reader's language.
REFUSALS = (BAD_CSRF, ROLE_REFUSED)

# Scripts only from our own static files; the inline style allowance is for ECharts and
# HTMX, which set styles on elements they draw.
CONSOLE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_locale: ContextVar[str] = ContextVar("parcours_console_locale", default="en")


def _gettext(message: str, **variables: Any) -> str:
    text = translations(_locale.get()).gettext(message)
    return text % variables if variables else text


def _ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(_locale.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


def said(error: Any) -> str:
    """An error's text in the reader's language: its `message % values` translated when
    it carries them (`core.errors.refusal`, `Refused`), else its English `detail`. Values
    given as `Term`s are translated word by word."""
    message = getattr(error, "message", "")
    if not message:
        return str(getattr(error, "detail", error))
    values = {
        name: ", ".join(_gettext(word) for word in value.words)
        if isinstance(value, Term)
        else value
        for name, value in getattr(error, "values", {}).items()
    }
    return _gettext(message, **values)


def _template_dirs() -> list[Path]:
    """The shell's templates plus each context's `templates/` folder."""
    root = Path(str(resources.files("parcours")))
    return [
        root / "web" / "templates",
        *sorted(p for p in root.glob("*/templates") if p.parent.name != "web"),
    ]


def make_environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in _template_dirs()]),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["said"] = said
    return env


ENVIRONMENT = make_environment()


@dataclass(frozen=True)
class ConsoleContext:
    """Who is looking at the console, in which language and time zone."""

    user: User | None
    actor: Actor | None
    csrf_token: str
    locale: str
    timezone: str
    now: datetime

    def local(self, value: datetime | None) -> str:
        return format_local_datetime(value, self.timezone, self.locale) if value else ""


class LoginRequired(Exception):
    """No live session: the browser is sent to the login page (with the reason)."""

    def __init__(self, next_url: str, expired: bool) -> None:
        self.next_url = next_url
        self.expired = expired


def request_locale(request: Request, user: User | None, default: str) -> str:
    return negotiate_locale(
        request.cookies.get(LANG_COOKIE),
        user.locale if user else None,
        accept_language=request.headers.get("accept-language"),
        default=default,
    )


def optional_console(
    request: Request, session: DbSession, clock: ClockDep, settings: SettingsDep
) -> ConsoleContext:
    """The console context, logged in or not (login page, language switch)."""
    now = clock.now()
    token = request.cookies.get(SESSION_COOKIE)
    found = resolve_session(session, now, token) if token else None
    user, csrf = found if found else (None, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    locale = request_locale(request, user, settings.default_locale)
    return ConsoleContext(
        user=user,
        actor=user_actor(user) if user else None,
        csrf_token=csrf,
        locale=locale,
        timezone=settings.timezone,
        now=now,
    )


def console(
    request: Request, context: Annotated[ConsoleContext, Depends(optional_console)]
) -> ConsoleContext:
    """A logged-in console context; unsafe methods must carry the CSRF token."""
    if context.user is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path, expired=SESSION_COOKIE in request.cookies)
    return context


async def check_csrf(request: Request, context: ConsoleContext) -> None:
    """Compare the form field or `X-CSRF-Token` header with the session's token."""
    presented = request.headers.get("x-csrf-token")
    if presented is None:
        form = await request.form()
        presented = str(form.get("csrf_token", ""))
    if not context.csrf_token or not hmac.compare_digest(presented, context.csrf_token):
        raise SaidForbidden(BAD_CSRF)


async def verified_console(
    request: Request, context: Annotated[ConsoleContext, Depends(console)]
) -> ConsoleContext:
    """For POST handlers: logged in and CSRF-checked."""
    await check_csrf(request, context)
    return context


Console = Annotated[ConsoleContext, Depends(console)]
VerifiedConsole = Annotated[ConsoleContext, Depends(verified_console)]


def require_role(context: ConsoleContext, *roles: str) -> Actor:
    """The acting user, if their role is one of `roles`; else `SaidForbidden`."""
    assert context.user is not None
    assert context.actor is not None
    if context.user.role not in roles:
        raise SaidForbidden(ROLE_REFUSED)
    return context.actor


def render(
    request: Request, context: ConsoleContext, template: str, status_code: int = 200, **values: Any
) -> HTMLResponse:
    """Render a console template in the viewer's language."""
    token = _locale.set(context.locale)
    try:
        html = ENVIRONMENT.get_template(template).render(
            request=request,
            console=context,
            languages=LANGUAGE_NAMES,
            number=lambda n: format_number(n, context.locale),
            nav=NAVIGATION,
            **values,
        )
    finally:
        _locale.reset(token)
    return HTMLResponse(html, status_code=status_code, headers=CONSOLE_HEADERS)


def login_redirect_url(next_url: str, expired: bool) -> str:
    url = "/console/login?next=" + quote(next_url, safe="")
    return url + ("&expired=1" if expired else "")


@dataclass(frozen=True)
class Counter:
    """A live count on the console home page; contexts provide theirs via the registry."""

    label: str  # English msgid, translated by the page
    section: str
    count: Callable[[Session], int]
    url: str | None = None


@dataclass(frozen=True)
class NavItem:
    label: str  # English msgid
    url: str
    roles: tuple[str, ...] = ("admin", "marketer", "staff")


# Sections in the order of the mission: what sells, who buys, how we reach them,
# what we learn, and how the platform is run. Contexts add their pages here.
NAVIGATION: dict[str, list[NavItem]] = {
    "Commerce": [
        NavItem("Catalogue", "/console/commerce/catalog"),
        NavItem("One voice", "/console/commerce/one-voice"),
        NavItem("Stores", "/console/commerce/stores"),
        NavItem("Stock", "/console/commerce/stock"),
        NavItem("Orders", "/console/commerce/orders"),
        NavItem("Pickup counter", "/console/commerce/pickups", ("admin", "staff")),
        NavItem("Returns desk", "/console/commerce/returns", ("admin", "staff")),
    ],
    "Customers": [
        NavItem("Customers", "/console/customers", ("admin", "marketer")),
        NavItem("Matching", "/console/matching", ("admin", "marketer")),
        NavItem("Clienteling", "/console/clienteling", ("admin", "marketer", "staff")),
    ],
    "Activation": [
        NavItem("Segments", "/console/activation/segments", ("admin", "marketer")),
        NavItem("Campaigns", "/console/activation/campaigns", ("admin", "marketer")),
        NavItem("Journeys", "/console/activation/journeys", ("admin", "marketer")),
        NavItem("Message templates", "/console/activation/templates", ("admin", "marketer")),
        NavItem("Deliveries", "/console/activation/deliveries", ("admin", "marketer")),
        NavItem("Offers and codes", "/console/activation/offers", ("admin", "marketer")),
        NavItem("Loyalty", "/console/activation/loyalty", ("admin", "marketer", "staff")),
    ],
    "Insight": [
        NavItem("Sales and channels", "/console/insight", ("admin", "marketer")),
        NavItem("Journey funnel", "/console/insight/funnel", ("admin", "marketer")),
        NavItem("Paths to purchase", "/console/insight/paths", ("admin", "marketer")),
        NavItem("Attribution", "/console/insight/attribution", ("admin", "marketer")),
        NavItem("Customer value", "/console/insight/value", ("admin", "marketer")),
        NavItem("Report emails", "/console/insight/reports", ("admin", "marketer")),
    ],
    "Settings": [
        NavItem("API keys", "/console/settings/keys", ("admin",)),
        NavItem("Users", "/console/settings/users", ("admin",)),
        NavItem("Webhooks", "/console/settings/webhooks", ("admin",)),
        NavItem("Audit log", "/console/settings/audit", ("admin",)),
    ],
}
