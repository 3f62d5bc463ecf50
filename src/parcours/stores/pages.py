"""Console pages of the store network."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from parcours.core.deps import DbSession
from parcours.stores import service
from parcours.web.console import Console, render

router = APIRouter(prefix="/console/commerce", include_in_schema=False)


@router.get("/stores", response_class=HTMLResponse)
def stores_page(
    request: Request, context: Console, session: DbSession, cursor: str | None = None
) -> Response:
    return render(
        request, context, "stores/list.html", page=service.list_stores(session, cursor, 100)
    )
