"""The customer's own order page: followed from a signed link in their emails, no account
or password needed (the link is the key, like the unsubscribe link).

The page shows where the order is (each fulfilment, the store and its hold, the parcel's
tracking), lets the customer cancel while nothing has left, and explains how to return
goods: in any store offering returns, or by post to the warehouse, with the order number
(the store's returns desk finds the order by it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core import signing
from parcours.core.deps import ClockDep, DbSession, SettingsDep
from parcours.core.errors import ParcoursError, Refused
from parcours.core.i18n import SUPPORTED_LOCALES, negotiate_locale
from parcours.core.money import Money
from parcours.orders import lifecycle, return_requests, service
from parcours.orders.models import HANDED_OVER, RETURN_REASONS, Order
from parcours.web.console import ConsoleContext, render

router = APIRouter(prefix="/my/orders", include_in_schema=False)
CANCELLABLE = ("placed", "paid", "allocated")
CHOOSE_WHERE = "Choose where you will bring or send the items."
# What the page says in the customer's language with `said(...)` (the services' refusals
# are in `parcours.orders.pages.SERVICE_MESSAGES`).
MESSAGES = (CHOOSE_WHERE,)


def _order_of(session: Session, now: datetime, token: str) -> Order:
    payload = signing.verify(session, now, service.SELF_SERVICE, token)
    return service.get_order(session, uuid.UUID(str(payload["o"])))


def _context(
    request: Request, now: datetime, timezone: str, order: Order | None, lang: str | None
) -> ConsoleContext:
    locale = negotiate_locale(
        lang,
        order.locale if order else None,
        accept_language=request.headers.get("accept-language"),
        default="fr",
    )
    return ConsoleContext(None, None, "", locale, timezone, now)


def _page(
    request: Request,
    session: Session,
    context: ConsoleContext,
    token: str,
    order: Order | None,
    error: ParcoursError | None = None,
) -> Response:
    values: dict[str, Any] = {}
    if order is not None:
        fulfilments = service.fulfilments_of(session, order.id)
        ids = {f.pickup_store_id or f.location_id for f in fulfilments}
        values = {
            "lines": service.lines_of(session, order.id),
            "fulfilments": fulfilments,
            "returns": service.returns_of(session, order.id),
            "places": stores.locations(session, ids),
            "can_cancel": order.status in CANCELLABLE,
            "can_return": any(f.status in HANDED_OVER for f in fulfilments),
            "announced": return_requests.open_request(session, order.id),
            "reasons": RETURN_REASONS,
            "drop_offs": _drop_offs(session),
        }
        if values["announced"] is not None:
            values["places"] = {
                **values["places"],
                **stores.locations(session, [values["announced"].location_id]),
            }
    return render(
        request,
        context,
        "orders/my_order.html",
        status_code=error.status if error else 200,
        token=token,
        order=order,
        error=error,
        langs={code: f"{request.url.path}?lang={code}" for code in SUPPORTED_LOCALES},
        money=lambda cents, currency: Money(cents, currency).format(context.locale),
        **values,
    )


def _drop_offs(session: Session) -> list[tuple[str, Any]]:
    """Where goods can be returned: ("store", store) for each store taking returns, and
    ("post", warehouse) for the warehouse receiving parcels."""
    places: list[tuple[str, Any]] = []
    for place in stores.all_locations(session):
        if not place.active:
            continue
        if place.kind == "store" and "returns" in (place.services or []):
            places.append(("store", place))
        elif place.kind == "warehouse" and not any(k == "post" for k, _ in places):
            places.append(("post", place))
    return sorted(places, key=lambda item: (item[0] == "store", item[1].city))


@router.get("/{token}", response_class=HTMLResponse)
def my_order(
    request: Request,
    token: str,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    lang: str | None = None,
) -> Response:
    now = clock.now()
    try:
        order = _order_of(session, now, token)
    except ParcoursError as exc:
        context = _context(request, now, settings.timezone, None, lang)
        return _page(request, session, context, token, None, exc)
    context = _context(request, now, settings.timezone, order, lang)
    return _page(request, session, context, token, order)


@router.post("/{token}/cancel", response_class=HTMLResponse)
def cancel(
    request: Request,
    token: str,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    """The customer cancels their order while nothing has left (the signed link is the
    authority: only the person holding it can post here)."""
    now = clock.now()
    try:
        order = _order_of(session, now, token)
    except ParcoursError as exc:
        context = _context(request, now, settings.timezone, None, None)
        return _page(request, session, context, token, None, exc)
    context = _context(request, now, settings.timezone, order, None)
    try:
        with session.begin_nested():
            lifecycle.cancel_order(session, now, order.id, "customer", "cancelled by the customer")
    except ParcoursError as exc:
        return _page(request, session, context, token, order, exc)
    return RedirectResponse(f"/my/orders/{token}", status_code=303)


@router.post("/{token}/return", response_class=HTMLResponse)
async def start_return(
    request: Request,
    token: str,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    """The customer says which items come back, why, and where: a return request."""
    now = clock.now()
    try:
        order = _order_of(session, now, token)
    except ParcoursError as exc:
        context = _context(request, now, settings.timezone, None, None)
        return _page(request, session, context, token, None, exc)
    context = _context(request, now, settings.timezone, order, None)
    form = await request.form()
    channel, _, place = str(form.get("where", "")).partition(":")
    lines = []
    for line in service.lines_of(session, order.id):
        quantity = str(form.get(f"quantity_{line.line_no}", "0")).strip()
        if quantity.isdigit() and int(quantity) > 0:
            reason = str(form.get(f"reason_{line.line_no}", "other"))
            lines.append(return_requests.RequestedLine(line.line_no, int(quantity), reason))
    try:
        location_id = uuid.UUID(place)
        with session.begin_nested():
            return_requests.request_return(session, now, order, lines, channel, location_id)
    except ValueError:
        error = Refused(CHOOSE_WHERE)
        return _page(request, session, context, token, order, error)
    except ParcoursError as exc:
        return _page(request, session, context, token, order, exc)
    return RedirectResponse(f"/my/orders/{token}", status_code=303)
