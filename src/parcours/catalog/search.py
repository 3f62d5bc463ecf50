"""Product search by name, code, SKU or GTIN, with facets.

Both databases index the same normalised text (`products.search_text`: lower-case,
accent-free words, see `service.tokens`): SQLite through an FTS5 virtual table
(`catalog_search`), PostgreSQL through a GIN index on `to_tsvector('simple',
search_text)`. Queries are turned into the same thing on both (all words must match,
the last one as a prefix) and results are ordered by product code, so both answer alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    MetaData,
    Select,
    Table,
    Text,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session

from parcours.catalog.models import (
    Brand,
    Category,
    Channel,
    ChannelListing,
    Product,
    Variant,
)
from parcours.core.db import UUIDType, insert_values_sqlite

# The FTS5 table lives outside Base.metadata: it is SQLite-only DDL in the migration.
_fts_metadata = MetaData()
catalog_search = Table(
    "catalog_search", _fts_metadata, Column("product_id", UUIDType), Column("body", Text)
)

CHUNK = 500
PRICE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-20", 0, 2_000),
    ("20-50", 2_000, 5_000),
    ("50-100", 5_000, 10_000),
    ("100-200", 10_000, 20_000),
    ("200+", 20_000, None),
)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def reindex(session: Session, product_ids: Sequence[uuid.UUID], *, new: bool = False) -> None:
    """Bring the search index up to date for these products (their `search_text`);
    `new`: they were just created, so they have no entry to replace."""
    if _dialect(session) != "sqlite":
        return  # PostgreSQL's GIN index follows the column by itself
    for start in range(0, len(product_ids), CHUNK):
        chunk = list(product_ids[start : start + CHUNK])
        if not new:
            # product_id is not indexed in the FTS table: this scans the whole index.
            session.execute(delete(catalog_search).where(catalog_search.c.product_id.in_(chunk)))
        session.execute(
            insert(catalog_search).from_select(
                ["product_id", "body"],
                select(Product.id, Product.search_text).where(Product.id.in_(chunk)),
            )
        )


def index_new(session: Session, texts: Mapping[uuid.UUID, str]) -> None:
    """Index products just created, from their `search_text` as given (no read back:
    a bulk import already holds them)."""
    if _dialect(session) != "sqlite" or not texts:
        return
    insert_values_sqlite(
        session, catalog_search, {"product_id": list(texts), "body": list(texts.values())}
    )


def rebuild_index(session: Session) -> None:
    """Rebuild the whole search index (after a bulk import)."""
    if _dialect(session) != "sqlite":
        return
    session.execute(delete(catalog_search))
    session.execute(
        insert(catalog_search).from_select(
            ["product_id", "body"], select(Product.id, Product.search_text)
        )
    )


def _matching_ids(session: Session, words: list[str]) -> Select[Any]:
    if _dialect(session) == "sqlite":
        phrase = " ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*'
        return select(catalog_search.c.product_id).where(
            text("catalog_search MATCH :fts").bindparams(fts=phrase.strip())
        )
    query = " & ".join([*words[:-1], f"{words[-1]}:*"])
    return select(Product.id).where(
        text(
            "to_tsvector('simple', products.search_text) @@ to_tsquery('simple', :tsq)"
        ).bindparams(tsq=query)
    )


@dataclass(frozen=True)
class Hit:
    code: str
    name_fr: str
    name_en: str
    brand: str
    category: str
    from_price: int | None  # lowest regular price on the price channel, minor units


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, list[FacetValue]]
    price_channel: str | None


def _band_of(amount: Any) -> Any:
    whens = [(amount < upper, name) for name, _lower, upper in PRICE_BANDS if upper is not None]
    return case(*whens, else_=PRICE_BANDS[-1][0])


def search_products(
    session: Session,
    query: str,
    at: datetime,
    *,
    brand: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    price_band: str | None = None,
    price_channel: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchResult:
    """Products matching `query` (name, code, SKU, GTIN; empty: all) and the filters.

    Facets count products per brand, category, channel (visible listing at `at`) and
    price band (lowest regular price on `price_channel`, by default the `channel`
    filter, else "web"); each facet ignores its own filter, so other values stay
    selectable.
    """
    from parcours.catalog.service import tokens

    words = tokens(query)
    pricing_code = price_channel or channel or "web"
    pricing = session.scalar(select(Channel).where(Channel.code == pricing_code))
    prices = _lowest_prices(pricing.id, at) if pricing is not None else None
    band = _band_of(prices.c.amount) if prices is not None else None

    def base(skip: str | None = None) -> Select[Any]:
        stmt = select(Product.id).select_from(Product)
        if words:
            stmt = stmt.where(Product.id.in_(_matching_ids(session, words)))
        if brand and skip != "brand":
            stmt = stmt.where(
                Product.brand_id == select(Brand.id).where(Brand.code == brand).scalar_subquery()
            )
        if category and skip != "category":
            stmt = stmt.where(Product.category_id.in_(_category_and_descendants(session, category)))
        if channel and skip != "channel":
            stmt = stmt.where(_listed_on(channel, at))
        if price_band and skip != "price_band" and prices is not None and band is not None:
            stmt = stmt.join(prices, prices.c.product_id == Product.id).where(band == price_band)
        return stmt

    matching = base().subquery()
    total = session.scalar(select(func.count()).select_from(matching)) or 0
    hits_stmt = (
        select(
            Product.code,
            Product.name_fr,
            Product.name_en,
            Brand.name,
            Category.code,
            prices.c.amount if prices is not None else text("NULL"),
        )
        .join(Brand, Brand.id == Product.brand_id)
        .join(Category, Category.id == Product.category_id)
        .where(Product.id.in_(select(matching.c.id)))
        .order_by(Product.code)
        .limit(limit)
        .offset(offset)
    )
    if prices is not None:
        hits_stmt = hits_stmt.outerjoin(prices, prices.c.product_id == Product.id)
    hits = [Hit(*row) for row in session.execute(hits_stmt)]
    facets = {
        "brand": _facet(session, base("brand"), Brand.code, Product.brand_id == Brand.id, Brand),
        "category": _facet(
            session, base("category"), Category.code, Product.category_id == Category.id, Category
        ),
        "channel": _channel_facet(session, base("channel"), at),
        "price_band": _band_facet(session, base("price_band"), prices, band)
        if prices is not None and band is not None
        else [],
    }
    return SearchResult(total, hits, facets, pricing.code if pricing is not None else None)


def _lowest_prices(channel_id: uuid.UUID, at: datetime) -> Any:
    from parcours.catalog.service import current_prices_stmt

    current = current_prices_stmt(channel_id, at).subquery()
    return (
        select(Variant.product_id.label("product_id"), func.min(current.c.amount).label("amount"))
        .join(current, current.c.variant_id == Variant.id)
        .group_by(Variant.product_id)
        .subquery()
    )


def _category_and_descendants(session: Session, code: str) -> list[uuid.UUID]:
    rows = session.execute(select(Category.id, Category.parent_id, Category.code))
    children: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    root = None
    for category_id, parent_id, category_code in rows:
        children.setdefault(parent_id, []).append(category_id)
        if category_code == code:
            root = category_id
    if root is None:
        return []
    found, todo = [], [root]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _listed_on(channel_code: str, at: datetime) -> Any:
    from parcours.catalog.service import visible_listing

    return exists(
        select(ChannelListing.id)
        .join(Channel, Channel.id == ChannelListing.channel_id)
        .where(
            ChannelListing.product_id == Product.id,
            Channel.code == channel_code,
            visible_listing(at),
        )
    )


def _facet(
    session: Session, base: Select[Any], label: Any, on: Any, model: type[Brand] | type[Category]
) -> list[FacetValue]:
    ids = base.subquery()
    stmt = (
        select(label, func.count())
        .select_from(Product)
        .join(model, on)
        .where(Product.id.in_(select(ids.c.id)))
        .group_by(label)
        .order_by(func.count().desc(), label)
    )
    return [FacetValue(value, n) for value, n in session.execute(stmt)]


def _channel_facet(session: Session, base: Select[Any], at: datetime) -> list[FacetValue]:
    from parcours.catalog.service import visible_listing

    ids = base.subquery()
    stmt = (
        select(Channel.code, func.count())
        .select_from(ChannelListing)
        .join(Channel, Channel.id == ChannelListing.channel_id)
        .where(ChannelListing.product_id.in_(select(ids.c.id)), visible_listing(at))
        .group_by(Channel.code)
        .order_by(Channel.code)
    )
    return [FacetValue(value, n) for value, n in session.execute(stmt)]


def _band_facet(session: Session, base: Select[Any], prices: Any, band: Any) -> list[FacetValue]:
    ids = base.subquery()
    stmt = (
        select(band.label("band"), func.count())
        .select_from(prices)
        .where(prices.c.product_id.in_(select(ids.c.id)))
        .group_by(band)
    )
    counts = {row[0]: row[1] for row in session.execute(stmt)}
    return [FacetValue(name, counts[name]) for name, _l, _u in PRICE_BANDS if name in counts]
