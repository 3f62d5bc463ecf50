"""API shapes of the catalogue. Amounts are integers in minor units (cents)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt


class VariantIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    gtin: str | None = Field(default=None, description="GTIN-8/12/13/14, check digit verified")
    options: dict[str, str] = Field(default_factory=dict, examples=[{"size": "M"}])


class MediaIn(BaseModel):
    url: str = Field(min_length=1, max_length=500)
    alt_fr: str = ""
    alt_en: str = ""


class ProductIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    brand: str = Field(description="brand code")
    category: str = Field(description="category code")
    vat_rate: str = Field(
        default="20", description="French VAT rate in percent: 20, 10, 5.5 or 2.1"
    )
    name_fr: str
    name_en: str = ""
    description_fr: str = ""
    description_en: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    variants: list[VariantIn] = Field(default_factory=list)
    media: list[MediaIn] = Field(default_factory=list)


class ProductPatch(BaseModel):
    brand: str | None = None
    category: str | None = None
    vat_rate: str | None = None
    name_fr: str | None = None
    name_en: str | None = None
    description_fr: str | None = None
    description_en: str | None = None
    attributes: dict[str, Any] | None = None
    variants: list[VariantIn] = Field(default_factory=list, description="variants to add")


class VariantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    gtin: str | None
    options: dict[str, str]


class MediaOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    url: str
    alt_fr: str
    alt_en: str
    position: int


class ListingOut(BaseModel):
    channel: str
    published: bool
    visible_from: datetime | None
    visible_to: datetime | None
    name_fr: str | None = Field(default=None, description="the channel's own name, if any")
    name_en: str | None = None
    description_fr: str | None = None
    description_en: str | None = None


class ListingTextsIn(BaseModel):
    """The channel's own texts; a field set to null shows the product's text again, a
    field left out stays as it is."""

    name_fr: str | None = Field(default=None, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    description_fr: str | None = None
    description_en: str | None = None


class VoiceRuleIn(BaseModel):
    reference: str = Field(description="the channel this one must agree with")
    price_tolerance_bp: StrictInt = Field(
        default=0, ge=0, le=10_000, description="basis points of the reference price: 500 = 5 %"
    )
    price_tolerance_cents: StrictInt = Field(default=0, ge=0, description="minor units")
    allow_name_override: bool = False
    allow_description_override: bool = False
    availability_must_match: bool = True


class VoiceRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    reference: str
    price_tolerance_bp: int
    price_tolerance_cents: int
    allow_name_override: bool
    allow_description_override: bool
    availability_must_match: bool


class VoiceFindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_code: str
    product_name: str
    field: str = Field(description="name, description, price or availability")
    rule: str = Field(
        description="no_name_override, no_description_override, price_tolerance or "
        "availability_must_match"
    )
    channel: str
    reference: str
    channel_value: str | int
    reference_value: str | int
    locale: str | None
    sku: str | None
    currency: str | None
    includes_vat: bool | None
    fix: str | None
    fix_channel: str | None


class VoiceReportOut(BaseModel):
    default_reference: str | None
    rules: list[VoiceRuleOut]
    products_checked: int
    total: int
    findings: list[VoiceFindingOut]


class ProductOut(BaseModel):
    id: uuid.UUID
    code: str
    brand: str
    category: str
    vat_rate: str
    name_fr: str
    name_en: str
    description_fr: str
    description_en: str
    attributes: dict[str, Any]
    variants: list[VariantOut]
    media: list[MediaOut]
    listings: list[ListingOut]
    created_at: datetime
    updated_at: datetime


class ProductSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name_fr: str
    name_en: str
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[ProductSummary]
    next_cursor: str | None


class ChannelIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    name: str = ""
    kind: str = Field(description="web, app, store, call_centre, marketplace or social")
    currency: str = "EUR"
    locales: list[str] = Field(default_factory=lambda: ["fr"])
    prices_include_vat: bool = True
    required_attributes: dict[str, list[str]] = Field(
        default_factory=dict, examples=[{"fr": ["name", "description", "price", "media"]}]
    )
    storefront_url: str | None = Field(
        default=None,
        max_length=300,
        description="the shop's base URL; product feeds link to <storefront_url>/<locale>/p/<code>",
        examples=["https://www.maison-lavande.example"],
    )


class ChannelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    kind: str
    currency: str
    locales: list[str]
    prices_include_vat: bool
    required_attributes: dict[str, list[str]]
    storefront_url: str | None


class ListingIn(BaseModel):
    published: bool
    visible_from: AwareDatetime | None = None
    visible_to: AwareDatetime | None = None


class BrandIn(BaseModel):
    code: str
    name: str


class CategoryIn(BaseModel):
    code: str
    name_fr: str
    name_en: str
    parent: str | None = Field(default=None, description="parent category code")


class AttributeIn(BaseModel):
    code: str
    kind: str = Field(description="text, number, boolean or enum")
    name_fr: str
    name_en: str
    localized: bool = False
    allowed_values: list[dict[str, str]] = Field(default_factory=list)


class CodeOut(BaseModel):
    code: str


class PriceIn(BaseModel):
    sku: str
    channel: str
    amount: StrictInt = Field(description="minor units; VAT included if the channel says so")
    store: str | None = Field(default=None, description="store code for a store's own price")
    valid_from: AwareDatetime | None = None
    sale_amount: StrictInt | None = None
    sale_from: AwareDatetime | None = None
    sale_to: AwareDatetime | None = None


class PriceQuoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    channel: str
    store_id: uuid.UUID | None
    currency: str
    vat_rate_bp: int
    regular_incl_vat: int
    regular_excl_vat: int
    incl_vat: int
    excl_vat: int
    on_sale: bool
    valid_from: datetime
    sale_to: datetime | None


class PriceRecordOut(BaseModel):
    channel: str
    store_id: uuid.UUID | None
    currency: str
    amount: int
    includes_vat: bool
    sale_amount: int | None
    sale_from: datetime | None
    sale_to: datetime | None
    valid_from: datetime
    created_at: datetime


class CompletenessOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    locale: str
    score: int
    missing: list[str]


class HitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name_fr: str
    name_en: str
    brand: str
    category: str
    from_price: int | None


class FacetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    value: str
    count: int


class SearchOut(BaseModel):
    total: int
    hits: list[HitOut]
    facets: dict[str, list[FacetOut]]
    price_channel: str | None


class RowErrorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    row: int
    column: str
    message: str


class ImportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rows: int
    products: int
    variants: int
    prices: int
    rejected_rows: int
    errors: list[RowErrorOut]


class FeedProblemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="the item id (SKU)")
    field: str
    message: str
    refused: bool = Field(description="true: the item was left out of the feed")


class FeedReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    items: int
    refused: int
    problems: list[FeedProblemOut]
