"""REST endpoints of the catalogue (`/v1/catalog`): thin calls to the service."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel

from parcours import stores
from parcours.catalog import feeds, service, transfer, voice
from parcours.catalog.schemas import (
    AttributeIn,
    BrandIn,
    CategoryIn,
    ChannelIn,
    ChannelOut,
    CodeOut,
    CompletenessOut,
    FeedReportOut,
    ImportOut,
    ListingIn,
    ListingOut,
    ListingTextsIn,
    MediaOut,
    PriceIn,
    PriceQuoteOut,
    PriceRecordOut,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    ProductSummary,
    SearchOut,
    VariantOut,
    VoiceFindingOut,
    VoiceReportOut,
    VoiceRuleIn,
    VoiceRuleOut,
)
from parcours.catalog.search import search_products
from parcours.core import imports
from parcours.core.audit import Actor
from parcours.core.deps import (
    ClockDep,
    DbSession,
    IdempotencyKey,
    api_caller,
    respond_once,
)
from parcours.core.errors import InvalidInput

if TYPE_CHECKING:
    from parcours.catalog.models import ChannelListing

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])
Reader = Annotated[Actor, Depends(api_caller("commerce:read"))]
Writer = Annotated[Actor, Depends(api_caller("commerce:write"))]
At = Annotated[AwareDatetime | None, Query(description="point in time (default: now)")]


def product_out(view: service.ProductView) -> ProductOut:
    product = view.product
    return ProductOut(
        id=product.id,
        code=product.code,
        brand=view.brand.code,
        category=view.category.code,
        vat_rate=service.vat_percent(product.vat_rate_bp),
        name_fr=product.name_fr,
        name_en=product.name_en,
        description_fr=product.description_fr,
        description_en=product.description_en,
        attributes=product.attributes,
        variants=[VariantOut.model_validate(v) for v in view.variants],
        media=[MediaOut.model_validate(m) for m in view.media],
        listings=[listing_out(channel.code, listing) for channel, listing in view.listings],
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def listing_out(channel: str, listing: ChannelListing) -> ListingOut:
    return ListingOut(
        channel=channel,
        published=listing.published,
        visible_from=listing.visible_from,
        visible_to=listing.visible_to,
        name_fr=listing.name_fr,
        name_en=listing.name_en,
        description_fr=listing.description_fr,
        description_en=listing.description_en,
    )


def _created(
    request: Request,
    session: DbSession,
    now: datetime,
    caller: Actor,
    key: str | None,
    body: BaseModel,
    action: Callable[[], BaseModel],
) -> JSONResponse:
    """Run a creating action once per Idempotency-Key and answer 201 (or the replay)."""
    return respond_once(
        request, session, now, caller, key, body, lambda: action().model_dump(mode="json")
    )


# ------------------------------------------------------------------ reference data


@router.post("/brands", status_code=201, response_model=CodeOut, summary="Create a brand")
def create_brand(
    body: BrandIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return _created(
        request,
        session,
        clock.now(),
        caller,
        key,
        body,
        lambda: CodeOut(code=service.add_brand(session, body.code, body.name).code),
    )


@router.post("/categories", status_code=201, response_model=CodeOut, summary="Create a category")
def create_category(
    body: CategoryIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def action() -> CodeOut:
        made = service.add_category(session, body.code, body.name_fr, body.name_en, body.parent)
        return CodeOut(code=made.code)

    return _created(request, session, clock.now(), caller, key, body, action)


@router.post(
    "/attributes", status_code=201, response_model=CodeOut, summary="Create a typed attribute"
)
def create_attribute(
    body: AttributeIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def action() -> CodeOut:
        made = service.add_attribute(
            session,
            body.code,
            body.kind,
            body.name_fr,
            body.name_en,
            body.localized,
            body.allowed_values,
        )
        return CodeOut(code=made.code)

    return _created(request, session, clock.now(), caller, key, body, action)


# ------------------------------------------------------------------ products


@router.get("/products", response_model=ProductPage, summary="List products")
def list_products(
    session: DbSession,
    _caller: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ProductPage:
    page = service.list_products(session, cursor, limit)
    return ProductPage(
        items=[ProductSummary.model_validate(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.get("/search", response_model=SearchOut, summary="Search products, with facets")
def search(
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    q: str = "",
    brand: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    price_band: str | None = None,
    price_channel: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SearchOut:
    result = search_products(
        session,
        q,
        clock.now(),
        brand=brand,
        category=category,
        channel=channel,
        price_band=price_band,
        price_channel=price_channel,
        limit=limit,
        offset=offset,
    )
    return SearchOut.model_validate(result, from_attributes=True)


@router.post(
    "/products",
    status_code=201,
    response_model=ProductOut,
    summary="Create a product with its variants",
)
def create_product(
    body: ProductIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return _created(
        request,
        session,
        clock.now(),
        caller,
        key,
        body,
        lambda: product_out(service.create_product(session, clock.now(), body.model_dump())),
    )


@router.get("/products/{code}", response_model=ProductOut, summary="One product")
def get_product(code: str, session: DbSession, _caller: Reader) -> ProductOut:
    return product_out(service.get_product(session, code))


@router.patch(
    "/products/{code}", response_model=ProductOut, summary="Change a product, add variants"
)
def update_product(
    code: str, body: ProductPatch, session: DbSession, clock: ClockDep, _caller: Writer
) -> ProductOut:
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    return product_out(service.update_product(session, clock.now(), code, changes))


@router.get(
    "/products/{code}/completeness",
    response_model=list[CompletenessOut],
    summary="Completeness per channel and locale",
)
def product_completeness(
    code: str, session: DbSession, clock: ClockDep, _caller: Reader, channel: str | None = None
) -> list[CompletenessOut]:
    rows = service.completeness(session, [code], channel, clock.now())
    return [CompletenessOut.model_validate(r) for r in rows]


@router.put(
    "/products/{code}/listings/{channel}",
    response_model=ListingOut,
    summary="List or unlist a product on a channel",
)
def set_listing(
    code: str, channel: str, body: ListingIn, session: DbSession, clock: ClockDep, _caller: Writer
) -> ListingOut:
    listing = service.set_listing(
        session, clock.now(), code, channel, body.published, body.visible_from, body.visible_to
    )
    return listing_out(channel, listing)


@router.put(
    "/products/{code}/listings/{channel}/texts",
    response_model=ListingOut,
    summary="Give a listed product its own name or description on a channel",
)
def set_listing_texts(
    code: str,
    channel: str,
    body: ListingTextsIn,
    session: DbSession,
    clock: ClockDep,
    _caller: Writer,
) -> ListingOut:
    texts = body.model_dump(exclude_unset=True)
    listing = service.set_listing_texts(session, clock.now(), code, channel, texts)
    return listing_out(channel, listing)


# ------------------------------------------------------------------ channels


@router.get("/channels", response_model=list[ChannelOut], summary="List sales channels")
def list_channels(session: DbSession, _caller: Reader) -> list[ChannelOut]:
    return [ChannelOut.model_validate(c) for c in service.list_channels(session)]


@router.post(
    "/channels", status_code=201, response_model=ChannelOut, summary="Create a sales channel"
)
def create_channel(
    body: ChannelIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return _created(
        request,
        session,
        clock.now(),
        caller,
        key,
        body,
        lambda: ChannelOut.model_validate(
            service.add_channel(session, clock.now(), body.model_dump())
        ),
    )


# ------------------------------------------------------------------ prices


@router.post("/prices", status_code=201, response_model=PriceQuoteOut, summary="Record a new price")
def create_price(
    body: PriceIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def action() -> PriceQuoteOut:
        now = clock.now()
        store_id = stores.get_store_by_code(session, body.store).id if body.store else None
        price = service.set_price(
            session,
            now,
            body.sku,
            body.channel,
            body.amount,
            store_id=store_id,
            valid_from=body.valid_from,
            sale_amount=body.sale_amount,
            sale_from=body.sale_from,
            sale_to=body.sale_to,
        )
        vat = service.current_vat_rate(session, body.sku)
        return PriceQuoteOut.model_validate(
            service.quote(price, body.sku, body.channel, vat, price.valid_from)
        )

    return _created(request, session, clock.now(), caller, key, body, action)


@router.get("/prices/{sku}", response_model=PriceQuoteOut, summary="Price of a SKU at a time")
def current_price(
    sku: str,
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    channel: str,
    store: str | None = None,
    at: At = None,
) -> PriceQuoteOut:
    store_id = stores.get_store_by_code(session, store).id if store else None
    quote = service.current_price(session, sku, channel, at or clock.now(), store_id)
    return PriceQuoteOut.model_validate(quote)


@router.get(
    "/prices/{sku}/history", response_model=list[PriceRecordOut], summary="Price history of a SKU"
)
def price_history(
    sku: str, session: DbSession, _caller: Reader, channel: str | None = None
) -> list[PriceRecordOut]:
    return [
        PriceRecordOut(
            channel=code,
            store_id=p.store_id,
            currency=p.currency,
            amount=p.amount,
            includes_vat=p.includes_vat,
            sale_amount=p.sale_amount,
            sale_from=p.sale_from,
            sale_to=p.sale_to,
            valid_from=p.valid_from,
            created_at=p.created_at,
        )
        for p, code in service.price_history(session, sku, channel)
    ]


# ------------------------------------------------------------------ one voice


@router.get(
    "/one-voice",
    response_model=VoiceReportOut,
    summary="Differences between channels beyond the one-voice rules",
)
def one_voice(
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    reference: Annotated[
        str | None, Query(description="reference of channels without a rule (default: web shop)")
    ] = None,
    channel: Annotated[str | None, Query(description="only this checked channel")] = None,
    field: Annotated[
        str | None, Query(description="only name, description, price or availability")
    ] = None,
    at: At = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> VoiceReportOut:
    report = voice.one_voice_report(session, at or clock.now(), reference, channel, field)
    return VoiceReportOut(
        default_reference=report.default_reference,
        rules=[VoiceRuleOut.model_validate(r) for r in report.rules],
        products_checked=report.products_checked,
        total=len(report.findings),
        findings=[
            VoiceFindingOut.model_validate(f) for f in report.findings[offset : offset + limit]
        ],
    )


@router.get("/one-voice/rules", response_model=list[VoiceRuleOut], summary="The one-voice rules")
def voice_rules(session: DbSession, _caller: Reader) -> list[VoiceRuleOut]:
    return [VoiceRuleOut.model_validate(r) for r in voice.list_voice_rules(session)]


@router.put(
    "/one-voice/rules/{channel}",
    response_model=VoiceRuleOut,
    summary="Set what a channel may differ in from its reference",
)
def set_voice_rule(
    channel: str, body: VoiceRuleIn, session: DbSession, clock: ClockDep, _caller: Writer
) -> VoiceRuleOut:
    rule = voice.VoiceRule(channel=channel, **body.model_dump())
    return VoiceRuleOut.model_validate(voice.set_voice_rule(session, clock.now(), rule))


# ------------------------------------------------------------------ import / export


@router.post("/imports", response_model=ImportOut, summary="Import a CSV or JSON catalogue file")
def import_catalogue(
    file: UploadFile,
    session: DbSession,
    clock: ClockDep,
    _caller: Writer,
    format: Annotated[str | None, Query(description="csv or json (default: from the name)")] = None,
    keep_good_rows: bool = False,
) -> ImportOut:
    fmt = imports.format_of(Path(file.filename or "upload"), format)
    try:
        text = file.file.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text.") from None
    report = transfer.import_file(session, clock.now(), io.StringIO(text), fmt, keep_good_rows)
    return ImportOut.model_validate(report)


@router.get("/exports", summary="Export the catalogue as CSV or JSON (one row per variant)")
def export_catalogue(
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv",
) -> Response:
    body = transfer.export_text(session, clock.now(), format)
    media = "text/csv" if format == "csv" else "application/json"
    return Response(
        body,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="catalogue.{format}"'},
    )


# ------------------------------------------------------------------ Google Merchant Center feeds

FeedFormat = Annotated[str, Query(pattern="^(xml|tsv)$", description="xml (RSS 2.0) or tsv")]
FEED_MEDIA = {"xml": "application/xml", "tsv": "text/tab-separated-values"}


def _feed_response(body: str, fmt: str, name: str, report: feeds.FeedReport) -> Response:
    return Response(
        body,
        media_type=f"{FEED_MEDIA[fmt]}; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            "Feed-Items": str(report.items),
            "Feed-Refused": str(report.refused),
        },
    )


@router.get("/feeds/google/products", summary="Google Merchant Center product feed")
def google_products_feed(
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    channel: str,
    locale: str,
    format: FeedFormat = "xml",
    base_url: Annotated[
        str | None, Query(description="the shop's URL (default: the channel's storefront_url)")
    ] = None,
) -> Response:
    out = io.StringIO()
    report = feeds.write_google_products(
        session, clock.now(), channel, locale, out, format, base_url
    )
    return _feed_response(out.getvalue(), format, f"google-products-{channel}-{locale}", report)


@router.get(
    "/feeds/google/products/report",
    response_model=FeedReportOut,
    summary="What the product feed would leave out, and why",
)
def google_products_report(
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    channel: str,
    locale: str,
    base_url: str | None = None,
) -> FeedReportOut:
    report = feeds.write_google_products(
        session, clock.now(), channel, locale, io.StringIO(), "tsv", base_url
    )
    return FeedReportOut.model_validate(report)


@router.get("/feeds/google/local-inventory", summary="Google local inventory feed of a store")
def google_local_inventory_feed(
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    store: str,
    format: FeedFormat = "xml",
    channel: Annotated[
        str | None, Query(description="channel of the store prices (default: kind store)")
    ] = None,
) -> Response:
    out = io.StringIO()
    report = feeds.write_local_inventory(session, clock.now(), store, out, format, channel)
    return _feed_response(out.getvalue(), format, f"google-local-inventory-{store}", report)
