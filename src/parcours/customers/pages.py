"""Console pages of customer profiles (views are audited).

Head office (admins, marketers) search every customer and open the whole profile; store
staff use the clienteling pages: they open a customer by an exact identifier (the
person in front of them) or because the customer's preferred store is theirs.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours.core.deps import DbSession
from parcours.core.money import Money
from parcours.customers import profiles
from parcours.customers.api import timeline_sources
from parcours.customers.profile_timeline import merges_of, timeline
from parcours.web.console import Console, ConsoleContext, render, require_role

router = APIRouter(prefix="/console", include_in_schema=False)
LIST_PAGE = 100
TIMELINE_PAGE = 50
Search = Annotated[str, Query(max_length=200)]


def _formatters(context: ConsoleContext) -> dict[str, Any]:
    def money(value: Money | None) -> str:
        return value.format(context.locale) if value else ""

    def cents(amount: int | None, currency: str | None) -> str:
        if amount is None or not currency:
            return ""
        return Money(int(amount), currency).format(context.locale)

    return {"money": money, "cents": cents}


@router.get("/customers", response_class=HTMLResponse)
def customers_page(
    request: Request,
    context: Console,
    session: DbSession,
    q: Search = "",
    cursor: str | None = None,
) -> Response:
    actor = require_role(context, *profiles.HEAD_OFFICE)
    page = profiles.search_profiles(session, context.now, actor, q, cursor, LIST_PAGE)
    return render(request, context, "customers/list.html", page=page, q=q, **_formatters(context))


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(
    request: Request,
    context: Console,
    session: DbSession,
    customer_id: uuid.UUID,
    timeline_cursor: str | None = None,
) -> Response:
    actor = require_role(context, *profiles.HEAD_OFFICE)
    profile = profiles.get_profile(session, context.now, actor, customer_id)
    if profile.merged_from:
        return RedirectResponse(f"/console/customers/{profile.id}", status_code=303)
    merges = merges_of(session, profile.id)
    entries = timeline(
        session,
        profile.id,
        profile.event_identifiers(),
        timeline_cursor,
        TIMELINE_PAGE,
        timeline_sources(request),
        merges,
    )
    return render(
        request,
        context,
        "customers/profile.html",
        profile=profile,
        timeline=entries,
        merges=merges,
        **_formatters(context),
    )


@router.get("/customers/{customer_id}/timeline", response_class=HTMLResponse)
def customer_timeline_rows(
    request: Request,
    context: Console,
    session: DbSession,
    customer_id: uuid.UUID,
    cursor: str | None = None,
) -> Response:
    """The next rows of the timeline (HTMX appends them in place of the "more" row)."""
    actor = require_role(context, *profiles.HEAD_OFFICE)
    page = profiles.profile_timeline(
        session,
        context.now,
        actor,
        customer_id,
        cursor,
        TIMELINE_PAGE,
        timeline_sources(request),
    )
    return render(
        request,
        context,
        "customers/profile_timeline_rows.html",
        profile_id=customer_id,
        timeline=page,
        **_formatters(context),
    )


@router.get("/clienteling", response_class=HTMLResponse)
def clienteling_search(
    request: Request, context: Console, session: DbSession, q: Search = ""
) -> Response:
    """Find the customer in front of you by an exact email, phone, card or number."""
    actor = require_role(context, "admin", "marketer", "staff")
    found = profiles.find_by_identifier(session, context.now, actor, q) if q.strip() else []
    if len(found) == 1:
        return RedirectResponse(f"/console/clienteling/{found[0].customer.id}", status_code=303)
    return render(
        request,
        context,
        "customers/clienteling_search.html",
        q=q,
        found=found,
    )


@router.get("/clienteling/{customer_id}", response_class=HTMLResponse)
def clienteling_page(
    request: Request,
    context: Console,
    session: DbSession,
    customer_id: uuid.UUID,
    cursor: str | None = None,
) -> Response:
    actor = require_role(context, "admin", "marketer", "staff")
    view = profiles.clienteling_view(
        session, context.now, actor, customer_id, cursor, timeline_sources(request)
    )
    if view.profile_id != customer_id:
        return RedirectResponse(f"/console/clienteling/{view.profile_id}", status_code=303)
    return render(request, context, "customers/clienteling.html", view=view, **_formatters(context))
