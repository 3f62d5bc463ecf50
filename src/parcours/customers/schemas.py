"""API shapes of customer profiles."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_number: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    birth_date: date | None
    postcode: str | None
    city: str | None
    country: str
    locale: str
    preferred_store_id: uuid.UUID | None
    created_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None


class AmountOut(BaseModel):
    amount: int = Field(description="minor units (cents for EUR)")
    currency: str


class StoreRef(BaseModel):
    id: uuid.UUID
    name: str | None


class TraitOut(BaseModel):
    value: Any
    source: str = Field(description='where the value in force came from ("web", "import:…")')
    observed_at: datetime


class IdentifierOut(BaseModel):
    kind: str
    value: str
    source: str
    first_seen: datetime
    last_seen: datetime


class LastPurchaseOut(BaseModel):
    at: datetime
    amount: AmountOut | None
    channel: str | None
    store: StoreRef | None


class RfmOut(BaseModel):
    recency: int = Field(ge=1, le=5)
    frequency: int = Field(ge=1, le=5)
    monetary: int = Field(ge=1, le=5)


class ComputedTraitsOut(BaseModel):
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    channels: list[str] = Field(description="channels used, most used first")
    events_count: int
    orders_count: int
    revenue: AmountOut | None
    average_basket: AmountOut | None
    favourite_category: str | None
    preferred_store: StoreRef | None
    last_purchase: LastPurchaseOut | None
    rfm: RfmOut | None = Field(description="quintiles among buyers; null if never bought")
    computed_at: datetime


class ProfileOut(CustomerOut):
    """A whole profile: the customer record, traits in force with their source, the
    identifiers the identity graph links, and the computed traits."""

    address: str | None
    merged_from: uuid.UUID | None = Field(
        description="the id asked for, when it was merged into this profile"
    )
    traits: dict[str, TraitOut]
    identifiers: list[IdentifierOut]
    computed: ComputedTraitsOut | None


class TimelineEntryOut(BaseModel):
    at: datetime
    key: str = Field(description="unique in the timeline; its prefix names the source")
    kind: str = Field(description="track, page, screen, identify, merge, consent, order, …")
    title: str
    channel: str | None
    store: StoreRef | None
    amount: AmountOut | None
    detail: dict[str, Any]


class TimelinePageOut(BaseModel):
    items: list[TimelineEntryOut]
    next_cursor: str | None
