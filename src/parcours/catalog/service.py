"""Catalogue use cases: reference data, products and variants, channels, listings, prices
and completeness. Plain functions taking a session; times are UTC, money is minor units."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from parcours import inventory
from parcours.catalog import search
from parcours.catalog.gtin import gtin_problem
from parcours.catalog.models import (
    Attribute,
    Brand,
    Category,
    Channel,
    ChannelListing,
    Media,
    Price,
    Product,
    Variant,
)
from parcours.core.db import bulk_insert
from parcours.core.errors import Conflict, FieldError, InvalidInput, NotFound, SaidNotFound
from parcours.core.ids import new_id
from parcours.core.money import Money
from parcours.core.pagination import Page, paginate

LOCALES = ("fr", "en")
CHANNEL_KINDS = ("web", "app", "store", "call_centre", "marketplace", "social")
ATTRIBUTE_KINDS = ("text", "number", "boolean", "enum")
# French VAT rates (CGI art. 278 ff.), in basis points: 20 %, 10 %, 5.5 %, 2.1 %.
VAT_RATES_BP = (2000, 1000, 550, 210)
# Fields every product has, which a channel may require per locale besides attributes.
BUILTIN_FIELDS = ("name", "description", "media", "media_alt", "gtin", "price")
DEFAULT_REQUIRED = ("name", "description", "price")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOKEN = re.compile(r"[a-z0-9]+")

# What the catalogue pages can be refused (an unknown product, channel, SKU or listing),
# as `message % values` for the console (see `core.errors.SaidNotFound`).
NO_PRODUCT = "No product has the code %(code)s."
NO_VARIANT = "No variant has the SKU %(sku)s."
NO_CHANNEL = "No channel has the code %(code)s."
NOT_LISTED = "The product %(product)s is not listed on channel %(channel)s."
MESSAGES = (NO_PRODUCT, NO_VARIANT, NO_CHANNEL, NOT_LISTED)


# ------------------------------------------------------------------ small helpers


def tokens(text: str) -> list[str]:
    """Lower-case, accent-free alphanumeric words: what the search index holds."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _TOKEN.findall(ascii_text.lower())


def search_text(parts: Iterable[str]) -> str:
    """A product's `search_text`: the tokens of its code, names, brand, category names,
    SKUs and GTINs (`parts`), space-separated."""
    return " ".join(tokens(" ".join(parts)))


def parse_vat_rate(value: Any) -> int:
    """A VAT rate given in percent ("20", 5.5, "2,1") as basis points; French rates only."""
    try:
        rate = Decimal(str(value).replace(",", ".").strip().rstrip("%"))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    bp = rate * 100
    if bp != bp.to_integral_value() or int(bp) not in VAT_RATES_BP:
        raise ValueError("VAT rate must be one of 20, 10, 5.5 or 2.1 (%)")
    return int(bp)


def vat_percent(bp: int) -> str:
    """Basis points as a percent string: 2000 → "20", 550 → "5.5"."""
    text = format(Decimal(bp) / 100, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _require_code(value: Any, pointer: str, errors: list[FieldError]) -> None:
    if not isinstance(value, str) or not CODE_PATTERN.match(value):
        errors.append(FieldError("must be 1-64 letters, digits, '.', '_' or '-'", pointer=pointer))


# ------------------------------------------------------------------ brands, categories, attributes


def add_brand(session: Session, code: str, name: str) -> Brand:
    """A new brand; the code is unique."""
    errors: list[FieldError] = []
    _require_code(code, "#/code", errors)
    if errors:
        raise InvalidInput("The brand is invalid.", errors)
    if session.scalar(select(Brand.id).where(Brand.code == code)):
        raise Conflict(f"A brand with the code {code!r} already exists.")
    brand = Brand(id=new_id(), code=code, name=name)
    session.add(brand)
    session.flush()
    return brand


def add_category(
    session: Session, code: str, name_fr: str, name_en: str, parent_code: str | None = None
) -> Category:
    """A new node of the category tree, under `parent_code` or at the root."""
    errors: list[FieldError] = []
    _require_code(code, "#/code", errors)
    if errors:
        raise InvalidInput("The category is invalid.", errors)
    if session.scalar(select(Category.id).where(Category.code == code)):
        raise Conflict(f"A category with the code {code!r} already exists.")
    parent_id = None
    if parent_code is not None:
        parent_id = session.scalar(select(Category.id).where(Category.code == parent_code))
        if parent_id is None:
            raise InvalidInput(
                f"No category has the code {parent_code!r}.",
                [FieldError("unknown category", pointer="#/parent")],
            )
    category = Category(id=new_id(), code=code, name_fr=name_fr, name_en=name_en)
    category.parent_id = parent_id
    session.add(category)
    session.flush()
    return category


def category_path(session: Session, category_id: uuid.UUID) -> list[Category]:
    """The category and its ancestors, root first."""
    path: list[Category] = []
    current: uuid.UUID | None = category_id
    while current is not None and len(path) < 32:
        category = session.get(Category, current)
        if category is None:
            break
        path.append(category)
        current = category.parent_id
    return path[::-1]


def list_brands(session: Session) -> list[Brand]:
    return list(session.scalars(select(Brand).order_by(Brand.name)))


def list_categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.code)))


def add_attribute(
    session: Session,
    code: str,
    kind: str,
    name_fr: str,
    name_en: str,
    localized: bool = False,
    allowed_values: Sequence[Mapping[str, str]] = (),
) -> Attribute:
    """A typed attribute; enums list their allowed values with FR/EN labels."""
    errors: list[FieldError] = []
    _require_code(code, "#/code", errors)
    if kind not in ATTRIBUTE_KINDS:
        errors.append(FieldError(f"must be one of {', '.join(ATTRIBUTE_KINDS)}", pointer="#/kind"))
    if kind == "enum" and not allowed_values:
        errors.append(FieldError("an enum needs allowed values", pointer="#/allowed_values"))
    if localized and kind != "text":
        errors.append(FieldError("only text attributes are localized", pointer="#/localized"))
    for index, value in enumerate(allowed_values):
        if not value.get("code") or not value.get("fr") or not value.get("en"):
            errors.append(
                FieldError("needs a code and FR/EN labels", pointer=f"#/allowed_values/{index}")
            )
    if errors:
        raise InvalidInput("The attribute is invalid.", errors)
    if session.scalar(select(Attribute.id).where(Attribute.code == code)):
        raise Conflict(f"An attribute with the code {code!r} already exists.")
    attribute = Attribute(
        id=new_id(),
        code=code,
        kind=kind,
        name_fr=name_fr,
        name_en=name_en,
        localized=localized,
        allowed_values=[dict(v) for v in allowed_values],
    )
    session.add(attribute)
    session.flush()
    return attribute


def _attribute_problem(attribute: Attribute, value: Any) -> str | None:
    if attribute.localized:
        if not isinstance(value, dict) or not set(value) <= set(LOCALES):
            return 'a localized text is {"fr": …, "en": …}'
        return None if all(isinstance(v, str) for v in value.values()) else "texts only"
    if attribute.kind == "text":
        return None if isinstance(value, str) else "must be a text"
    if attribute.kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if attribute.kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    codes = [v["code"] for v in attribute.allowed_values]
    return None if value in codes else f"must be one of {', '.join(codes)}"


def check_attributes(
    session: Session, values: Mapping[str, Any], pointer: str = "#/attributes"
) -> list[FieldError]:
    """Problems with attribute values: unknown codes and values of the wrong type."""
    if not values:
        return []
    known = {
        a.code: a for a in session.scalars(select(Attribute).where(Attribute.code.in_(values)))
    }
    errors = []
    for code, value in values.items():
        attribute = known.get(code)
        problem = "unknown attribute" if attribute is None else _attribute_problem(attribute, value)
        if problem:
            errors.append(FieldError(problem, pointer=f"{pointer}/{code}"))
    return errors


# ------------------------------------------------------------------ products and variants


@dataclass
class ProductView:
    """A product with what belongs to it, ready to show."""

    product: Product
    brand: Brand
    category: Category
    variants: list[Variant]
    media: list[Media]
    listings: list[tuple[Channel, ChannelListing]] = field(default_factory=list)


def _codes_to_ids(
    session: Session, model: type[Brand] | type[Category], codes: Iterable[str]
) -> dict[str, uuid.UUID]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = session.execute(select(model.code, model.id).where(model.code.in_(wanted)))
    return _pairs(rows)


def check_variants(
    variants: Sequence[Mapping[str, Any]], pointer: str = "#/variants"
) -> list[FieldError]:
    """Problems within a list of variants: missing or repeated SKUs, bad GTINs."""
    errors = []
    seen: set[str] = set()
    for index, variant in enumerate(variants):
        sku = variant.get("sku")
        if not isinstance(sku, str) or not sku.strip() or len(sku) > 64:
            errors.append(
                FieldError("a SKU of 1-64 characters is required", pointer=f"{pointer}/{index}/sku")
            )
        elif sku in seen:
            errors.append(
                FieldError(f"SKU {sku!r} appears twice", pointer=f"{pointer}/{index}/sku")
            )
        else:
            seen.add(sku)
        gtin = variant.get("gtin")
        if gtin:
            problem = gtin_problem(str(gtin))
            if problem:
                errors.append(FieldError(problem, pointer=f"{pointer}/{index}/gtin"))
        options = variant.get("options") or {}
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            errors.append(
                FieldError("options map names to texts", pointer=f"{pointer}/{index}/options")
            )
    return errors


def _taken(session: Session, skus: Sequence[str], gtins: Sequence[str]) -> list[FieldError]:
    errors = []
    if skus:
        for sku in session.scalars(select(Variant.sku).where(Variant.sku.in_(skus))):
            index = skus.index(sku)
            errors.append(
                FieldError(f"SKU {sku!r} already exists", pointer=f"#/variants/{index}/sku")
            )
    if gtins:
        for gtin in session.scalars(select(Variant.gtin).where(Variant.gtin.in_(gtins))):
            index = gtins.index(gtin) if gtin in gtins else 0
            errors.append(
                FieldError(f"GTIN {gtin} is already used", pointer=f"#/variants/{index}/gtin")
            )
    return errors


def create_product(session: Session, now: datetime, data: Mapping[str, Any]) -> ProductView:
    """A new product with its variants and media; all-or-nothing.

    `data`: code, brand and category (codes), vat_rate (percent), name_fr, name_en,
    description_fr, description_en, attributes, variants [{sku, gtin, options}],
    media [{url, alt_fr, alt_en}].
    """
    errors: list[FieldError] = []
    _require_code(data.get("code"), "#/code", errors)
    if not str(data.get("name_fr") or "").strip():
        errors.append(FieldError("a French name is required", pointer="#/name_fr"))
    try:
        vat_bp = parse_vat_rate(data.get("vat_rate", "20"))
    except ValueError as exc:
        errors.append(FieldError(str(exc), pointer="#/vat_rate"))
        vat_bp = 2000
    brands = _codes_to_ids(session, Brand, [str(data.get("brand"))])
    categories = _codes_to_ids(session, Category, [str(data.get("category"))])
    if str(data.get("brand")) not in brands:
        errors.append(FieldError(f"unknown brand {data.get('brand')!r}", pointer="#/brand"))
    if str(data.get("category")) not in categories:
        errors.append(
            FieldError(f"unknown category {data.get('category')!r}", pointer="#/category")
        )
    variants = list(data.get("variants") or [])
    errors += check_variants(variants)
    errors += check_attributes(session, data.get("attributes") or {})
    skus = [str(v.get("sku")) for v in variants]
    gtins = [str(v["gtin"]) for v in variants if v.get("gtin")]
    errors += _taken(session, skus, gtins)
    if errors:
        raise InvalidInput(f"The product {data.get('code')!r} is invalid.", errors)
    if session.scalar(select(Product.id).where(Product.code == data["code"])):
        raise Conflict(f"A product with the code {data['code']!r} already exists.")
    product = Product(
        id=new_id(),
        code=data["code"],
        brand_id=brands[str(data["brand"])],
        category_id=categories[str(data["category"])],
        vat_rate_bp=vat_bp,
        name_fr=data["name_fr"].strip(),
        name_en=str(data.get("name_en") or "").strip(),
        description_fr=str(data.get("description_fr") or ""),
        description_en=str(data.get("description_en") or ""),
        attributes=dict(data.get("attributes") or {}),
        created_at=now,
        updated_at=now,
    )
    session.add(product)
    session.flush()
    _add_variants(session, now, product, variants, start=0)
    for position, media in enumerate(data.get("media") or []):
        session.add(
            Media(
                id=new_id(),
                product_id=product.id,
                url=media["url"],
                alt_fr=media.get("alt_fr", ""),
                alt_en=media.get("alt_en", ""),
                position=position,
            )
        )
    session.flush()
    refresh_search(session, [product.id])
    return get_product(session, product.code)


def _add_variants(
    session: Session,
    now: datetime,
    product: Product,
    variants: Sequence[Mapping[str, Any]],
    start: int,
) -> None:
    for offset, variant in enumerate(variants):
        session.add(
            Variant(
                id=new_id(),
                product_id=product.id,
                sku=variant["sku"],
                gtin=str(variant["gtin"]) if variant.get("gtin") else None,
                options=dict(variant.get("options") or {}),
                position=start + offset,
                created_at=now,
            )
        )
    session.flush()
    inventory.track_skus(session, now, [str(v["sku"]) for v in variants])


UPDATABLE = ("name_fr", "name_en", "description_fr", "description_en")


def update_product(
    session: Session, now: datetime, code: str, changes: Mapping[str, Any]
) -> ProductView:
    """Change a product's texts, VAT rate, brand, category or attributes, and add
    variants (`changes["variants"]`); fields not given stay as they are."""
    product = _product_by_code(session, code)
    errors: list[FieldError] = []
    if "vat_rate" in changes:
        try:
            product.vat_rate_bp = parse_vat_rate(changes["vat_rate"])
        except ValueError as exc:
            errors.append(FieldError(str(exc), pointer="#/vat_rate"))
    for name, model, pointer in (("brand", Brand, "#/brand"), ("category", Category, "#/category")):
        if name in changes:
            found = _codes_to_ids(session, model, [str(changes[name])])
            if not found:
                errors.append(FieldError(f"unknown {name} {changes[name]!r}", pointer=pointer))
            else:
                setattr(product, f"{name}_id", found[str(changes[name])])
    if "attributes" in changes:
        errors += check_attributes(session, changes["attributes"] or {})
    new_variants = list(changes.get("variants") or [])
    errors += check_variants(new_variants)
    errors += _taken(
        session,
        [str(v.get("sku")) for v in new_variants],
        [str(v["gtin"]) for v in new_variants if v.get("gtin")],
    )
    if "name_fr" in changes and not str(changes["name_fr"] or "").strip():
        errors.append(FieldError("a French name is required", pointer="#/name_fr"))
    if errors:
        raise InvalidInput(f"The changes to product {code!r} are invalid.", errors)
    for name in UPDATABLE:
        if name in changes and changes[name] is not None:
            setattr(product, name, str(changes[name]))
    if "attributes" in changes:
        product.attributes = {**product.attributes, **(changes["attributes"] or {})}
    product.updated_at = now
    count = session.scalar(select(func.count()).where(Variant.product_id == product.id)) or 0
    _add_variants(session, now, product, new_variants, start=count)
    refresh_search(session, [product.id])
    return get_product(session, code)


def _product_by_code(session: Session, code: str) -> Product:
    product = session.scalar(select(Product).where(Product.code == code))
    if product is None:
        raise SaidNotFound(NO_PRODUCT, code=repr(code))
    return product


def get_product(session: Session, code: str) -> ProductView:
    """A product with its brand, category, variants, media and channel listings."""
    product = _product_by_code(session, code)
    brand = session.get(Brand, product.brand_id)
    category = session.get(Category, product.category_id)
    assert brand is not None
    assert category is not None
    variants = list(
        session.scalars(
            select(Variant).where(Variant.product_id == product.id).order_by(Variant.position)
        )
    )
    media = list(
        session.scalars(
            select(Media).where(Media.product_id == product.id).order_by(Media.position)
        )
    )
    listings: list[tuple[Channel, ChannelListing]] = [
        (row[0], row[1])
        for row in session.execute(
            select(Channel, ChannelListing)
            .join(ChannelListing, ChannelListing.channel_id == Channel.id)
            .where(ChannelListing.product_id == product.id)
            .order_by(Channel.code)
        )
    ]
    return ProductView(product, brand, category, variants, media, listings)


def list_products(session: Session, cursor: str | None = None, limit: int = 50) -> Page[Product]:
    return paginate(session, select(Product), Product.id, cursor, limit)


def count_products(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Product)) or 0


def count_variants(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Variant)) or 0


def variant_by_sku(session: Session, sku: str) -> Variant:
    variant = session.scalar(select(Variant).where(Variant.sku == sku))
    if variant is None:
        raise SaidNotFound(NO_VARIANT, sku=repr(sku))
    return variant


def known_skus(session: Session, skus: Iterable[str]) -> set[str]:
    """Which of `skus` exist in the catalogue."""
    wanted = sorted(set(skus))
    if not wanted:
        return set()
    return set(session.scalars(select(Variant.sku).where(Variant.sku.in_(wanted))))


def refresh_search(session: Session, product_ids: Sequence[uuid.UUID]) -> None:
    """Recompute the search text of these products and refresh the search index."""
    if not product_ids:
        return
    rows = session.execute(
        select(
            Product.id,
            Product.code,
            Product.name_fr,
            Product.name_en,
            Brand.name,
            Category.name_fr,
            Category.name_en,
        )
        .join(Brand, Brand.id == Product.brand_id)
        .join(Category, Category.id == Product.category_id)
        .where(Product.id.in_(product_ids))
    )
    codes: dict[uuid.UUID, list[str]] = defaultdict(list)
    for product_id, sku, gtin in session.execute(
        select(Variant.product_id, Variant.sku, Variant.gtin).where(
            Variant.product_id.in_(product_ids)
        )
    ):
        codes[product_id] += [sku, gtin or ""]
    texts = {product_id: search_text([*parts, *codes[product_id]]) for product_id, *parts in rows}
    for product_id, text in texts.items():
        session.execute(update(Product).where(Product.id == product_id).values(search_text=text))
    search.reindex(session, list(texts))


# ------------------------------------------------------------------ channels and listings


def add_channel(session: Session, now: datetime, data: Mapping[str, Any]) -> Channel:
    """A new sales channel: code, name, kind, currency, locales, prices_include_vat,
    required_attributes ({locale: [field or attribute codes]})."""
    errors: list[FieldError] = []
    code = data.get("code")
    if not isinstance(code, str) or not CODE_PATTERN.match(code) or len(code) > 32:
        errors.append(FieldError("must be 1-32 letters, digits, '.', '_' or '-'", pointer="#/code"))
    if data.get("kind") not in CHANNEL_KINDS:
        errors.append(FieldError(f"must be one of {', '.join(CHANNEL_KINDS)}", pointer="#/kind"))
    currency = str(data.get("currency", "EUR"))
    try:
        Money(0, currency)
    except ValueError:
        errors.append(FieldError("unknown ISO 4217 currency", pointer="#/currency"))
    locales = list(data.get("locales") or ["fr"])
    for locale in locales:
        if locale not in LOCALES:
            errors.append(FieldError(f"unsupported locale {locale!r}", pointer="#/locales"))
    required = dict(data.get("required_attributes") or {})
    for locale in required:
        if locale not in locales:
            errors.append(
                FieldError(
                    f"locale {locale!r} is not one of the channel's",
                    pointer="#/required_attributes",
                )
            )
    storefront = data.get("storefront_url") or None
    if storefront is not None and not _is_base_url(str(storefront)):
        errors.append(
            FieldError(
                "must be an http(s) URL such as https://www.example.fr, at most 300 characters",
                pointer="#/storefront_url",
            )
        )
    if errors:
        raise InvalidInput("The channel is invalid.", errors)
    if session.scalar(select(Channel.id).where(Channel.code == code)):
        raise Conflict(f"A channel with the code {code!r} already exists.")
    channel = Channel(
        id=new_id(),
        code=code,
        name=str(data.get("name") or code),
        kind=data["kind"],
        currency=currency,
        locales=locales,
        prices_include_vat=bool(data.get("prices_include_vat", True)),
        required_attributes={k: list(v) for k, v in required.items()},
        storefront_url=str(storefront).rstrip("/") if storefront else None,
        created_at=now,
    )
    session.add(channel)
    session.flush()
    return channel


def _is_base_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(value) <= 300


def list_channels(session: Session) -> list[Channel]:
    return list(session.scalars(select(Channel).order_by(Channel.code)))


def get_channel(session: Session, code: str) -> Channel:
    channel = session.scalar(select(Channel).where(Channel.code == code))
    if channel is None:
        raise SaidNotFound(NO_CHANNEL, code=repr(code))
    return channel


def set_listing(
    session: Session,
    now: datetime,
    product_code: str,
    channel_code: str,
    published: bool,
    visible_from: datetime | None = None,
    visible_to: datetime | None = None,
) -> ChannelListing:
    """List (or unlist) a product on a channel, visible within [from, to) when given."""
    if visible_from and visible_to and visible_to <= visible_from:
        raise InvalidInput(
            "The listing would never be visible.",
            [FieldError("must be after visible_from", pointer="#/visible_to")],
        )
    product, channel, listing = _listing(session, product_code, channel_code)
    if listing is None:
        listing = ChannelListing(id=new_id(), product_id=product.id, channel_id=channel.id)
        session.add(listing)
    listing.published = published
    listing.visible_from = visible_from
    listing.visible_to = visible_to
    listing.updated_at = now
    session.flush()
    return listing


def _listing(
    session: Session, product_code: str, channel_code: str
) -> tuple[Product, Channel, ChannelListing | None]:
    """The product, the channel and the product's listing there (None when not listed)."""
    product = _product_by_code(session, product_code)
    channel = get_channel(session, channel_code)
    listing = session.scalar(
        select(ChannelListing).where(
            ChannelListing.product_id == product.id, ChannelListing.channel_id == channel.id
        )
    )
    return product, channel, listing


LISTING_TEXTS = ("name_fr", "name_en", "description_fr", "description_en")


def set_listing_texts(
    session: Session,
    now: datetime,
    product_code: str,
    channel_code: str,
    texts: Mapping[str, str | None],
) -> ChannelListing:
    """Give a listed product its own name or description on one channel (`texts` maps
    `name_fr`, `name_en`, `description_fr`, `description_en` to a text, or to None to show
    the product's own text again); fields not given stay as they are."""
    errors = [
        FieldError("unknown field", pointer=f"#/{name}")
        for name in texts
        if name not in LISTING_TEXTS
    ]
    for name, value in texts.items():
        if value is not None and not value.strip():
            errors.append(FieldError("must not be blank; null removes it", pointer=f"#/{name}"))
        elif value is not None and name.startswith("name_") and len(value) > 200:
            errors.append(FieldError("must hold at most 200 characters", pointer=f"#/{name}"))
    if errors:
        raise InvalidInput("The listing texts are invalid.", errors)
    _, _, listing = _listing(session, product_code, channel_code)
    if listing is None:
        raise SaidNotFound(NOT_LISTED, product=repr(product_code), channel=repr(channel_code))
    for name, value in texts.items():
        setattr(listing, name, value.strip() if value is not None else None)
    listing.updated_at = now
    session.flush()
    return listing


def visible_listing(at: datetime) -> Any:
    """SQL condition: a listing published and inside its visibility window at `at`."""
    return and_(
        ChannelListing.published.is_(True),
        or_(ChannelListing.visible_from.is_(None), ChannelListing.visible_from <= at),
        or_(ChannelListing.visible_to.is_(None), ChannelListing.visible_to > at),
    )


# ------------------------------------------------------------------ prices


@dataclass(frozen=True)
class PriceQuote:
    """The price of one variant on a channel (and store) at a time, in minor units."""

    sku: str
    channel: str
    store_id: uuid.UUID | None
    currency: str
    vat_rate_bp: int
    regular_incl_vat: int
    regular_excl_vat: int
    incl_vat: int  # what the customer pays now: the sale amount while the sale runs
    excl_vat: int
    on_sale: bool
    valid_from: datetime
    sale_to: datetime | None


def vat_split(amount: int, currency: str, includes_vat: bool, vat_bp: int) -> tuple[int, int]:
    """(VAT-inclusive, VAT-exclusive) amounts from one of them, half-to-even rounded."""
    money = Money(amount, currency)
    factor = Decimal(10_000 + vat_bp) / Decimal(10_000)
    if includes_vat:
        return amount, money.multiply(Decimal(1) / factor).amount
    return money.multiply(factor).amount, amount


def _check_amount(value: Any, pointer: str) -> list[FieldError]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [FieldError("must be a whole number of cents", pointer=pointer)]
    if value < 0:
        return [FieldError("must not be negative", pointer=pointer)]
    return []


def set_price(
    session: Session,
    now: datetime,
    sku: str,
    channel_code: str,
    amount: Any,
    *,
    store_id: uuid.UUID | None = None,
    valid_from: datetime | None = None,
    sale_amount: Any = None,
    sale_from: datetime | None = None,
    sale_to: datetime | None = None,
) -> Price:
    """Record a new price (never overwrites: the history keeps every decision).

    `amount` is in minor units of the channel's currency, VAT included if the channel
    shows prices VAT included; it applies from `valid_from` (default: now).
    """
    errors = _check_amount(amount, "#/amount")
    if sale_amount is not None:
        errors += _check_amount(sale_amount, "#/sale_amount")
        if not errors and sale_amount >= amount:
            errors.append(
                FieldError("a sale price is below the regular price", pointer="#/sale_amount")
            )
    if sale_from and sale_to and sale_to <= sale_from:
        errors.append(FieldError("must be after sale_from", pointer="#/sale_to"))
    if errors:
        raise InvalidInput("The price is invalid.", errors)
    variant = variant_by_sku(session, sku)
    channel = get_channel(session, channel_code)
    price = Price(
        id=new_id(),
        variant_id=variant.id,
        channel_id=channel.id,
        store_id=store_id,
        currency=channel.currency,
        amount=amount,
        includes_vat=channel.prices_include_vat,
        sale_amount=sale_amount,
        sale_from=sale_from,
        sale_to=sale_to,
        valid_from=valid_from or now,
        created_at=now,
    )
    session.add(price)
    session.flush()
    return price


def _sale_running(price: Price, at: datetime) -> bool:
    return (
        price.sale_amount is not None
        and (price.sale_from is None or price.sale_from <= at)
        and (price.sale_to is None or at < price.sale_to)
    )


def quote(price: Price, sku: str, channel: str, vat_bp: int, at: datetime) -> PriceQuote:
    """The customer-facing figures of one price row at `at`."""
    regular_incl, regular_excl = vat_split(price.amount, price.currency, price.includes_vat, vat_bp)
    on_sale = _sale_running(price, at)
    incl, excl = regular_incl, regular_excl
    if on_sale:
        assert price.sale_amount is not None
        incl, excl = vat_split(price.sale_amount, price.currency, price.includes_vat, vat_bp)
    return PriceQuote(
        sku=sku,
        channel=channel,
        store_id=price.store_id,
        currency=price.currency,
        vat_rate_bp=vat_bp,
        regular_incl_vat=regular_incl,
        regular_excl_vat=regular_excl,
        incl_vat=incl,
        excl_vat=excl,
        on_sale=on_sale,
        valid_from=price.valid_from,
        sale_to=price.sale_to if on_sale else None,
    )


def current_price(
    session: Session, sku: str, channel_code: str, at: datetime, store_id: uuid.UUID | None = None
) -> PriceQuote:
    """The price in force at `at`: the latest row valid by then, a store's own price
    winning over the channel's when `store_id` is given."""
    variant = variant_by_sku(session, sku)
    channel = get_channel(session, channel_code)
    stores = [None] if store_id is None else [store_id, None]
    for store in stores:
        price = session.scalar(
            select(Price)
            .where(
                Price.variant_id == variant.id,
                Price.channel_id == channel.id,
                Price.store_id.is_(None) if store is None else Price.store_id == store,
                Price.valid_from <= at,
            )
            .order_by(Price.valid_from.desc(), Price.id.desc())
            .limit(1)
        )
        if price is not None:
            vat_bp = session.scalar(
                select(Product.vat_rate_bp).where(Product.id == variant.product_id)
            )
            return quote(price, sku, channel_code, vat_bp or 2000, at)
    raise NotFound(f"SKU {sku!r} has no price on channel {channel_code!r} at {at.isoformat()}.")


def current_vat_rate(session: Session, sku: str) -> int:
    """The VAT rate (basis points) of the product a SKU belongs to."""
    variant = variant_by_sku(session, sku)
    rate = session.scalar(select(Product.vat_rate_bp).where(Product.id == variant.product_id))
    return rate or 2000


def price_history(
    session: Session, sku: str, channel_code: str | None = None
) -> list[tuple[Price, str]]:
    """Every price decision of a SKU (newest first), with its channel code."""
    variant = variant_by_sku(session, sku)
    stmt = (
        select(Price, Channel.code)
        .join(Channel, Channel.id == Price.channel_id)
        .where(Price.variant_id == variant.id)
        .order_by(Price.valid_from.desc(), Price.id.desc())
    )
    if channel_code is not None:
        stmt = stmt.where(Channel.code == channel_code)
    return list(session.execute(stmt))


def current_prices_stmt(
    channel_id: uuid.UUID, at: datetime, skus: Sequence[str] | None = None
) -> Select[Any]:
    """SQL: the channel-wide (no store) price row in force at `at`, one per variant
    (`variant_id`, `amount`, `sale_amount`, `sale_from`, `sale_to`, `includes_vat`);
    of the variants of `skus` only when given (so a basket's prices read a few rows,
    not the whole price list)."""
    ranked = select(
        Price.variant_id,
        Price.amount,
        Price.sale_amount,
        Price.sale_from,
        Price.sale_to,
        Price.includes_vat,
        func.row_number()
        .over(
            partition_by=Price.variant_id,
            order_by=(Price.valid_from.desc(), Price.id.desc()),
        )
        .label("rank"),
    ).where(Price.channel_id == channel_id, Price.store_id.is_(None), Price.valid_from <= at)
    if skus is not None:
        wanted = select(Variant.id).where(Variant.sku.in_(list(skus)))
        ranked = ranked.where(Price.variant_id.in_(wanted))
    current = ranked.subquery()
    return select(current).where(current.c.rank == 1)


def current_prices(
    session: Session, channel_code: str, at: datetime, skus: Sequence[str] | None = None
) -> dict[str, PriceQuote]:
    """The channel-wide price in force at `at` of many SKUs at once (one query)."""
    channel = get_channel(session, channel_code)
    current = current_prices_stmt(channel.id, at, skus).subquery()
    stmt = (
        select(Variant.sku, Product.vat_rate_bp, current)
        .join(Variant, Variant.id == current.c.variant_id)
        .join(Product, Product.id == Variant.product_id)
    )
    if skus is not None:
        stmt = stmt.where(Variant.sku.in_(list(skus)))
    out = {}
    for row in session.execute(stmt):
        price = Price(
            amount=row.amount,
            currency=channel.currency,
            includes_vat=row.includes_vat,
            sale_amount=row.sale_amount,
            sale_from=row.sale_from,
            sale_to=row.sale_to,
            valid_from=at,
        )
        out[row.sku] = quote(price, row.sku, channel_code, row.vat_rate_bp, at)
    return out


# ------------------------------------------------------------------ completeness


@dataclass(frozen=True)
class Completeness:
    """How ready a product is for one channel in one locale (score 0-100)."""

    product_code: str
    channel: str
    locale: str
    score: int
    missing: list[str]


def required_fields(channel: Channel, locale: str) -> list[str]:
    return list(channel.required_attributes.get(locale) or DEFAULT_REQUIRED)


def completeness(
    session: Session, product_codes: Sequence[str], channel_code: str | None, at: datetime
) -> list[Completeness]:
    """Completeness of products per channel x locale (all channels when None).

    A fixed number of queries whatever the number of products.
    """
    products = list(session.scalars(select(Product).where(Product.code.in_(list(product_codes)))))
    missing_codes = set(product_codes) - {p.code for p in products}
    if missing_codes:
        raise NotFound(f"No product has the code {sorted(missing_codes)[0]!r}.")
    channels = [get_channel(session, channel_code)] if channel_code else list_channels(session)
    facts = _completeness_facts(session, [p.id for p in products], channels, at)
    out = []
    for product in products:
        for channel in channels:
            for locale in channel.locales:
                required = required_fields(channel, locale)
                missing = [
                    name for name in required if not _has(product, name, locale, facts, channel.id)
                ]
                score = (
                    100 if not required else (100 * (len(required) - len(missing))) // len(required)
                )
                out.append(Completeness(product.code, channel.code, locale, score, missing))
    return out


@dataclass
class _Facts:
    variants: dict[uuid.UUID, int]
    without_gtin: dict[uuid.UUID, int]
    media: dict[uuid.UUID, list[Media]]
    priced: dict[tuple[uuid.UUID, uuid.UUID], int]


def _completeness_facts(
    session: Session, product_ids: list[uuid.UUID], channels: list[Channel], at: datetime
) -> _Facts:
    variants = _pairs(
        session.execute(
            select(Variant.product_id, func.count())
            .where(Variant.product_id.in_(product_ids))
            .group_by(Variant.product_id)
        )
    )
    without_gtin = _pairs(
        session.execute(
            select(Variant.product_id, func.count())
            .where(Variant.product_id.in_(product_ids), Variant.gtin.is_(None))
            .group_by(Variant.product_id)
        )
    )
    media: dict[uuid.UUID, list[Media]] = defaultdict(list)
    for item in session.scalars(select(Media).where(Media.product_id.in_(product_ids))):
        media[item.product_id].append(item)
    priced: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
    for channel in channels:
        current = current_prices_stmt(channel.id, at).subquery()
        for product_id, n in session.execute(
            select(Variant.product_id, func.count())
            .join(current, current.c.variant_id == Variant.id)
            .where(Variant.product_id.in_(product_ids))
            .group_by(Variant.product_id)
        ):
            priced[(product_id, channel.id)] = n
    return _Facts(variants, without_gtin, media, priced)


def _has(product: Product, name: str, locale: str, facts: _Facts, channel_id: uuid.UUID) -> bool:
    if name == "name":
        return bool(getattr(product, f"name_{locale}", "").strip())
    if name == "description":
        return bool(getattr(product, f"description_{locale}", "").strip())
    if name == "media":
        return bool(facts.media.get(product.id))
    if name == "media_alt":
        items = facts.media.get(product.id) or []
        return bool(items) and all(getattr(m, f"alt_{locale}") for m in items)
    if name == "gtin":
        return facts.variants.get(product.id, 0) > 0 and not facts.without_gtin.get(product.id)
    if name == "price":
        count = facts.variants.get(product.id, 0)
        return count > 0 and facts.priced.get((product.id, channel_id), 0) == count
    value = product.attributes.get(name)
    if isinstance(value, dict):
        return bool(str(value.get(locale) or "").strip())
    return value is not None and value != ""


def _pairs(rows: Iterable[Any]) -> dict[Any, Any]:
    """A dict from two-column result rows."""
    return {row[0]: row[1] for row in rows}


def add_listings(session: Session, now: datetime, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert many new listings at once (bulk path, for imports and the demo): each row
    has product_code, channel, published, visible_from, visible_to."""
    if not rows:
        return 0
    products = _pairs(
        session.execute(
            select(Product.code, Product.id).where(
                Product.code.in_(sorted({r["product_code"] for r in rows}))
            )
        )
    )
    channels = {c.code: c.id for c in list_channels(session)}
    prepared = [
        {
            "id": new_id(),
            "product_id": products[r["product_code"]],
            "channel_id": channels[r["channel"]],
            "published": bool(r.get("published", True)),
            "visible_from": r.get("visible_from"),
            "visible_to": r.get("visible_to"),
            "updated_at": now,
        }
        for r in rows
    ]
    session.execute(bulk_insert(ChannelListing), prepared)
    return len(prepared)
