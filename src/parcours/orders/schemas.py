"""API shapes of orders: list and detail, fulfilment transitions, cancellation, pickup
verification, returns and payment webhooks' answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

ReturnReason = Literal[
    "too_small",
    "too_large",
    "not_as_described",
    "damaged_in_transit",
    "changed_mind",
    "wrong_item",
    "late_delivery",
    "other",
]


class OrderSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: str
    channel: str
    source: str
    store_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    status: str
    payment_status: str
    currency: str
    total: int = Field(description="Cents, VAT included.")
    placed_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class OrderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    line_no: int
    sku: str
    name: str
    quantity: int
    unit_price: int
    vat_rate_bp: int
    discount: int
    total: int
    vat: int
    returned_quantity: int
    fulfilment_id: uuid.UUID | None


class FulfilmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    mode: str
    status: str
    allowed_next: list[str] = Field(description="The statuses it may move to now.")
    location_id: uuid.UUID
    pickup_store_id: uuid.UUID | None
    reason: str = Field(description="Why routing chose this location.")
    reason_data: dict[str, Any]
    promised_at: datetime | None
    hold_until: datetime | None
    pickup_attempts: int
    carrier: str | None
    tracking_number: str | None
    delivery_fee: int


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    provider: str
    provider_ref: str
    method: str
    status: str
    amount: int
    refunded_amount: int
    currency: str
    created_at: datetime


class ReturnLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    order_line_id: uuid.UUID
    sku: str
    quantity: int
    reason: str
    condition: str
    refund_amount: int
    restocked: bool


class ReturnOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: str
    order_id: uuid.UUID
    channel: str
    location_id: uuid.UUID
    resolution: str
    status: str
    refund_amount: int
    currency: str
    exchange_order_id: uuid.UUID | None
    received_by: str
    created_at: datetime
    lines: list[ReturnLineOut] = []


class TimelineEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    fulfilment_id: uuid.UUID | None
    from_status: str | None
    to_status: str | None
    actor: str
    note: str
    data: dict[str, Any]


class OrderDetail(OrderSummary):
    subtotal: int
    discount_total: int
    delivery_total: int
    vat_total: int
    promo_codes: list[str]
    lines: list[OrderLineOut]
    fulfilments: list[FulfilmentOut]
    payments: list[PaymentOut]
    returns: list[ReturnOut]
    timeline: list[TimelineEntry]


class TransitionIn(BaseModel):
    to: str = Field(min_length=1, max_length=24, description="The fulfilment's next status.")
    note: str = Field(default="", max_length=500)
    carrier: str | None = Field(default=None, max_length=64)
    tracking_number: str | None = Field(default=None, max_length=100)


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class PickupVerifyIn(BaseModel):
    order: str = Field(min_length=1, max_length=32, description="The order number.")
    code: str = Field(min_length=1, max_length=20, description="The customer's pickup code.")


class PickupOut(BaseModel):
    order_id: uuid.UUID
    number: str
    fulfilment: FulfilmentOut
    payment_status: str


class ReturnLineIn(BaseModel):
    line_no: StrictInt = Field(ge=1)
    quantity: StrictInt = Field(description="Units brought back, positive.")
    reason: ReturnReason
    condition: Literal["resaleable", "damaged"]


class ReturnIn(BaseModel):
    location_id: uuid.UUID = Field(description="The store (or warehouse, by post) receiving it.")
    channel: Literal["store", "post"] = "store"
    resolution: Literal["refund", "exchange"] = "refund"
    exchange_order_id: uuid.UUID | None = None
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)


class WebhookAck(BaseModel):
    received: bool = True
    replayed: bool = Field(description="True when this event id was already processed.")
    event_id: str
    type: str
