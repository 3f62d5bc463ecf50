"""Managing journeys: save (each change a new version), activate, pause, archive, and
read their counts per step and their instances. Functions take a session and plain
values; the API, the CLI and the console call them."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.errors import (
    FieldError,
    InvalidInput,
    NotFound,
    Refused,
    SaidConflict,
    refusal,
)
from parcours.core.pagination import Page, paginate
from parcours.journeys.definition import KEY, NOT_VALID, Definition, parse
from parcours.journeys.log_cursor import events_cursor
from parcours.journeys.models import Journey, JourneyInstance, JourneyStepLog, JourneyVersion

STATUSES = ("draft", "active", "paused", "archived")
INSTANCE_STATUSES = ("active", "completed", "exited")
# Step log outcomes that are not "done": the step was reached, or the person left there.
NOT_DONE = ("reached", "exited", "waiting")


@dataclass(frozen=True)
class JourneyView:
    """A journey with its current definition; times UTC."""

    id: uuid.UUID
    key: str
    name: str
    status: str
    version: int
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    active_instances: int


@dataclass(frozen=True)
class StepCount:
    """How many people reached a step, wait there now, went past it, or left there."""

    step_id: str
    type: str
    entered: int
    waiting: int
    done: int
    exited: int
    outcomes: dict[str, int]


@dataclass(frozen=True)
class JourneyStats:
    key: str
    version: int
    entered: int
    active: int
    completed: int
    exited: int
    steps: list[StepCount]


# What the service refuses, as `message % values` for the console (see definition.py).
NOT_A_NAME = "a non-empty text of at most 200 characters"
UNKNOWN_SEGMENT = "no segment has the key %(key)s"
UNKNOWN_TEMPLATE = "no message template has the key %(key)s"
KEY_FORM = "2 to 64 of a-z, 0-9, '-' and '_', e.g. abandoned-cart"
KEY_IN_USE = "A journey already has the key %(key)s; choose another key."
ARCHIVED_EDIT = "The journey %(key)s is archived; make a new one instead."
ARCHIVED_STATUS = "The journey %(key)s is archived; it cannot change any more."
SERVICE_MESSAGES = (
    NOT_A_NAME, UNKNOWN_SEGMENT, UNKNOWN_TEMPLATE, KEY_FORM, KEY_IN_USE, ARCHIVED_EDIT,
    ARCHIVED_STATUS,
)  # fmt: skip


def _check_name(name: Any) -> list[FieldError]:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return [refusal(NOT_A_NAME, pointer="#/name")]
    return []


def _get(session: Session, key: str) -> Journey:
    journey = session.scalar(select(Journey).where(Journey.key == key))
    if journey is None:
        raise NotFound(f"No journey has the key {key!r}.")
    return journey


def _definition(session: Session, journey: Journey, version: int | None = None) -> dict[str, Any]:
    row = session.get(JourneyVersion, (journey.id, version or journey.current_version))
    assert row is not None
    return row.definition


def _active_counts(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not ids:
        return {}
    rows = session.execute(
        select(JourneyInstance.journey_id, func.count())
        .where(JourneyInstance.journey_id.in_(ids), JourneyInstance.status == "active")
        .group_by(JourneyInstance.journey_id)
    )
    return {journey_id: int(n) for journey_id, n in rows}


def _view(session: Session, journey: Journey, active: int | None = None) -> JourneyView:
    if active is None:
        active = _active_counts(session, [journey.id]).get(journey.id, 0)
    return JourneyView(
        journey.id, journey.key, journey.name, journey.status, journey.current_version,
        _definition(session, journey), journey.created_at, journey.updated_at, active,
    )  # fmt: skip


def _check_references(session: Session, definition: Definition) -> None:
    """Segments and templates named by the definition must exist (checked at save, so a
    journey never fails later on a typo)."""
    from parcours import engagement, segments

    errors: list[FieldError] = []
    if definition.trigger.segment is not None:
        try:
            segments.find_segment(session, definition.trigger.segment)
        except NotFound:
            where = "#/definition/trigger/segment"
            key = repr(definition.trigger.segment)
            errors.append(refusal(UNKNOWN_SEGMENT, pointer=where, key=key))
    for index, step_id in enumerate(definition.order):
        step = definition.steps[step_id]
        if step.type == "send":
            try:
                engagement.get_template(session, str(step.raw["template"]))
            except NotFound:
                where = f"#/definition/steps/{index}/template"
                key = repr(step.raw["template"])
                errors.append(refusal(UNKNOWN_TEMPLATE, pointer=where, key=key))
    if errors:
        first = errors[0]
        detail = f"The journey is not valid: {first.pointer} {first.detail}."
        raise Refused(detail, errors, NOT_VALID)


def create_journey(
    session: Session, now: datetime, actor: Actor, key: str, name: str, definition: dict[str, Any]
) -> JourneyView:
    """A new journey, in draft, at version 1. InvalidInput names each bad part of the
    key, name or definition (JSON pointers); Conflict when the key is taken."""
    errors = [] if KEY.match(key or "") else [
        refusal(KEY_FORM, pointer="#/key")
    ]  # fmt: skip
    errors += _check_name(name)
    if errors:
        detail = f"The journey is not valid: {errors[0].pointer} {errors[0].detail}."
        raise Refused(detail, errors, NOT_VALID)
    checked = parse(definition)
    if session.scalar(select(Journey.id).where(Journey.key == key)) is not None:
        raise SaidConflict(KEY_IN_USE, key=repr(key))
    _check_references(session, checked)
    journey = Journey(
        key=key, name=name.strip(), status="draft", current_version=1, created_at=now,
        updated_at=now, created_by=actor.label,
    )  # fmt: skip
    session.add(journey)
    session.flush()
    session.add(
        JourneyVersion(
            journey_id=journey.id, version=1, definition=definition, created_at=now,
            created_by=actor.label,
        )
    )  # fmt: skip
    session.flush()
    audit.record(session, now, actor, "journey.created", "journey", str(journey.id), key=key)
    return _view(session, journey, 0)


def update_journey(
    session: Session,
    now: datetime,
    actor: Actor,
    key: str,
    definition: dict[str, Any],
    name: str | None = None,
) -> JourneyView:
    """Save a changed definition as a new version: new people start on it, people
    already in the journey finish on theirs. An unchanged definition keeps the version."""
    journey = _get(session, key)
    if journey.status == "archived":
        raise SaidConflict(ARCHIVED_EDIT, key=repr(key))
    errors = _check_name(name) if name is not None else []
    if errors:
        detail = f"The journey is not valid: #/name {errors[0].detail}."
        raise Refused(detail, errors, NOT_VALID)
    checked = parse(definition)
    _check_references(session, checked)
    if name is not None:
        journey.name = name.strip()
    if _definition(session, journey) != definition:
        journey.current_version += 1
        session.add(
            JourneyVersion(
                journey_id=journey.id, version=journey.current_version, definition=definition,
                created_at=now, created_by=actor.label,
            )
        )  # fmt: skip
    journey.updated_at = now
    session.flush()
    audit.record(
        session, now, actor, "journey.changed", "journey", str(journey.id), key=key,
        version=journey.current_version,
    )  # fmt: skip
    return _view(session, journey)


def set_status(session: Session, now: datetime, actor: Actor, key: str, status: str) -> JourneyView:
    """Activate (triggers enter people), pause (nobody enters; people inside go on) or
    archive (nobody enters; people inside go on) a journey."""
    if status not in STATUSES or status == "draft":
        raise InvalidInput(
            f"A journey can be made active, paused or archived, not {status!r}.",
            [FieldError("must be active, paused or archived", parameter="status")],
        )
    journey = _get(session, key)
    if journey.status == "archived":
        raise SaidConflict(ARCHIVED_STATUS, key=repr(key))
    journey.status, journey.updated_at = status, now
    if status == "active":
        events_cursor(session, now)  # listening starts now, never in the log's past
    audit.record(session, now, actor, f"journey.{status}", "journey", str(journey.id), key=key)
    return _view(session, journey)


def get_journey(session: Session, key: str) -> JourneyView:
    """A journey by key; NotFound otherwise."""
    return _view(session, _get(session, key))


def list_journeys(session: Session) -> list[JourneyView]:
    """Every journey, by key, with how many people are in each now (three queries)."""
    rows = list(session.scalars(select(Journey).order_by(Journey.key)))
    active = _active_counts(session, [r.id for r in rows])
    versions = {
        (v.journey_id, v.version): v.definition
        for v in session.scalars(select(JourneyVersion))
        if (v.journey_id, v.version) in {(r.id, r.current_version) for r in rows}
    }
    return [
        JourneyView(
            r.id,
            r.key,
            r.name,
            r.status,
            r.current_version,
            versions[(r.id, r.current_version)],
            r.created_at,
            r.updated_at,
            active.get(r.id, 0),
        )
        for r in rows
    ]


def journey_stats(session: Session, key: str) -> JourneyStats:
    """Counts per step of the current definition (all versions counted together, by
    step id): reached, waiting there now, done (went past it), exited there."""
    journey = _get(session, key)
    definition = parse(_definition(session, journey))
    logged = session.execute(
        select(JourneyStepLog.step_id, JourneyStepLog.outcome, func.count())
        .where(JourneyStepLog.journey_id == journey.id)
        .group_by(JourneyStepLog.step_id, JourneyStepLog.outcome)
    ).all()
    waiting = dict(
        session.execute(
            select(JourneyInstance.current_step, func.count())
            .where(JourneyInstance.journey_id == journey.id, JourneyInstance.status == "active")
            .group_by(JourneyInstance.current_step)
        ).all()
    )
    statuses = Counter[str]()
    for status, n in session.execute(
        select(JourneyInstance.status, func.count())
        .where(JourneyInstance.journey_id == journey.id)
        .group_by(JourneyInstance.status)
    ):
        statuses[status] = int(n)
    by_step: dict[str, Counter[str]] = {}
    for step_id, outcome, n in logged:
        by_step.setdefault(step_id, Counter())[outcome] += int(n)
    steps = []
    for step_id in definition.order:
        counts = by_step.get(step_id, Counter())
        steps.append(
            StepCount(
                step_id, definition.steps[step_id].type, counts["reached"],
                int(waiting.get(step_id, 0)),
                sum(n for o, n in counts.items() if o not in NOT_DONE), counts["exited"],
                {o: n for o, n in sorted(counts.items()) if o not in NOT_DONE},
            )
        )  # fmt: skip
    return JourneyStats(
        journey.key, journey.current_version, sum(statuses.values()), statuses["active"],
        statuses["completed"], statuses["exited"], steps,
    )  # fmt: skip


def list_instances(
    session: Session, key: str, status: str | None = None, cursor: str | None = None,
    limit: int = 50,
) -> Page[JourneyInstance]:  # fmt: skip
    """The people in a journey (or who were), paged by instance id."""
    journey = _get(session, key)
    if status is not None and status not in INSTANCE_STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(INSTANCE_STATUSES)}.",
            [FieldError(f"must be one of {', '.join(INSTANCE_STATUSES)}", parameter="status")],
        )
    stmt = select(JourneyInstance).where(JourneyInstance.journey_id == journey.id)
    if status is not None:
        stmt = stmt.where(JourneyInstance.status == status)
    return paginate(session, stmt, JourneyInstance.id, cursor, limit)


def instance_dict(row: JourneyInstance) -> dict[str, Any]:
    """An instance as JSON (times UTC ISO 8601); the state holds no contact details."""
    return {
        "id": str(row.id),
        "version": row.version,
        "profile_id": str(row.profile_id),
        "status": row.status,
        "current_step": row.current_step,
        "next_run_at": row.next_run_at.isoformat() if row.next_run_at else None,
        "entered_at": row.entered_at.isoformat(),
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "exit_reason": row.exit_reason,
        "state": row.state,
    }


def count_active_journeys(session: Session) -> int:
    """How many journeys take people in now (for the console home page)."""
    query = select(func.count()).select_from(Journey).where(Journey.status == "active")
    return int(session.scalar(query) or 0)
