"""A person's journeys: in their access export, erased with them, on their timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from parcours.customers import PersonalDataHandler, TimelineEntry, TimelineQuery
from parcours.journeys.models import Journey, JourneyInstance, JourneyStepLog, ProfileTag
from parcours.journeys.service import instance_dict


def _export(session: Session, profile_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    instances = list(
        session.scalars(
            select(JourneyInstance)
            .where(JourneyInstance.profile_id == profile_id)
            .order_by(JourneyInstance.entered_at, JourneyInstance.id)
        )
    )
    ids = [i.id for i in instances]
    logs: list[JourneyStepLog] = []
    if ids:
        logs = list(
            session.scalars(
                select(JourneyStepLog)
                .where(JourneyStepLog.instance_id.in_(ids))
                .order_by(JourneyStepLog.id)
            )
        )
    tags = session.scalars(select(ProfileTag).where(ProfileTag.profile_id == profile_id))
    return {
        "journey_instances": [instance_dict(i) for i in instances],
        "journey_steps": [
            {
                "instance_id": str(r.instance_id),
                "step": r.step_id,
                "outcome": r.outcome,
                "at": r.at.isoformat(),
            }
            for r in logs
        ],
        "journey_tags": [
            {"tag": t.tag, "journey": t.journey_key, "at": t.tagged_at.isoformat()} for t in tags
        ],
    }


def _erase(session: Session, now: datetime, profile_id: uuid.UUID) -> int:
    # The step log goes with its instances (ON DELETE CASCADE, and explicitly for SQLite).
    ids = list(
        session.scalars(select(JourneyInstance.id).where(JourneyInstance.profile_id == profile_id))
    )
    touched = 0
    if ids:
        session.execute(delete(JourneyStepLog).where(JourneyStepLog.instance_id.in_(ids)))
        result = session.execute(delete(JourneyInstance).where(JourneyInstance.id.in_(ids)))
        touched += int(getattr(result, "rowcount", 0) or 0)
    result = session.execute(delete(ProfileTag).where(ProfileTag.profile_id == profile_id))
    return touched + int(getattr(result, "rowcount", 0) or 0)


def _last_activity(session: Session, profile_id: uuid.UUID) -> datetime | None:
    return session.scalar(
        select(JourneyInstance.entered_at)
        .where(JourneyInstance.profile_id == profile_id)
        .order_by(JourneyInstance.entered_at.desc())
        .limit(1)
    )


def personal_data_handler() -> PersonalDataHandler:
    return PersonalDataHandler("journeys", _export, _erase, _last_activity)


def _bound(key: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(key.split(":", 2)[-1])
    except ValueError:
        return None


def timeline_source(session: Session, query: TimelineQuery) -> list[TimelineEntry]:
    """`journey` entries: one when the person entered a journey, one when they left it
    (completed or exited, with the reason), newest first."""
    stmt = (
        select(JourneyInstance, Journey.key, Journey.name)
        .join(Journey, Journey.id == JourneyInstance.journey_id)
        .where(JourneyInstance.profile_id == query.profile_id)
        .order_by(JourneyInstance.entered_at.desc(), JourneyInstance.id.desc())
    )
    if query.before is not None:
        at = query.before.at
        stmt = stmt.where(or_(JourneyInstance.entered_at <= at, JourneyInstance.ended_at <= at))
    entries: list[TimelineEntry] = []
    for instance, key, name in session.execute(stmt.limit(query.limit * 2)):
        entries.append(
            TimelineEntry(
                at=instance.entered_at, key=f"journey:{instance.id}", kind="journey",
                title=name, detail={"journey": key, "event": "entered"},
            )
        )  # fmt: skip
        if instance.ended_at is not None:
            entries.append(
                TimelineEntry(
                    at=instance.ended_at, key=f"journey-end:{instance.id}", kind="journey",
                    title=name,
                    detail={"journey": key, "event": instance.status,
                            "reason": instance.exit_reason},
                )
            )  # fmt: skip
    if query.before is not None:
        before = query.before
        entries = [e for e in entries if (e.at, e.key) < (before.at, before.key)]
    entries.sort(key=lambda e: (e.at, e.key), reverse=True)
    return entries[: query.limit]
