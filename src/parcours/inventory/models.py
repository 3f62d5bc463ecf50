"""Stock: an append-only ledger of movements, the levels derived from it, reservations
and the per-channel rules deciding which stock a channel may promise.

`stock_levels` is a cache of the ledger kept in the same transaction as each movement
or reservation: `on_hand` is the sum of the movements of its (sku, location) and
`reserved` the sum of its active reservations.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, UTCDateTime, UUIDType
from parcours.core.ids import new_id

MOVEMENT_KINDS = ("receipt", "sale", "return", "transfer_out", "transfer_in", "adjustment", "count")
RESERVATION_KINDS = ("cart", "click_and_collect", "reserve_in_store", "order_allocation")
RESERVATION_STATUSES = ("active", "released", "expired", "consumed")
LOCATION_KINDS = ("store", "warehouse")


def available(on_hand: int, reserved: int, safety_stock: int) -> int:
    """Units that may be promised: on hand minus reserved minus safety stock, never below 0."""
    return max(0, on_hand - reserved - safety_stock)


class StockItem(Base):
    """A SKU whose stock inventory tracks: the catalogue declares each one it creates.

    Inventory sits below the catalogue and cannot ask it which SKUs exist, so movements,
    transfers, reservations and counts accept only the SKUs listed here.
    """

    __tablename__ = "stock_items"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StockMovement(Base):
    """One fact about stock: `quantity` is its signed effect on the location's on-hand."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_sku_location", "sku", "location_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("stores.id"))
    kind: Mapped[str] = mapped_column(String(16))  # one of MOVEMENT_KINDS
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StockLevel(Base):
    """What one location holds of one SKU, derived from the ledger and the reservations.

    The surrogate UUIDv7 `id` gives lists a stable paging order.
    """

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("sku", "location_id"),
        Index("ix_stock_levels_location", "location_id", "id"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("safety_stock >= 0", name="safety_stock_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("stores.id"))
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=2)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def available(self) -> int:
        return available(self.on_hand, self.reserved, self.safety_stock)


class Reservation(Base):
    """Units held for a cart, a pickup or an order until consumed, released or expired."""

    __tablename__ = "reservations"
    __table_args__ = (
        Index("ix_reservations_status_expires_at", "status", "expires_at"),
        Index("ix_reservations_sku_location", "sku", "location_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    sku: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[uuid.UUID] = mapped_column(UUIDType, ForeignKey("stores.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))  # one of RESERVATION_KINDS
    reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelStockRule(Base):
    """Which locations a channel may promise from.

    A store's stock counts for the channel only when its available units are strictly
    above `store_shown_above` (web: above 2, so the last units stay for walk-in customers).
    """

    __tablename__ = "channel_stock_rules"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    include_stores: Mapped[bool] = mapped_column(Boolean, default=True)
    include_warehouses: Mapped[bool] = mapped_column(Boolean, default=True)
    store_shown_above: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
