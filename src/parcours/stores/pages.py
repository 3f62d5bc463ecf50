"""Pages of the store network: the public store locator and the console's store pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_time
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours.core.deps import ClockDep, DbSession, SettingsDep
from parcours.core.errors import InvalidInput, ParcoursError
from parcours.core.i18n import SUPPORTED_LOCALES, format_number, negotiate_locale
from parcours.stores import locator, places, service
from parcours.stores.hours import DAY_NAMES, WEEKDAYS, hours_text, parse_hours_text
from parcours.stores.hours import MESSAGES as HOURS_MESSAGES
from parcours.stores.models import Store
from parcours.web.console import Console, ConsoleContext, VerifiedConsole, render, require_role

router = APIRouter(prefix="/console/commerce", include_in_schema=False)
public_router = APIRouter(include_in_schema=False)

# What the services refuse, shown by these pages with `said(...)` in the reader's language.
SERVICE_MESSAGES = (*service.MESSAGES, *HOURS_MESSAGES, *places.MESSAGES, *locator.MESSAGES)
# Weekday names, said on the store page and inside hours refusals.
CONSOLE_WORDS = tuple(DAY_NAMES.values())


# ------------------------------------------------------------------ public locator


@dataclass(frozen=True)
class LocatorRow:
    """One result of the public page, already formatted for the visitor's language."""

    store: locator.NearbyStore
    distance: str
    closes: str | None
    opens: str | None


def _local_label(value: datetime | None, timezone: str, locale: str, now: datetime) -> str | None:
    if value is None:
        return None
    zone = ZoneInfo(timezone)
    local = value.astimezone(zone)
    if local.date() == now.astimezone(zone).date():
        return str(format_time(local, "short", tzinfo=zone, locale=locale))
    return str(format_datetime(local, "EEEE d MMMM, HH:mm", tzinfo=zone, locale=locale))


@public_router.get("/stores", response_class=HTMLResponse)
def store_locator_page(
    request: Request,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=120)] = "",
    service_code: Annotated[str, Query(alias="service", max_length=32)] = "",
    sku: Annotated[str, Query(max_length=64)] = "",
    lang: str | None = None,
) -> Response:
    """The public store locator: no login, store information only."""
    now = clock.now()
    locale = negotiate_locale(
        lang, accept_language=request.headers.get("accept-language"), default="fr"
    )
    context = ConsoleContext(None, None, "", locale, settings.timezone, now)
    rows: list[LocatorRow] = []
    error: ParcoursError | None = None
    query = q.strip()
    if query:
        try:
            rows = _search(request, session, now, locale, query, service_code, sku.strip())
        except ParcoursError as exc:
            error = exc
    links = {
        code: "?" + urlencode({**request.query_params, "lang": code}) for code in SUPPORTED_LOCALES
    }
    return render(
        request,
        context,
        "stores/locator.html",
        status_code=error.status if error else 200,
        q=query,
        service_code=service_code,
        sku=sku.strip(),
        services=service.SERVICES,
        rows=rows,
        error=error,
        searched=bool(query),
        lang_links=links,
    )


def _search(
    request: Request,
    session: DbSession,
    now: datetime,
    locale: str,
    query: str,
    service_code: str,
    sku: str,
) -> list[LocatorRow]:
    digits = query.replace(" ", "")
    if digits.isdigit():
        centre = locator.resolve_place(postcode=digits)
    else:
        centre = locator.resolve_place(city=query)
    found = locator.nearest_stores(
        session,
        centre,
        now,
        limit=10,
        service=service_code or None,
        sku=sku or None,
        stock_lookup=request.app.state.stock_lookup,
    )
    return [
        LocatorRow(
            store=s,
            distance=format_number(round(s.distance_km, 1), locale),
            closes=_local_label(s.closes_at, s.timezone, locale, now),
            opens=_local_label(s.next_opening, s.timezone, locale, now),
        )
        for s in found
    ]


# ------------------------------------------------------------------ console


@router.get("/stores", response_class=HTMLResponse)
def stores_page(
    request: Request, context: Console, session: DbSession, cursor: str | None = None
) -> Response:
    return render(
        request, context, "stores/list.html", page=service.list_stores(session, cursor, 100)
    )


def _detail(
    request: Request,
    context: ConsoleContext,
    session: DbSession,
    store: Store,
    status_code: int = 200,
    error: InvalidInput | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    hours = {day: hours_text(store.opening_hours.get(day, [])) for day in WEEKDAYS}
    return render(
        request,
        context,
        "stores/detail.html",
        status_code=status_code,
        store=store,
        hours=hours | (form or {}).get("hours", {}),
        weekdays=WEEKDAYS,
        day_names=DAY_NAMES,
        services=service.SERVICES,
        exceptions=service.list_exceptions(session, store.id),
        can_edit=context.user is not None and context.user.role == "admin",
        error=error,
        hours_text=hours_text,
    )


@router.get("/stores/{code}", response_class=HTMLResponse)
def store_page(request: Request, context: Console, session: DbSession, code: str) -> Response:
    return _detail(request, context, session, service.get_store_by_code(session, code))


@router.post("/stores/{code}", response_class=HTMLResponse)
async def edit_store(
    request: Request, context: VerifiedConsole, session: DbSession, clock: ClockDep, code: str
) -> Response:
    actor = require_role(context, "admin")
    store = service.get_store_by_code(session, code)
    form = await request.form()
    hours_form = {day: str(form.get(f"hours_{day}", "")) for day in WEEKDAYS}
    changes: dict[str, Any] = {
        name: str(form.get(name, "")).strip() or None
        for name in ("name", "address", "phone", "email")
    }
    changes["name"] = changes["name"] or ""
    changes["address"] = changes["address"] or ""
    changes["services"] = [str(s) for s in form.getlist("services")]
    changes["opening_hours"] = {
        day: parse_hours_text(text) for day, text in hours_form.items() if text.strip()
    }
    try:
        with session.begin_nested():
            service.update_store(session, clock.now(), actor, store.id, changes)
    except InvalidInput as exc:
        session.refresh(store)
        return _detail(request, context, session, store, 422, exc, {"hours": hours_form})
    return RedirectResponse(f"/console/commerce/stores/{store.code}", status_code=303)


@router.post("/stores/{code}/exceptions", response_class=HTMLResponse)
def add_exception(
    request: Request,
    context: VerifiedConsole,
    session: DbSession,
    clock: ClockDep,
    code: str,
    day: Annotated[str, Form()] = "",
    hours: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, "admin")
    store = service.get_store_by_code(session, code)
    ranges = parse_hours_text(hours)
    try:
        parsed_day: date | str = date.fromisoformat(day)
    except ValueError:
        parsed_day = day
    row = {"day": parsed_day, "hours": ranges, "closed": not ranges, "label": label.strip()}
    try:
        with session.begin_nested():
            service.set_exception(session, clock.now(), actor, store.id, row)
    except InvalidInput as exc:
        return _detail(request, context, session, store, 422, exc)
    return RedirectResponse(f"/console/commerce/stores/{store.code}", status_code=303)


@router.post("/stores/{code}/exceptions/{day}/delete")
def delete_exception(
    context: VerifiedConsole, session: DbSession, clock: ClockDep, code: str, day: date
) -> Response:
    actor = require_role(context, "admin")
    store = service.get_store_by_code(session, code)
    service.remove_exception(session, clock.now(), actor, store.id, day)
    return RedirectResponse(f"/console/commerce/stores/{store.code}", status_code=303)


@router.post("/stores/{code}/deactivate")
def deactivate(
    context: VerifiedConsole, session: DbSession, clock: ClockDep, code: str
) -> Response:
    actor = require_role(context, "admin")
    store = service.get_store_by_code(session, code)
    service.deactivate_store(session, clock.now(), actor, store.id)
    return RedirectResponse(f"/console/commerce/stores/{store.code}", status_code=303)
