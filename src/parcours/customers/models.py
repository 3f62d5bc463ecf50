"""Customer profiles and their consents."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, UTCDateTime, UUIDType
from parcours.core.ids import new_id


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


# ------------------------------------------------------------------ identity
# Identifiers, observations, merges and traits (owner: identity.py). Tables go here.


# ------------------------------------------------------------------ consent & privacy
# Double opt-in, erasure tombstones, import runs (owner: consent.py, privacy.py,
# imports.py). Tables go here.


# ------------------------------------------------------------------ matching
# Probabilistic matching runs and the review queue (owner: matching.py). Tables go here.


# ------------------------------------------------------------------ profiles
# Computed traits (owner: profiles.py). Tables go here.
