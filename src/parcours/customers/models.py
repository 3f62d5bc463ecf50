"""Customer profiles and their consents."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, JSONType, UTCDateTime, UUIDType
from parcours.core.ids import new_id
from parcours.core.models import AutoBigInt


class Customer(Base):
    """One person, whatever the channel they use. Email is stored normalised
    (lower-case), phone in E.164."""

    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    customer_number: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    first_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    postcode: Mapped[str | None] = mapped_column(String(12), nullable=True)
    city: Mapped[str | None] = mapped_column(String(120), nullable=True)
    country: Mapped[str] = mapped_column(String(2), default="FR")
    locale: Mapped[str] = mapped_column(String(8), default="fr")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    preferred_store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Consent(Base):
    """A consent decision for one purpose on one channel, kept as proof (append-only:
    the latest row per customer, purpose and channel is in force)."""

    __tablename__ = "consents"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("customers.id", ondelete="CASCADE")
    )
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(64))
    proof: Mapped[str | None] = mapped_column(String(500), nullable=True)

    __table_args__ = (
        Index("ix_consents_customer_purpose", "customer_id", "purpose", "channel", "at"),
    )


# ------------------------------------------------------------------ tracking
# The tracked events log (owner: tracking.py). Tables go here.


class TrackedEvent(Base):
    """One Segment-spec message from any channel, as received (append-only).

    `seq` orders the log. A profile's events are found through its identifiers
    (`user_id`, `anonymous_id`), so merges and unmerges never rewrite the log.
    `timestamp` is the event time corrected for the sender's clock skew.
    """

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(200), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    previous_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    group_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    channel: Mapped[str] = mapped_column(String(24))
    store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    source_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    original_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    traits: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)

    __table_args__ = (
        Index("ix_events_user_id_timestamp", "user_id", "timestamp"),
        Index("ix_events_anonymous_id_timestamp", "anonymous_id", "timestamp"),
        Index("ix_events_timestamp", "timestamp"),
    )


# ------------------------------------------------------------------ identity
# Identifiers, observations, merges and traits (owner: identity.py). Tables go here.


# ------------------------------------------------------------------ consent & privacy
# Double opt-in, erasure tombstones, import runs (owner: consent.py, privacy.py,
# imports.py). Tables go here.


# ------------------------------------------------------------------ matching
# Probabilistic matching runs and the review queue (owner: matching.py). Tables go here.


# ------------------------------------------------------------------ profiles
# Computed traits (owner: profiles.py). Tables go here.
