"""Reading the delivery log: pages with filters, a person's messages on their timeline
and in their access export, and erasure (rows are pseudonymised, so campaign results
keep their counts but nothing points at the person any more)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, literal, select, update
from sqlalchemy.orm import Session

from parcours.core.errors import FieldError, InvalidInput
from parcours.core.pagination import Page, paginate
from parcours.customers import PersonalDataHandler, TimelineEntry, TimelineQuery
from parcours.engagement.models import Delivery
from parcours.engagement.sending import REASONS, STATUSES


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    reason: str | None = None
    channel: str | None = None
    profile_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    template: str | None = None


def _check(filters: DeliveryFilter) -> None:
    errors = []
    if filters.status and filters.status not in STATUSES:
        errors.append(FieldError(f"must be one of {', '.join(STATUSES)}", parameter="status"))
    if filters.reason and filters.reason not in REASONS:
        errors.append(FieldError(f"must be one of {', '.join(REASONS)}", parameter="reason"))
    if errors:
        raise InvalidInput("Cannot filter the delivery log like this.", errors)


def list_deliveries(
    session: Session, filters: DeliveryFilter, cursor: str | None = None, limit: int = 50
) -> Page[Delivery]:
    """A page of the delivery log in creation order, filtered."""
    _check(filters)
    query = select(Delivery)
    conditions = {
        Delivery.status: filters.status,
        Delivery.reason: filters.reason,
        Delivery.channel: filters.channel,
        Delivery.profile_id: filters.profile_id,
        Delivery.campaign_id: filters.campaign_id,
        Delivery.template_key: filters.template,
    }
    for column, value in conditions.items():
        if value:
            query = query.where(column == value)
    return paginate(session, query, Delivery.id, cursor, limit)


def delivery_dict(row: Delivery) -> dict[str, Any]:
    """A delivery as JSON-able data (no address: the log holds none)."""
    return {
        "id": str(row.id),
        "profile_id": str(row.profile_id) if row.profile_id else None,
        "channel": row.channel,
        "purpose": row.purpose,
        "template": row.template_key,
        "template_version": row.template_version,
        "source": row.source,
        "campaign_id": str(row.campaign_id) if row.campaign_id else None,
        "variant": row.variant,
        "status": row.status,
        "reason": row.reason,
        "scheduled_for": _iso(row.scheduled_for),
        "created_at": _iso(row.created_at),
        "sent_at": _iso(row.sent_at),
        "opened_at": _iso(row.opened_at),
        "clicked_at": _iso(row.clicked_at),
        "open_count": row.open_count,
        "click_count": row.click_count,
        "provider_message_id": row.provider_message_id,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ------------------------------------------------------------------ a person's messages


def _uuid_bound(key: str, prefix: str) -> uuid.UUID | None:
    """The id in a cursor key of this source (None when the key is another source's)."""
    if not key.startswith(prefix + ":"):
        return None
    try:
        return uuid.UUID(key.partition(":")[2])
    except ValueError:
        return None


def timeline_source(session: Session, query: TimelineQuery) -> list[TimelineEntry]:
    """The messages sent to (or refused for) a profile, newest first."""
    stmt = select(Delivery).where(Delivery.profile_id == query.profile_id)
    if query.before is not None:
        bound = _uuid_bound(query.before.key, "message")
        stmt = stmt.where(
            query.before.sql_before(Delivery.created_at, Delivery.id, "message", bound)
        )
    rows = session.scalars(
        stmt.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(query.limit)
    )
    return [
        TimelineEntry(
            at=row.created_at,
            key=f"message:{row.id}",
            kind="message",
            title=row.template_key,
            channel=row.channel,
            detail={"status": row.status, "reason": row.reason, "source": row.source},
        )
        for row in rows
    ]


def _export(session: Session, profile_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    rows = session.scalars(
        select(Delivery).where(Delivery.profile_id == profile_id).order_by(Delivery.id)
    )
    return {"message_deliveries": [delivery_dict(row) for row in rows]}


def _erase(session: Session, now: datetime, profile_id: uuid.UUID) -> int:
    # One statement: the key (which may hold the profile id) becomes the row's own id.
    result = session.execute(
        update(Delivery)
        .where(Delivery.profile_id == profile_id)
        .values(
            profile_id=None,
            context=None,
            idempotency_key=literal("erased:") + cast(Delivery.id, String),
            provider_message_id=None,
            updated_at=now,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _last_activity(session: Session, profile_id: uuid.UUID) -> datetime | None:
    return session.scalar(
        select(Delivery.opened_at)
        .where(Delivery.profile_id == profile_id, Delivery.opened_at.is_not(None))
        .order_by(Delivery.opened_at.desc())
        .limit(1)
    )


def personal_data_handler() -> PersonalDataHandler:
    """A person's deliveries in their export; erasure pseudonymises them."""
    return PersonalDataHandler("engagement", _export, _erase, _last_activity)
