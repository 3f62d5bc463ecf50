"""Tables of the insight context.

Analytics reads the other contexts' facts through their facades; the one thing it owns
is what no other context records: store footfall from the door counters.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, UTCDateTime, UUIDType
from parcours.core.ids import new_id


class Footfall(Base):
    """Visitors counted entering one store during one hour (`hour_start`, UTC, on the
    hour). A count sent again for the same store and hour replaces the one stored, so a
    counter export can be imported as often as it is produced."""

    __tablename__ = "footfall"

    store_id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    visitors: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(32))  # "api", "csv", "demo"
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportSubscription(Base):
    """Someone who receives the KPI report by email every week or month, optionally for
    one channel or store. `last_period_start` is the start (local date) of the last
    period sent, so each period goes out once."""

    __tablename__ = "report_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254))
    frequency: Mapped[str] = mapped_column(String(16))  # "weekly" | "monthly"
    locale: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(24), default="")
    store: Mapped[str] = mapped_column(String(32), default="")
    created_by: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_period_start: Mapped[date] = mapped_column(Date)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
