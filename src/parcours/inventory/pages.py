"""Console pages of the stock: stock by location for a SKU, and its movement history."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from parcours.core.deps import DbSession
from parcours.inventory import service
from parcours.web.console import Console, render

router = APIRouter(prefix="/console/commerce", include_in_schema=False)


@router.get("/stock", response_class=HTMLResponse)
def stock_page(request: Request, context: Console, session: DbSession, sku: str = "") -> Response:
    sku = sku.strip()[:64]
    rows = service.stock_by_location(session, sku) if sku else []
    return render(request, context, "inventory/stock.html", sku=sku, rows=rows)


@router.get("/stock/movements", response_class=HTMLResponse)
def movements_page(
    request: Request, context: Console, session: DbSession, sku: str, cursor: str | None = None
) -> Response:
    sku = sku.strip()[:64]
    page = service.movement_history(session, sku, cursor, 100)
    codes = service.location_codes(session, {m.location_id for m in page.items})
    return render(request, context, "inventory/movements.html", sku=sku, page=page, codes=codes)
