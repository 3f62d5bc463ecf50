"""Tables of the journeys context: the journeys, their versions (definitions), the
running instances (one person going through one version) and the log of steps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, JSONType, UTCDateTime, UUIDType
from parcours.core.ids import new_id
from parcours.core.models import AutoBigInt


class Journey(Base):
    """An automated journey; `status` is draft, active, paused or archived and
    `current_version` the version new instances start on."""

    __tablename__ = "journeys"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(160))


class JourneyVersion(Base):
    """One saved definition of a journey (docs/journeys.md); never changed once saved."""

    __tablename__ = "journey_versions"

    journey_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(160))


class JourneyInstance(Base):
    """One person going through one version of a journey. `current_step` is the step to
    run at `next_run_at` (UTC); `occurrence` names the trigger occurrence (unique per
    journey and profile, so a replayed trigger never enters twice); `since_seq` is the
    tracking log position at entry ("events since entry"); `waiting_for` the event a
    wait step listens to, after position `waiting_since_seq`."""

    __tablename__ = "journey_instances"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    journey_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("journeys.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    profile_id: Mapped[uuid.UUID] = mapped_column(UUIDType)
    occurrence: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    current_step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    since_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    waiting_for: Mapped[str | None] = mapped_column(String(200), nullable=True)
    waiting_since_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    exit_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        UniqueConstraint("journey_id", "profile_id", "occurrence"),
        Index("ix_journey_instances_due", "status", "next_run_at"),
        Index("ix_journey_instances_profile", "profile_id", "status"),
        Index("ix_journey_instances_waiting", "waiting_for", "status"),
    )


class JourneyStepLog(Base):
    """What happened at a step: `reached`, then its outcome (done, yes, no, event,
    timeout, sent, suppressed...) or `exited`; counted per step on the journey's page."""

    __tablename__ = "journey_step_log"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    instance_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("journey_instances.id", ondelete="CASCADE")
    )
    journey_id: Mapped[uuid.UUID] = mapped_column(UUIDType)
    version: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_journey_step_log_journey", "journey_id", "step_id", "outcome"),
        Index("ix_journey_step_log_instance", "instance_id"),
    )


class ProfileTag(Base):
    """A tag a journey put on a profile (`tag` steps), with when and by which journey."""

    __tablename__ = "journey_profile_tags"

    profile_id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    journey_key: Mapped[str] = mapped_column(String(64))
    tagged_at: Mapped[datetime] = mapped_column(UTCDateTime)
