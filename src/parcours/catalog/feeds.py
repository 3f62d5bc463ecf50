"""Google Merchant Center feeds: the product feed of a channel in one locale, and the local
inventory feed of one store, as RSS 2.0 XML (the `g:` namespace) or TSV.

Items are checked against Google's published field rules before they are written; an item
that breaks a rule is left out and reported, and a missing GTIN is reported while the
item is kept. The catalogue is read a chunk of products at a time, and items are written
as they come, so a feed of any size needs little memory.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import TextIOBase
from typing import IO, Any, cast
from urllib.parse import quote, urljoin
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesNSImpl

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from parcours import inventory, stores
from parcours.catalog.gtin import is_valid_gtin
from parcours.catalog.models import (
    Brand,
    Channel,
    ChannelListing,
    Media,
    Price,
    Product,
    Variant,
)
from parcours.catalog.service import (
    LOCALES,
    current_prices_stmt,
    get_channel,
    list_channels,
    vat_split,
    visible_listing,
)
from parcours.core.errors import FieldError, InvalidInput, NotFound
from parcours.core.money import Money

GOOGLE_NS = "http://base.google.com/ns/1.0"
FORMATS = ("xml", "tsv")
PRODUCT_FIELDS = (
    "id",
    "title",
    "description",
    "link",
    "image_link",
    "availability",
    "price",
    "sale_price",
    "sale_price_effective_date",
    "brand",
    "gtin",
    "item_group_id",
    "condition",
    "size",
    "color",
)
LOCAL_FIELDS = ("store_code", "id", "quantity", "price", "availability")
PRODUCT_REQUIRED = (
    "id",
    "title",
    "description",
    "link",
    "image_link",
    "availability",
    "price",
    "condition",
)
LOCAL_REQUIRED = ("store_code", "id", "quantity", "availability")
# Google's limits, in characters.
MAX_LENGTH = {
    "id": 50,
    "title": 150,
    "description": 5000,
    "link": 2000,
    "image_link": 2000,
    "brand": 70,
    "item_group_id": 50,
    "store_code": 64,
    "size": 100,
    "color": 100,
}
AVAILABILITY = ("in_stock", "out_of_stock", "preorder", "backorder")
LOCAL_AVAILABILITY = ("in_stock", "limited_availability", "on_display_to_order", "out_of_stock")
CONDITIONS = ("new", "refurbished", "used")
PRICE_PATTERN = re.compile(r"^\d+(\.\d{1,3})? [A-Z]{3}$")
# Characters XML 1.0 cannot carry, and the whitespace a TSV cell must not hold.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TSV_BREAKS = re.compile(r"[\t\r\n]+")
# Option names the catalogue uses for what Google calls size and color.
_OPTION_FIELDS = {"size": ("size", "taille"), "color": ("colour", "color", "couleur")}
CHUNK = 1_000


@dataclass(frozen=True)
class FeedProblem:
    """Why an item was left out (`refused`) or what it lacks while kept."""

    id: str
    field: str
    message: str
    refused: bool


@dataclass
class FeedReport:
    items: int = 0
    refused: int = 0
    problems: list[FeedProblem] = field(default_factory=list)


# ------------------------------------------------------------------ the rules


def check_item(
    item: dict[str, str], required: Sequence[str], availabilities: Sequence[str]
) -> list[FeedProblem]:
    """Problems of one item against Google's field rules (lengths, required fields, price
    and availability formats, GTIN check digit, absolute links)."""
    ident = item.get("id", "")
    problems = []

    def refuse(name: str, message: str) -> None:
        problems.append(FeedProblem(ident, name, message, refused=True))

    for name in required:
        if not item.get(name, "").strip():
            refuse(name, "is required")
    for name, limit in MAX_LENGTH.items():
        if len(item.get(name, "")) > limit:
            refuse(name, f"has {len(item[name])} characters; at most {limit} are allowed")
    for name in ("price", "sale_price"):
        if item.get(name) and not PRICE_PATTERN.match(item[name]):
            refuse(name, 'must read like "12.34 EUR"')
    if item.get("availability") and item["availability"] not in availabilities:
        refuse("availability", f"must be one of {', '.join(availabilities)}")
    if item.get("condition") and item["condition"] not in CONDITIONS:
        refuse("condition", f"must be one of {', '.join(CONDITIONS)}")
    for name in ("link", "image_link"):
        if item.get(name) and not item[name].startswith(("http://", "https://")):
            refuse(name, "must be an absolute http(s) URL")
    if item.get("gtin") and not is_valid_gtin(item["gtin"]):
        refuse("gtin", "is not a valid GTIN")
    if "quantity" in item and not item["quantity"].isdigit():
        refuse("quantity", "must be a whole number from 0")
    return problems


def _accept(
    items: Iterable[dict[str, str]],
    report: FeedReport,
    required: Sequence[str],
    availabilities: Sequence[str],
) -> Iterator[dict[str, str]]:
    for item in items:
        problems = check_item(item, required, availabilities)
        report.problems += problems
        if problems:
            report.refused += 1
            continue
        report.items += 1
        yield item


# ------------------------------------------------------------------ reading the catalogue


def _money(amount: int, currency: str) -> str:
    return f"{Money(amount, currency).to_decimal()} {currency}"


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _listed_chunks(
    session: Session, channel: Channel, at: datetime, columns: Sequence[Any]
) -> Iterator[list[Any]]:
    """The listings visible on `channel` at `at`, a chunk at a time (keyset on product)."""
    last: uuid.UUID | None = None
    while True:
        stmt = (
            select(ChannelListing.product_id, *columns)
            .where(ChannelListing.channel_id == channel.id, visible_listing(at))
            .order_by(ChannelListing.product_id)
            .limit(CHUNK)
        )
        if last is not None:
            stmt = stmt.where(ChannelListing.product_id > last)
        rows = list(session.execute(stmt))
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _variants(session: Session, product_ids: Sequence[uuid.UUID]) -> list[Variant]:
    return list(
        session.scalars(
            select(Variant)
            .where(Variant.product_id.in_(product_ids))
            .order_by(Variant.product_id, Variant.position)
        )
    )


def resolve_base_url(channel: Channel, base_url: str | None) -> str:
    """The storefront URL links start from: the one given, else the channel's."""
    base = (base_url or channel.storefront_url or "").rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InvalidInput(
            f"Product links need the shop's address: channel {channel.code!r} has no "
            "storefront_url; set one or pass a base URL.",
            [FieldError("an http(s) URL is required", pointer="#/base_url")],
        )
    return base


def google_product_items(
    session: Session, at: datetime, channel_code: str, locale: str, base_url: str | None = None
) -> Iterator[dict[str, str]]:
    """Every variant of the products visible on the channel at `at`, as Google product
    fields (unchecked). Links read `<base>/<locale>/p/<product code>?variant=<sku>`."""
    channel = get_channel(session, channel_code)
    if locale not in LOCALES or locale not in channel.locales:
        raise InvalidInput(
            f"Channel {channel_code!r} does not sell in {locale!r}.",
            [FieldError(f"must be one of {', '.join(channel.locales)}", pointer="#/locale")],
        )
    base = resolve_base_url(channel, base_url)
    overrides = (
        getattr(ChannelListing, f"name_{locale}"),
        getattr(ChannelListing, f"description_{locale}"),
    )
    for rows in _listed_chunks(session, channel, at, overrides):
        yield from _product_chunk(session, at, channel, locale, base, rows)


def _product_chunk(
    session: Session,
    at: datetime,
    channel: Channel,
    locale: str,
    base: str,
    rows: Sequence[Any],
) -> Iterator[dict[str, str]]:
    ids = [row[0] for row in rows]
    own = {row[0]: (row[1], row[2]) for row in rows}
    products = {
        row.id: row
        for row in session.execute(
            select(
                Product.id,
                Product.code,
                Product.vat_rate_bp,
                getattr(Product, f"name_{locale}").label("name"),
                getattr(Product, f"description_{locale}").label("description"),
                Brand.name.label("brand"),
            )
            .join(Brand, Brand.id == Product.brand_id)
            .where(Product.id.in_(ids))
        )
    }
    images: dict[uuid.UUID, str] = {}
    for product_id, url in session.execute(
        select(Media.product_id, Media.url)
        .where(Media.product_id.in_(ids))
        .order_by(Media.product_id, Media.position.desc())
    ):
        images[product_id] = url  # the last written is the first by position
    variants = _variants(session, ids)
    current = current_prices_stmt(channel.id, at).subquery()
    prices = {
        row.variant_id: row
        for row in session.execute(
            select(current)
            .join(Variant, Variant.id == current.c.variant_id)
            .where(Variant.product_id.in_(ids))
        )
    }
    counts: dict[uuid.UUID, int] = defaultdict(int)
    for variant in variants:
        counts[variant.product_id] += 1
    stock = inventory.available_to_promise(session, [v.sku for v in variants], channel.code)
    for variant in variants:
        product = products[variant.product_id]
        name, description = own[variant.product_id]
        item = {
            "id": variant.sku,
            "title": _title(name or product.name, variant.options),
            "description": description or product.description,
            "link": f"{base}/{locale}/p/{quote(product.code)}?variant={quote(variant.sku)}",
            "image_link": _absolute(base, images.get(variant.product_id, "")),
            "availability": "in_stock" if stock.get(variant.sku, 0) > 0 else "out_of_stock",
            "brand": product.brand,
            "gtin": variant.gtin or "",
            "item_group_id": product.code if counts[variant.product_id] > 1 else "",
            "condition": "new",
            **_options(variant.options),
        }
        price = prices.get(variant.id)
        if price is not None:
            item.update(_price_fields(price, channel.currency, product.vat_rate_bp, at))
        yield item


def _title(name: str, options: dict[str, str]) -> str:
    values = [v for v in options.values() if v]
    return f"{name} - {' / '.join(values)}" if values and name else name


def _absolute(base: str, url: str) -> str:
    if not url or url.startswith(("http://", "https://")):
        return url
    return urljoin(base + "/", url.lstrip("/"))


def _options(options: dict[str, str]) -> dict[str, str]:
    found = {}
    lowered = {k.lower(): v for k, v in options.items()}
    for google, names in _OPTION_FIELDS.items():
        for name in names:
            if lowered.get(name):
                found[google] = lowered[name]
                break
    return found


def _price_fields(price: Any, currency: str, vat_bp: int, at: datetime) -> dict[str, str]:
    """Google wants prices VAT included in France; the sale while it has not ended."""
    regular, _ = vat_split(price.amount, currency, price.includes_vat, vat_bp)
    out = {"price": _money(regular, currency)}
    if price.sale_amount is None or (price.sale_to is not None and price.sale_to <= at):
        return out
    sale, _ = vat_split(price.sale_amount, currency, price.includes_vat, vat_bp)
    out["sale_price"] = _money(sale, currency)
    start = price.sale_from or price.valid_from
    if price.sale_to is not None:
        out["sale_price_effective_date"] = f"{_instant(start)}/{_instant(price.sale_to)}"
    elif price.sale_from is not None and price.sale_from > at:
        # An open-ended sale that has not started cannot be said in Google's interval.
        del out["sale_price"]
    return out


def local_inventory_items(
    session: Session, at: datetime, store_code: str, channel_code: str | None = None
) -> Iterator[dict[str, str]]:
    """One item per variant visible on the store channel (`channel_code`, default: the
    first channel of kind `store`): units available in that store and its price there
    (the store's own price winning over the channel's), VAT included."""
    store = stores.get_store_by_code(session, store_code)
    channel = _store_channel(session, channel_code)
    for rows in _listed_chunks(session, channel, at, ()):
        ids = [row[0] for row in rows]
        variants = _variants(session, ids)
        vat = {
            row.id: row.vat_rate_bp
            for row in session.execute(
                select(Product.id, Product.vat_rate_bp).where(Product.id.in_(ids))
            )
        }
        prices = _store_prices(session, at, channel, store.id, ids)
        stock = inventory.available_at_location(session, store.id, [v.sku for v in variants])
        for variant in variants:
            units = stock[variant.sku]
            item = {
                "store_code": store.code,
                "id": variant.sku,
                "quantity": str(units),
                "availability": "in_stock" if units > 0 else "out_of_stock",
            }
            price = prices.get(variant.id)
            if price is not None:
                amount, _ = vat_split(
                    price.amount, channel.currency, price.includes_vat, vat[variant.product_id]
                )
                item["price"] = _money(amount, channel.currency)
            yield item


def _store_channel(session: Session, channel_code: str | None) -> Channel:
    if channel_code is not None:
        return get_channel(session, channel_code)
    for channel in list_channels(session):
        if channel.kind == "store":
            return channel
    raise NotFound("No channel of kind 'store' holds the prices of the stores; name one.")


def _store_prices(
    session: Session,
    at: datetime,
    channel: Channel,
    store_id: uuid.UUID,
    product_ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, Any]:
    ranked = (
        select(
            Price.variant_id,
            Price.amount,
            Price.includes_vat,
            func.row_number()
            .over(
                partition_by=Price.variant_id,
                order_by=(
                    case((Price.store_id.is_(None), 1), else_=0),
                    Price.valid_from.desc(),
                    Price.id.desc(),
                ),
            )
            .label("rank"),
        )
        .join(Variant, Variant.id == Price.variant_id)
        .where(
            Price.channel_id == channel.id,
            (Price.store_id.is_(None)) | (Price.store_id == store_id),
            Price.valid_from <= at,
            Variant.product_id.in_(product_ids),
        )
        .subquery()
    )
    return {
        row.variant_id: row for row in session.execute(select(ranked).where(ranked.c.rank == 1))
    }


# ------------------------------------------------------------------ writing


def _clean(value: str) -> str:
    return _NOT_XML.sub("", value)


def write_xml(
    items: Iterable[dict[str, str]],
    out: IO[str],
    fields: Sequence[str],
    title: str,
    link: str,
    description: str,
) -> None:
    """RSS 2.0 with one `<item>` per item, fields in the `g:` namespace (empty ones left
    out), written as items come."""
    # A text stream: XMLGenerator writes str to it (typeshed only names TextIOBase).
    xml = XMLGenerator(cast("TextIOBase", out), encoding="utf-8", short_empty_elements=True)
    xml.startDocument()
    xml.startPrefixMapping("g", GOOGLE_NS)
    xml.startElementNS((None, "rss"), "rss", _attributes({(None, "version"): "2.0"}))
    xml.startElementNS((None, "channel"), "channel", _attributes({}))
    for name, text in (("title", title), ("link", link), ("description", description)):
        _element(xml, (None, name), text)
    for item in items:
        xml.startElementNS((None, "item"), "item", _attributes({}))
        for name in fields:
            if item.get(name):
                _element(xml, (GOOGLE_NS, name), item[name])
        xml.endElementNS((None, "item"), "item")
    xml.endElementNS((None, "channel"), "channel")
    xml.endElementNS((None, "rss"), "rss")
    xml.endPrefixMapping("g")
    xml.endDocument()


def _attributes(values: dict[tuple[str | None, str], str]) -> AttributesNSImpl:
    return AttributesNSImpl(values, {key: key[1] for key in values})


def _element(xml: XMLGenerator, name: tuple[str | None, str], text: str) -> None:
    xml.startElementNS(name, name[1], _attributes({}))
    xml.characters(_clean(text))
    xml.endElementNS(name, name[1])


def write_tsv(items: Iterable[dict[str, str]], out: IO[str], fields: Sequence[str]) -> None:
    """A header of field names, then one tab-separated line per item; tabs and line
    breaks inside values become spaces, as Google's TSV requires."""
    writer = csv.writer(
        out, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE, quotechar=None
    )
    writer.writerow(fields)
    for item in items:
        writer.writerow([_TSV_BREAKS.sub(" ", _clean(item.get(name, ""))) for name in fields])


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InvalidInput(
            f"Unknown feed format {fmt!r}.", [FieldError("must be xml or tsv", pointer="#/format")]
        )


def write_google_products(
    session: Session,
    at: datetime,
    channel_code: str,
    locale: str,
    out: IO[str],
    fmt: str = "xml",
    base_url: str | None = None,
) -> FeedReport:
    """Write the Google product feed of a channel in one locale; returns what was written
    and what was left out (and why)."""
    _check_format(fmt)
    report = FeedReport()
    raw = google_product_items(session, at, channel_code, locale, base_url)
    first = next(raw, None)  # fail on a bad channel, locale or base URL before writing
    items = _accept(_chain(first, raw), report, PRODUCT_REQUIRED, AVAILABILITY)
    items = _report_missing_gtins(items, report)
    if fmt == "tsv":
        write_tsv(items, out, PRODUCT_FIELDS)
    else:
        channel = get_channel(session, channel_code)
        base = resolve_base_url(channel, base_url)
        write_xml(items, out, PRODUCT_FIELDS, channel.name, base, f"{channel.name} ({locale})")
    return report


def write_local_inventory(
    session: Session,
    at: datetime,
    store_code: str,
    out: IO[str],
    fmt: str = "xml",
    channel_code: str | None = None,
) -> FeedReport:
    """Write the Google local inventory feed of one store."""
    _check_format(fmt)
    report = FeedReport()
    raw = local_inventory_items(session, at, store_code, channel_code)
    first = next(raw, None)
    items = _accept(_chain(first, raw), report, LOCAL_REQUIRED, LOCAL_AVAILABILITY)
    if fmt == "tsv":
        write_tsv(items, out, LOCAL_FIELDS)
    else:
        write_xml(items, out, LOCAL_FIELDS, store_code, "", f"Local inventory of {store_code}")
    return report


def _chain(
    first: dict[str, str] | None, rest: Iterator[dict[str, str]]
) -> Iterator[dict[str, str]]:
    if first is not None:
        yield first
        yield from rest


def _report_missing_gtins(
    items: Iterator[dict[str, str]], report: FeedReport
) -> Iterator[dict[str, str]]:
    for item in items:
        if not item.get("gtin"):
            report.problems.append(
                FeedProblem(item["id"], "gtin", "has no GTIN; Google may limit its reach", False)
            )
        yield item
