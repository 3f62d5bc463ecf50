"""Console pages of the catalogue: search with facets, and one product in full."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from parcours.catalog import service
from parcours.catalog.search import search_products
from parcours.core.deps import DbSession
from parcours.core.money import Money
from parcours.web.console import Console, render

router = APIRouter(prefix="/console/commerce/catalog", include_in_schema=False)
PAGE = 50


@router.get("", response_class=HTMLResponse)
def catalog_page(
    request: Request,
    context: Console,
    session: DbSession,
    q: str = "",
    brand: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    price_band: str | None = None,
    page: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    filters = {"brand": brand, "category": category, "channel": channel, "price_band": price_band}
    result = search_products(session, q, context.now, limit=PAGE, offset=page * PAGE, **filters)
    return render(
        request,
        context,
        "catalog/list.html",
        q=q,
        filters={k: v for k, v in filters.items() if v},
        result=result,
        page=page,
        more=(page + 1) * PAGE < result.total,
        money=lambda cents: Money(cents, "EUR").format(context.locale),
    )


@router.get("/{code}", response_class=HTMLResponse)
def product_page(request: Request, context: Console, session: DbSession, code: str) -> Response:
    view = service.get_product(session, code)
    channels = service.list_channels(session)
    skus = [v.sku for v in view.variants]
    prices = {c.code: service.current_prices(session, c.code, context.now, skus) for c in channels}
    scores = service.completeness(session, [code], None, context.now)
    return render(
        request,
        context,
        "catalog/product.html",
        view=view,
        channels=channels,
        prices=prices,
        scores=scores,
        vat=service.vat_percent(view.product.vat_rate_bp),
        money=lambda cents, currency: Money(cents, currency).format(context.locale),
    )
