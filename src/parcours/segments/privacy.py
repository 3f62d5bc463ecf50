"""A person's rights over segments: the segments they are in (access export), and
their memberships removed on erasure (no `Segment Exited` event: nobody is to be told)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from parcours.customers import PersonalDataHandler
from parcours.segments.models import Segment, SegmentMember


def export_memberships(session: Session, profile_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    rows = session.execute(
        select(Segment.key, Segment.name, SegmentMember.entered_at)
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(SegmentMember.profile_id == profile_id)
        .order_by(Segment.key)
    )
    return {
        "segment_members": [
            {"segment": key, "name": name, "entered_at": at} for key, name, at in rows
        ]
    }


def erase_memberships(session: Session, now: datetime, profile_id: uuid.UUID) -> int:
    found = list(
        session.scalars(
            select(SegmentMember.segment_id).where(SegmentMember.profile_id == profile_id)
        )
    )
    if not found:
        return 0
    session.execute(delete(SegmentMember).where(SegmentMember.profile_id == profile_id))
    for segment in session.scalars(select(Segment).where(Segment.id.in_(found))):
        segment.member_count = max(0, segment.member_count - 1)
    return len(found)


def personal_data_handler() -> PersonalDataHandler:
    return PersonalDataHandler("segments", export_memberships, erase_memberships)
