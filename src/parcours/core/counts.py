"""Counts of the shared kernel's records, for the console home page and `/ready`."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours.core.models import ApiKey, OutboxEvent, User


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxEvent)) or 0


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User).where(User.active.is_(True))) or 0


def count_active_keys(session: Session) -> int:
    stmt = select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
    return session.scalar(stmt) or 0
