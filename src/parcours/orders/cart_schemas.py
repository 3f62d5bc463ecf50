"""API shapes of carts, delivery options and checkout (amounts in cents, times UTC)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CartLineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=99)


class CartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="web, app, store (in-store tablet), call_centre, social")
    anonymous_id: str | None = Field(default=None, max_length=200)
    customer_id: uuid.UUID | None = None
    store_id: uuid.UUID | None = Field(default=None, description="The store of an in-store tablet")
    lines: list[CartLineIn] = Field(default_factory=list, max_length=100)
    promo_codes: list[str] = Field(default_factory=list, max_length=5)


class QuantityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(ge=0, le=99, description="0 removes the line")


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: uuid.UUID


class PricedLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    quantity: int
    unit_price: int
    vat_rate_bp: int
    discount: int
    total: int
    vat: int


class CartOut(BaseModel):
    id: uuid.UUID
    channel: str
    status: str
    currency: str
    customer_id: uuid.UUID | None
    anonymous_id: str | None
    store_id: uuid.UUID | None
    order_id: uuid.UUID | None
    promo_codes: list[str]
    lines: list[PricedLineOut]
    subtotal: int
    discount_total: int
    vat_total: int
    total: int
    unpriced: list[str] = Field(description="SKUs without a price on this channel")
    promo_messages: dict[str, str]


class SlotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    left: int


class DeliveryOptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    mode: str
    available: bool
    cost: int
    currency: str
    promised_at: datetime | None
    hold_until: datetime | None
    store_id: uuid.UUID | None
    store_code: str | None
    store_name: str | None
    distance_km: float | None
    why_not: str | None = Field(description="Why the option is not possible, when it is not")
    slots: list[SlotOut]


class DeliveryOptionsOut(BaseModel):
    cart_id: uuid.UUID
    subtotal: int
    options: list[DeliveryOptionOut]


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    postcode: str = Field(min_length=2, max_length=12)
    city: str = Field(min_length=1, max_length=120)
    country: str = Field(default="FR", min_length=2, max_length=2)


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cart_id: uuid.UUID
    mode: str = Field(
        description="home_delivery, ship_from_store, click_and_collect, reserve_in_store, drive"
    )
    store_id: uuid.UUID | None = Field(default=None, description="Pickup store (pickup modes)")
    slot_id: uuid.UUID | None = Field(default=None, description="Drive slot (drive)")
    address: AddressIn | None = Field(default=None, description="Shipped modes")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    payment_provider: str = "in_store"
    payment_method: str = Field(default="in_store", max_length=32)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=20)
    locale: str = "fr"
    placed_by: str | None = Field(
        default=None, max_length=120, description="The call-centre agent placing it"
    )


class FulfilmentOut(BaseModel):
    id: uuid.UUID
    mode: str
    status: str
    location_id: uuid.UUID
    pickup_store_id: uuid.UUID | None
    delivery_fee: int
    promised_at: datetime | None
    hold_until: datetime | None
    slot_id: uuid.UUID | None
    reason: str
    reason_data: dict[str, Any]
    pickup_code: str | None = Field(description="Shown once, at checkout (pickup modes)")
    pickup_qr_svg: str | None = Field(
        default=None,
        description="The pickup code as a QR code (SVG) for the store's counter to scan",
    )
    skus: dict[str, int]


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    provider: str
    provider_ref: str
    status: str
    amount: int


class PlacedOrderOut(BaseModel):
    id: uuid.UUID
    number: str
    status: str
    channel: str
    currency: str
    subtotal: int
    discount_total: int
    delivery_total: int
    vat_total: int
    total: int
    placed_at: datetime
    lines: list[PricedLineOut]
    fulfilments: list[FulfilmentOut]
    payment: PaymentOut | None
