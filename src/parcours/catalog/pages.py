"""Console pages of the catalogue: search with facets, one product in full, and the
one-voice report with its fixes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours.catalog import service, voice
from parcours.catalog.search import search_products
from parcours.core.deps import DbSession
from parcours.core.money import Money
from parcours.web.console import Console, VerifiedConsole, render, require_role

router = APIRouter(prefix="/console/commerce", include_in_schema=False)
PAGE = 50
FINDINGS_PAGE = 200
# Who may change prices and listing texts from the one-voice page (head office, not stores).
EDITORS = ("admin",)
# What the services refuse, shown by the console's error page with `said(...)` in the
# reader's language.
SERVICE_MESSAGES = (*service.MESSAGES, *voice.MESSAGES)


@router.get("/catalog", response_class=HTMLResponse)
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


@router.get("/catalog/{code}", response_class=HTMLResponse)
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


@router.get("/one-voice", response_class=HTMLResponse)
def one_voice_page(
    request: Request,
    context: Console,
    session: DbSession,
    channel: str | None = None,
    field: str | None = None,
    page: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    report = voice.one_voice_report(session, context.now, None, channel or None, field or None)
    start = page * FINDINGS_PAGE
    return render(
        request,
        context,
        "catalog/one_voice.html",
        report=report,
        findings=report.findings[start : start + FINDINGS_PAGE],
        channels=service.list_channels(session),
        fields=voice.FIELDS,
        filters={k: v for k, v in {"channel": channel, "field": field}.items() if v},
        page=page,
        more=start + FINDINGS_PAGE < len(report.findings),
        can_fix=context.user is not None and context.user.role in EDITORS,
        money=lambda cents, currency: Money(cents, currency).format(context.locale),
    )


def _back(back: str) -> str:
    """Return to the report with its filters, never to another site."""
    return back if back.startswith("/console/commerce/one-voice") else "/console/commerce/one-voice"


@router.post("/one-voice/align-price", response_class=HTMLResponse)
def align_price(
    context: VerifiedConsole,
    session: DbSession,
    sku: Annotated[str, Form()],
    channel: Annotated[str, Form()],
    reference: Annotated[str, Form()],
    back: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, *EDITORS)
    voice.align_price(session, context.now, actor, sku, channel, reference)
    return RedirectResponse(_back(back), status_code=303)


@router.post("/one-voice/remove-text", response_class=HTMLResponse)
def remove_text(
    context: VerifiedConsole,
    session: DbSession,
    product: Annotated[str, Form()],
    channel: Annotated[str, Form()],
    field: Annotated[str, Form()],
    locale: Annotated[str, Form()],
    back: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, *EDITORS)
    voice.remove_listing_text(session, context.now, actor, product, channel, field, locale)
    return RedirectResponse(_back(back), status_code=303)
