"""The product catalogue: brands, categories, products and variants, typed attributes,
media, sales channels with their listings, and an append-only price history.

Texts are per-locale columns (`name_fr`, `name_en`…) rather than a translations table:
Parcours speaks exactly French and English, every product needs both, and one row per
product keeps reads, imports (one CSV row per variant) and the search index single-pass.
A third language would be a migration, which we accept for that simplicity.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, JSONType, UTCDateTime, UUIDType
from parcours.core.ids import new_id


class Brand(Base):
    __tablename__ = "catalog_brands"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class Category(Base):
    """A node of the category tree (`parent_id` is None at the roots)."""

    __tablename__ = "catalog_categories"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        UUIDType, ForeignKey("catalog_categories.id"), nullable=True, index=True
    )
    name_fr: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))


class Attribute(Base):
    """A typed product attribute: text, number, boolean or enum.

    `allowed_values` (enum only) is a list of `{"code", "fr", "en"}`; a `localized` text
    attribute holds one value per locale (`{"fr": …, "en": …}`).
    """

    __tablename__ = "catalog_attributes"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name_fr: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    localized: Mapped[bool] = mapped_column(Boolean, default=False)
    allowed_values: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)


class Product(Base):
    """A product as customers know it; what is sold and stocked are its variants.

    `vat_rate_bp` is the French VAT rate in basis points (2000 = 20 %); `attributes`
    maps attribute codes to values checked against `Attribute`; `search_text` is the
    normalised text the search index reads (names, codes, SKUs, GTINs).
    """

    __tablename__ = "products"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    brand_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("catalog_brands.id"), index=True
    )
    category_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("catalog_categories.id"), index=True
    )
    vat_rate_bp: Mapped[int] = mapped_column(Integer, default=2000)
    name_fr: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    description_fr: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Variant(Base):
    """A sellable, stockable unit: one SKU, an optional GTIN, its option values
    (`{"size": "M", "colour": "lavande"}`)."""

    __tablename__ = "product_variants"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    gtin: Mapped[str | None] = mapped_column(String(14), nullable=True, index=True)
    options: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Media(Base):
    __tablename__ = "product_media"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(500))
    alt_fr: Mapped[str] = mapped_column(String(200), default="")
    alt_en: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)


class Channel(Base):
    """A sales channel (web shop, app, stores, call centre, marketplace, social).

    `required_attributes` maps a locale to the fields a product needs there to be
    complete (built-in fields such as `name` or `price`, or attribute codes).
    """

    __tablename__ = "channels"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    locales: Mapped[list[str]] = mapped_column(JSONType, default=list)
    prices_include_vat: Mapped[bool] = mapped_column(Boolean, default=True)
    required_attributes: Mapped[dict[str, list[str]]] = mapped_column(JSONType, default=dict)
    # Where the channel's shop lives ("https://www.maison-lavande.example"): product feeds
    # build their links from it. None for channels without a storefront (stores, call centre).
    storefront_url: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelListing(Base):
    """Whether a product is offered on a channel, and when (UTC window, open-ended).

    The optional texts override the product's name and description on this channel only
    (None: the product's own text); the one-voice rules say whether a channel may.
    """

    __tablename__ = "channel_listings"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    product_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("products.id", ondelete="CASCADE")
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("channels.id"), index=True)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    visible_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    visible_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    name_fr: Mapped[str | None] = mapped_column(String(200), nullable=True)
    name_en: Mapped[str | None] = mapped_column(String(200), nullable=True)
    description_fr: Mapped[str | None] = mapped_column(Text, nullable=True)
    description_en: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("product_id", "channel_id"),)


class OneVoiceRule(Base):
    """How far a channel may differ from its reference channel before the one-voice
    report flags it.

    A price difference is allowed when it is within `price_tolerance_cents` (minor
    units) or within `price_tolerance_bp` of the reference price (basis points:
    500 = 5 %), whichever allows more; both 0 means prices must be equal. A channel
    without a rule is held to the strictest one against the report's reference.
    """

    __tablename__ = "catalog_one_voice_rules"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    channel_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("channels.id"), unique=True)
    reference_channel_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("channels.id"))
    price_tolerance_bp: Mapped[int] = mapped_column(Integer, default=0)
    price_tolerance_cents: Mapped[int] = mapped_column(Integer, default=0)
    allow_name_override: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_description_override: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_must_match: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Price(Base):
    """One price decision, never updated: the price of a variant on a channel (and
    optionally in one store) from `valid_from` on, until a later row replaces it.

    `amount` is in minor units of `currency`, VAT included when `includes_vat` (copied
    from the channel); an optional sale amount applies within [sale_from, sale_to).
    """

    __tablename__ = "prices"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    variant_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("product_variants.id", ondelete="CASCADE")
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("channels.id"))
    store_id: Mapped[uuid.UUID | None] = mapped_column(
        UUIDType, ForeignKey("stores.id"), nullable=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    includes_vat: Mapped[bool] = mapped_column(Boolean, default=True)
    sale_amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sale_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sale_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_prices_variant_channel_from", "variant_id", "channel_id", "valid_from"),
    )
