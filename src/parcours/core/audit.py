"""The audit log: admin actions and every access to personal data.

Entries name the actor and the target by id; `detail` must hold no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.core.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who is acting: a console user, an API key, the CLI operator or the system."""

    kind: str  # "user" | "api_key" | "cli" | "system"
    id: str
    role: str = "admin"
    scopes: frozenset[str] = field(default_factory=frozenset)
    store_ids: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


CLI_ACTOR = Actor(kind="cli", id="operator")
SYSTEM_ACTOR = Actor(kind="system", id="parcours")


def record(
    session: Session,
    at: datetime,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | None = None,
    **detail: Any,
) -> None:
    """Add an audit entry to the caller's transaction (it commits with the action)."""
    session.add(
        AuditEntry(
            at=at,
            actor=actor.label,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail,
        )
    )


def recent_entries(session: Session, limit: int = 100) -> list[AuditEntry]:
    """The latest audit entries, newest first."""
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))
