"""Tables of the engagement context: message templates and their versions, the contact
policy per channel, the delivery log (one row per attempted send), bounced addresses
and campaigns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, JSONType, UTCDateTime, UUIDType
from parcours.core.ids import new_id


class MessageTemplate(Base):
    """A message template: its key, channel and kind; the content is in its versions."""

    __tablename__ = "message_templates"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | sms | push | webhook
    kind: Mapped[str] = mapped_column(String(16))  # marketing | transactional
    current_version: Mapped[int] = mapped_column(Integer)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessageTemplateVersion(Base):
    """One saved version of a template's FR/EN content (never changed once written)."""

    __tablename__ = "message_template_versions"

    key: Mapped[str] = mapped_column(
        String(64), ForeignKey("message_templates.key", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(160))


class ContactPolicy(Base):
    """How often and when marketing may reach a person on one channel: at most
    `max_messages` per `period_days` days (None: no cap), and no send between
    `quiet_start` and `quiet_end` (local "HH:MM") nor on `quiet_days` (mon…sun)."""

    __tablename__ = "contact_policies"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    max_messages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    period_days: Mapped[int] = mapped_column(Integer)
    quiet_start: Mapped[str | None] = mapped_column(String(5), nullable=True)
    quiet_end: Mapped[str | None] = mapped_column(String(5), nullable=True)
    quiet_days: Mapped[list[str]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(160))


class Delivery(Base):
    """One attempted send to one profile, whatever its outcome (the delivery log).

    `idempotency_key` is unique: the same key never sends twice. `status` is queued,
    deferred (held until `scheduled_for`), sent, failed, bounced or suppressed (refused:
    `reason` says why). `context` keeps the caller's extras so a deferred message can be
    rendered when it goes out. No address is stored: it is read from the profile.
    """

    __tablename__ = "message_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    profile_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    template_key: Mapped[str] = mapped_column(String(64))
    template_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str] = mapped_column(String(120))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    variant: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    open_count: Mapped[int] = mapped_column(Integer, default=0)
    click_count: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(300), nullable=True)

    __table_args__ = (
        Index("ix_message_deliveries_due", "status", "scheduled_for"),
        Index("ix_message_deliveries_profile_channel_sent", "profile_id", "channel", "sent_at"),
        Index("ix_message_deliveries_campaign_variant", "campaign_id", "variant"),
    )


class MessageBounce(Base):
    """An address that bounced, kept as a keyed hash (no address in clear): a hard
    bounce stops every later send to it; soft bounces are counted."""

    __tablename__ = "message_bounces"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    address_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard: Mapped[bool] = mapped_column(Boolean, default=False)
    soft_count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Campaign(Base):
    """A one-off send of one or more template variants to a segment on a channel.

    `variants` is [{"name": "A", "template": key, "percent": 50}, ...]; `holdout_percent`
    of the audience is kept out and recorded. Either `send_at` (UTC) or `local_date` +
    `local_time` (each customer's own zone) tells when it goes out.
    """

    __tablename__ = "campaigns"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    segment: Mapped[str] = mapped_column(String(200))
    segment_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    local_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    local_time: Mapped[str | None] = mapped_column(String(5), nullable=True)
    audience_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
