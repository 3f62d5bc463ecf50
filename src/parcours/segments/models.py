"""Tables of the segments context: the segments, their current members and the history
of their evaluations (entries, exits and size over time)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, JSONType, UTCDateTime, UUIDType
from parcours.core.ids import new_id
from parcours.core.models import AutoBigInt


class Segment(Base):
    """An audience defined in JSON (docs/segments.md); `version` grows on each change of
    its definition, `member_count` is the size after its last evaluation."""

    __tablename__ = "segments"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer, default=1)
    member_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(160))
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SegmentMember(Base):
    """A profile in a segment now, since `entered_at` (UTC)."""

    __tablename__ = "segment_members"

    segment_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    profile_id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_segment_members_profile", "profile_id"),)


class SegmentEvaluation(Base):
    """One evaluation that changed a segment (or a full one): how many profiles entered
    and exited, and the size after it; `mode` is "full" or "incremental"."""

    __tablename__ = "segment_evaluations"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    segment_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("segments.id", ondelete="CASCADE")
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    mode: Mapped[str] = mapped_column(String(16))
    entered: Mapped[int] = mapped_column(BigInteger)
    exited: Mapped[int] = mapped_column(BigInteger)
    members: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_segment_evaluations_segment_at", "segment_id", "at"),)
