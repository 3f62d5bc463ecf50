"""API shapes of the stock ledger, reservations and availability."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

MovementKind = Literal[
    "receipt", "sale", "return", "transfer_out", "transfer_in", "adjustment", "count"
]
ReservationKind = Literal["cart", "click_and_collect", "reserve_in_store", "order_allocation"]


class MovementIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    location_id: uuid.UUID = Field(description="The store or warehouse holding the stock.")
    kind: MovementKind
    quantity: StrictInt = Field(
        description="Units, positive; signed (negative: units missing) for adjustment and count."
    )
    reason: str | None = Field(default=None, max_length=200)
    reference: str | None = Field(
        default=None, max_length=100, description="An order, delivery or count id."
    )
    occurred_at: datetime | None = Field(
        default=None, description="When it happened (UTC); defaults to now."
    )


class MovementBatch(BaseModel):
    movements: list[MovementIn] = Field(min_length=1, max_length=5000)


class MovementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    sku: str
    location_id: uuid.UUID
    kind: str
    quantity: int = Field(description="Signed effect on on-hand.")
    reason: str | None
    reference: str | None
    occurred_at: datetime
    recorded_at: datetime


class MovementList(BaseModel):
    movements: list[MovementOut]


class MovementPage(BaseModel):
    items: list[MovementOut]
    next_cursor: str | None


class TransferIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    from_location_id: uuid.UUID
    to_location_id: uuid.UUID
    quantity: StrictInt
    reference: str | None = Field(default=None, max_length=100)


class StockLevelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sku: str
    location_id: uuid.UUID
    on_hand: int
    reserved: int
    safety_stock: int
    available: int = Field(description="on_hand - reserved - safety_stock, never below 0.")
    updated_at: datetime


class SkuStock(BaseModel):
    sku: str
    locations: list[StockLevelOut]


class StockLevelPage(BaseModel):
    items: list[StockLevelOut]
    next_cursor: str | None


class ReservationIn(BaseModel):
    id: uuid.UUID | None = Field(
        default=None, description="Choose the id to make retries safe: the same id reserves once."
    )
    sku: str = Field(min_length=1, max_length=64)
    location_id: uuid.UUID
    quantity: StrictInt
    kind: ReservationKind = "cart"
    reference: str | None = Field(default=None, max_length=100)
    expires_at: datetime | None = Field(
        default=None, description="UTC; defaults per kind (cart 30 min, click & collect 3 days…)."
    )


class ReservationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    sku: str
    location_id: uuid.UUID
    quantity: int
    kind: str
    reference: str | None
    status: str
    expires_at: datetime
    created_at: datetime
    updated_at: datetime


class ConsumeIn(BaseModel):
    reference: str | None = Field(default=None, max_length=100, description="e.g. the order id.")


class SkuAvailability(BaseModel):
    sku: str
    available: int


class ChannelAvailability(BaseModel):
    channel: str
    items: list[SkuAvailability]


class ChannelRuleIn(BaseModel):
    include_stores: bool = True
    include_warehouses: bool = True
    store_shown_above: StrictInt = Field(
        default=0, description="A store's stock counts only above this many available units."
    )


class ChannelRuleOut(ChannelRuleIn):
    channel: str
