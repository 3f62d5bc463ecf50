"""Stores and warehouses: the places that sell, hold stock and serve customers."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, JSONType, UTCDateTime, UUIDType
from parcours.core.ids import new_id


class Store(Base):
    """A stock location: a store open to customers or a warehouse.

    `opening_hours` maps weekday keys (mon…sun) to lists of [open, close] local times
    ("09:30", "19:30") in the store's own time zone.
    """

    __tablename__ = "stores"
    # The store locator's spatial pre-filter: a bounding box is a range on lat, then lon.

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="store")  # store | warehouse
    address: Mapped[str] = mapped_column(String(300))
    postcode: Mapped[str] = mapped_column(String(12))
    city: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2), default="FR")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    services: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StoreException(Base):
    """A dated exception to a store's weekly hours: a holiday closure or special hours.

    `hours` holds that local date's [open, close] ranges; empty means closed all day.
    """

    __tablename__ = "store_exceptions"
    __table_args__ = (UniqueConstraint("store_id", "day", name="uq_store_exceptions_store_day"),)

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    store_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("stores.id", ondelete="CASCADE")
    )
    day: Mapped[date] = mapped_column(Date)
    closed: Mapped[bool] = mapped_column(Boolean, default=True)
    hours: Mapped[list[list[str]]] = mapped_column(JSONType, default=list)
    label: Mapped[str] = mapped_column(String(120), default="")


class StoreNetworkVersion(Base):
    """A token changed in the same transaction as any change to where stores are or
    what they offer, so every process knows when its in-memory locator index is stale."""

    __tablename__ = "store_network_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
