"""Carts, orders from every channel, their fulfilment, payments and returns.

An order is the record of a sale, whatever the channel that took it: the web shop and
the app (through carts and checkout), store tills (POS receipts), the call centre and
marketplaces. Its lines are grouped into *fulfilments*: one per place the goods leave
from and way they reach the customer (home delivery from a warehouse, click & collect at
a store, ship-from-store, drive, reserve-in-store, or carried out of the store at the
till). Each fulfilment holds the stock it needs through inventory reservations, keeps
the reason it was routed where it was, and moves through its own states; the order's
status follows from its fulfilments.

Money is integer minor units of `currency`; amounts on lines and orders include VAT
(the VAT part is kept beside). Times are UTC.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
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

# Where an order was taken.
ORDER_CHANNELS = ("web", "app", "store", "call_centre", "marketplace", "social")
# How the goods of one fulfilment reach the customer.
FULFILMENT_MODES = (
    "home_delivery",  # shipped from a warehouse (or a store, see ship_from_store) to an address
    "click_and_collect",  # paid online, prepared at a store, collected there
    "reserve_in_store",  # held at a store for N days, paid there when collected
    "drive",  # collected at a store's drive in a booked time slot
    "ship_from_store",  # shipped to an address from a store's stock
    "carry_out",  # sold at the till, the customer leaves with it (POS)
)
PICKUP_MODES = ("click_and_collect", "reserve_in_store", "drive")
SHIPPED_MODES = ("home_delivery", "ship_from_store")

ORDER_STATUSES = (
    "placed",  # taken, stock held, not paid yet (or paid at pickup)
    "paid",  # payment captured (or authorised) for the whole order
    "allocated",  # every fulfilment has its stock and location
    "picking",  # at least one fulfilment is being prepared
    "ready_for_pickup",  # at least one pickup fulfilment waits for the customer
    "shipped",  # every shipped fulfilment left; none still waits to be picked
    "collected",  # every pickup fulfilment was collected
    "delivered",  # every shipped fulfilment was delivered
    "completed",  # closed: everything handed over (POS receipts are born completed)
    "cancelled",  # nothing will be handed over; stock released, payment refunded
)
FULFILMENT_STATUSES = (
    "allocated",
    "picking",
    "ready_for_pickup",
    "shipped",
    "collected",
    "delivered",
    "cancelled",
    "expired",  # a pickup nobody came for: stock back on the shelf
)
# Fulfilment statuses once the goods have left (only these can be returned).
HANDED_OVER = ("shipped", "collected", "delivered")
PAYMENT_STATUSES = ("pending", "authorised", "captured", "failed", "refunded", "cancelled")
RETURN_STATUSES = ("requested", "received", "refunded", "exchanged", "rejected")
RETURN_CONDITIONS = ("resaleable", "damaged")
RETURN_REASONS = (
    "too_small",
    "too_large",
    "not_as_described",
    "damaged_in_transit",
    "changed_mind",
    "wrong_item",
    "late_delivery",
    "other",
)


class Cart(Base):
    """A basket on one channel, anonymous (`anonymous_id`) or identified (`customer_id`).

    Logging in merges the anonymous cart into the customer's open cart. `status` is
    `open`, `converted` (an order was placed from it) or `merged` (absorbed at login).
    """

    __tablename__ = "carts"
    __table_args__ = (
        Index("ix_carts_customer_status", "customer_id", "status"),
        Index("ix_carts_anonymous_status", "anonymous_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    channel: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    promo_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(16), default="open")
    order_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CartLine(Base):
    __tablename__ = "cart_lines"
    __table_args__ = (
        UniqueConstraint("cart_id", "sku"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    cart_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("carts.id", ondelete="CASCADE"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Order(Base):
    """One sale from any channel. `number` is what the customer and staff read.

    `external_ref` is the sender's own id (a till's receipt number, a marketplace's
    order id): unique per `source`, so a receipt or an import sent twice is stored once.
    Personal data (email, addresses) is held here only to serve the order; an erasure
    blanks it and keeps the amounts for accounting.
    """

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("source", "external_ref"),
        Index("ix_orders_customer_placed", "customer_id", "placed_at"),
        Index("ix_orders_status_placed", "status", "placed_at"),
        Index("ix_orders_store_placed", "store_id", "placed_at"),
        Index("ix_orders_placed_at", "placed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    channel: Mapped[str] = mapped_column(String(24))  # one of ORDER_CHANNELS
    # Who sent it: "checkout", "pos", "call_centre", "marketplace:<name>", "import".
    source: Mapped[str] = mapped_column(String(64))
    external_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)  # where sold
    till: Mapped[str | None] = mapped_column(String(32), nullable=True)
    cashier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    placed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)  # an agent
    customer_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    locale: Mapped[str] = mapped_column(String(8), default="fr")
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)  # lines after their discounts
    discount_total: Mapped[int] = mapped_column(BigInteger, default=0)
    delivery_total: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger)  # what the customer pays, VAT included
    vat_total: Mapped[int] = mapped_column(BigInteger)
    promo_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(24))  # one of ORDER_STATUSES
    payment_status: Mapped[str] = mapped_column(String(16), default="pending")
    cart_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Fulfilment(Base):
    """The part of an order that leaves from one location in one way.

    `location_id` is where the stock is taken from; `pickup_store_id` is where a pickup
    is collected (the same store, or another one the stock is transferred to).
    `reason` says in words why routing chose this location (shown to staff and to the
    customer service), `reason_data` the figures behind it. A pickup has a short
    `pickup_code` (stored as a keyed hash; the customer gets the code and its QR).
    """

    __tablename__ = "fulfilments"
    __table_args__ = (
        Index("ix_fulfilments_pickup_status", "pickup_store_id", "status"),
        Index("ix_fulfilments_location_status", "location_id", "status"),
        Index("ix_fulfilments_status_hold", "status", "hold_until"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(24))  # one of FULFILMENT_MODES
    location_id: Mapped[uuid.UUID] = mapped_column(UUIDType)
    pickup_store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    status: Mapped[str] = mapped_column(String(24))  # one of FULFILMENT_STATUSES
    delivery_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    slot_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)  # drive
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pickup_code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pickup_attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(500), default="")
    reason_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    carrier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderLine(Base):
    """One SKU of an order, priced as sold (a snapshot: later price changes do not
    touch it). `reservation_id` holds its stock until the goods leave."""

    __tablename__ = "order_lines"
    # No index on order_id alone: the unique (order_id, line_no) one serves every lookup
    # by order (and the cascade). None on sku: nothing looks lines up by SKU, and its
    # random inserts cost a bulk history load a third of its line writes (0017). None on
    # fulfilment_id: a fulfilment's lines are read through its order (0026).
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("orders.id", ondelete="CASCADE")
    )
    fulfilment_id: Mapped[uuid.UUID | None] = mapped_column(
        UUIDType, ForeignKey("fulfilments.id"), nullable=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(200), nullable=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)  # VAT included, before discount
    vat_rate_bp: Mapped[int] = mapped_column(Integer)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)  # on the whole line
    total: Mapped[int] = mapped_column(BigInteger)  # unit_price * quantity - discount
    vat: Mapped[int] = mapped_column(BigInteger)  # the VAT part of total
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0)
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)


class OrderEvent(Base):
    """The order's timeline: every status change and notable step, with who did it."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_at", "order_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("orders.id", ondelete="CASCADE")
    )
    fulfilment_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(40))  # "placed", "status", "payment", "note", …
    from_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    actor: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Payment(Base):
    """A payment of an order through a provider (`in_store`, `simulator`, …).

    `provider_ref` is the provider's id for it; webhooks find the payment by it.
    """

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("provider", "provider_ref"),)

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(32))  # card, cash, gift_card, in_store, …
    status: Mapped[str] = mapped_column(String(16))  # one of PAYMENT_STATUSES
    amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaymentNotification(Base):
    """A provider webhook already processed, by the provider's event id: a replay of it
    is acknowledged and changes nothing."""

    __tablename__ = "payment_notifications"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_ref: Mapped[str] = mapped_column(String(100), primary_key=True)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Return(Base):
    """Goods of one order brought back, in any store (`location_id`) or by post (the
    warehouse receiving parcels), refunded or exchanged."""

    __tablename__ = "returns"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(24))  # "store" or "post"
    location_id: Mapped[uuid.UUID] = mapped_column(UUIDType, index=True)
    resolution: Mapped[str] = mapped_column(String(16))  # "refund" or "exchange"
    status: Mapped[str] = mapped_column(String(16))  # one of RETURN_STATUSES
    refund_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    exchange_order_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    received_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReturnLine(Base):
    __tablename__ = "return_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    return_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("returns.id", ondelete="CASCADE"), index=True
    )
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("order_lines.id"), index=True
    )
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))  # one of RETURN_REASONS
    condition: Mapped[str] = mapped_column(String(16))  # one of RETURN_CONDITIONS
    refund_amount: Mapped[int] = mapped_column(BigInteger)
    restocked: Mapped[bool] = mapped_column(Boolean)


class DriveSlot(Base):
    """A time slot of a store's drive and how many orders it takes; `booked` moves in one
    conditional write, so a slot is never overbooked."""

    __tablename__ = "drive_slots"
    __table_args__ = (
        UniqueConstraint("store_id", "starts_at"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked_within_capacity"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    store_id: Mapped[uuid.UUID] = mapped_column(UUIDType)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0)


class FulfilmentSettings(Base):
    """How much fulfilment work a store takes on. Which services it offers at all
    (click & collect, reserve in store, drive, ship-from-store, returns) is the store's
    `services` list; a store without a row here gets these column defaults (no drive
    slots and no ship-from-store parcels until a capacity is set)."""

    __tablename__ = "fulfilment_settings"

    store_id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True)
    preparation_minutes: Mapped[int] = mapped_column(Integer, default=120)
    reserve_hold_days: Mapped[int] = mapped_column(Integer, default=3)
    pickup_hold_days: Mapped[int] = mapped_column(Integer, default=10)
    daily_ship_capacity: Mapped[int] = mapped_column(Integer, default=0)
    drive_slot_minutes: Mapped[int] = mapped_column(Integer, default=30)
    drive_slot_capacity: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShipCapacityUse(Base):
    """Ship-from-store parcels a store took on one local day (the capacity check is one
    conditional write against `FulfilmentSettings.daily_ship_capacity`)."""

    __tablename__ = "ship_capacity_use"

    store_id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class OrderCounter(Base):
    """The last number handed out per prefix (`W2026`, `R2026`): order and return numbers
    are short, readable and gap-free per year."""

    __tablename__ = "order_counters"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger, default=0)
