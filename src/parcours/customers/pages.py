"""Console pages of customer profiles (views are audited)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from parcours.core.deps import DbSession
from parcours.customers import service
from parcours.web.console import Console, render, require_role

router = APIRouter(prefix="/console/customers", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def customers_page(
    request: Request, context: Console, session: DbSession, cursor: str | None = None
) -> Response:
    actor = require_role(context, "admin", "marketer")
    page = service.list_customers(session, context.now, actor, cursor, 100)
    return render(request, context, "customers/list.html", page=page)
