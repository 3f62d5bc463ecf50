"""What the loyalty context holds about a person: their points ledger and account, the
codes assigned to them, their code and reward redemptions; how it is exported and erased,
and what it adds to their timeline.

An erasure deletes the ledger and the account (the one case where ledger entries are
deleted), deletes the unused codes assigned to the person, and keeps code and reward
redemptions for the accounts of the offers, without the person.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from parcours import customers
from parcours.loyalty.models import (
    LoyaltyAccount,
    PointsEntry,
    PromoCode,
    PromoCodeRedemption,
    RewardRedemption,
)

KEY_PREFIX = "points"


def _rows(
    session: Session, model: Any, column: Any, profile_id: uuid.UUID, fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    return [
        {name: getattr(row, name) for name in fields}
        for row in session.scalars(select(model).where(column == profile_id))
    ]


def export_loyalty(session: Session, profile_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """The person's ledger, assigned codes and redemptions (subject access)."""
    return {
        "points_ledger": _rows(
            session, PointsEntry, PointsEntry.profile_id, profile_id,
            ("kind", "points", "reason", "order_reference", "channel", "expires_at", "created_at"),
        ),
        "promo_codes": _rows(
            session, PromoCode, PromoCode.profile_id, profile_id,
            ("code", "uses", "expires_at", "created_at"),
        ),
        "promo_code_redemptions": _rows(
            session, PromoCodeRedemption, PromoCodeRedemption.profile_id, profile_id,
            ("code", "channel", "order_reference", "amount", "currency", "redeemed_at"),
        ),
        "reward_redemptions": _rows(
            session, RewardRedemption, RewardRedemption.profile_id, profile_id,
            ("points", "code", "amount_off", "currency", "channel", "created_at"),
        ),
    }  # fmt: skip


def _count(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def erase_loyalty(session: Session, now: datetime, profile_id: uuid.UUID) -> int:
    """Remove the person from loyalty (see the module docstring); rows touched."""
    touched = _count(
        session.execute(delete(PointsEntry).where(PointsEntry.profile_id == profile_id))
    )
    touched += _count(
        session.execute(delete(LoyaltyAccount).where(LoyaltyAccount.profile_id == profile_id))
    )
    touched += _count(
        session.execute(
            delete(PromoCode).where(PromoCode.profile_id == profile_id, PromoCode.uses == 0)
        )
    )
    touched += _count(
        session.execute(
            update(PromoCode).where(PromoCode.profile_id == profile_id).values(profile_id=None)
        )
    )
    for model in (PromoCodeRedemption, RewardRedemption):
        touched += _count(
            session.execute(
                update(model).where(model.profile_id == profile_id).values(profile_id=None)
            )
        )
    return touched


def last_activity(session: Session, profile_id: uuid.UUID) -> datetime | None:
    return session.scalar(
        select(func.max(PointsEntry.created_at)).where(PointsEntry.profile_id == profile_id)
    )


def personal_data_handler() -> customers.PersonalDataHandler:
    return customers.PersonalDataHandler("loyalty", export_loyalty, erase_loyalty, last_activity)


def timeline_source(
    session: Session, query: customers.TimelineQuery
) -> list[customers.TimelineEntry]:
    """Points earned, spent, expired or taken back, newest first."""
    stmt = select(PointsEntry).where(PointsEntry.profile_id == query.profile_id)
    if query.before is not None:
        bound = _id_bound(query.before.key)
        stmt = stmt.where(
            query.before.sql_before(PointsEntry.created_at, PointsEntry.id, KEY_PREFIX, bound)
        )
    rows = session.scalars(
        stmt.order_by(PointsEntry.created_at.desc(), PointsEntry.id.desc()).limit(query.limit)
    )
    return [
        customers.TimelineEntry(
            at=row.created_at,
            key=f"{KEY_PREFIX}:{row.id:012d}",
            kind="points",
            title=f"{row.points:+d} points ({row.kind})",
            channel=row.channel,
            detail={"kind": row.kind, "points": row.points, "reason": row.reason},
        )
        for row in rows
    ]


def _id_bound(key: str) -> int:
    prefix, _, value = key.partition(":")
    return int(value) if prefix == KEY_PREFIX and value.isdigit() else 0
