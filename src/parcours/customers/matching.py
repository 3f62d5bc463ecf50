"""Probabilistic matching of profiles, and the review queue of uncertain pairs.

A run compares the profiles of two sources (a store loyalty file imported as
`import:pos` against `web` accounts) or every live profile with every other, with the
engine of `matching_engine`. Pairs at or above the lower threshold are proposed; those
at or above the upper threshold are merged at once only when the run asks for it,
through `identity.merge_profiles` (audited, reversible by unmerge). A pair is proposed
once: accepted, rejected or merged, it is never proposed again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.db import bulk_insert
from parcours.core.errors import Conflict, FieldError, InvalidInput, NotFound
from parcours.core.ids import new_id
from parcours.core.pagination import Page, paginate
from parcours.customers import identity
from parcours.customers.matching_records import ENGINES, FIELDS, Rule, standardise
from parcours.customers.models import Customer, IdentityIdentifier, MatchCandidate, MatchRun

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

STATUSES = ("pending", "accepted", "rejected", "merged")
_PROFILE_COLUMNS = [getattr(Customer, name) for name in FIELDS]


@dataclass(frozen=True)
class RunRequest:
    """What to compare and what to do with the pairs found.

    Thresholds are match probabilities: pairs from `lower` are proposed for review;
    from `upper` they are merged at once when `auto_merge` is set (else reviewed too).
    A source matches identifiers recorded with that source or a sub-source of it
    (`import` covers `import:pos`).
    """

    source_a: str | None = None
    source_b: str | None = None
    lower: float = 0.5
    upper: float = 0.95
    auto_merge: bool = False
    engine: str = "duckdb"
    blocking: tuple[Rule, ...] | None = None
    training: str = "auto"
    seed: int = 42


@dataclass(frozen=True)
class ProfileSide:
    """One profile of a pair, as the reviewer sees it (current values)."""

    id: uuid.UUID
    values: dict[str, str | None]


@dataclass(frozen=True)
class Candidate:
    """A proposed pair with both profiles side by side."""

    id: uuid.UUID
    run_id: uuid.UUID
    probability: float
    agreement: dict[str, str]
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    merge_id: uuid.UUID | None
    a: ProfileSide
    b: ProfileSide


# ------------------------------------------------------------------ runs


def run_matching(session: Session, now: datetime, actor: Actor, request: RunRequest) -> MatchRun:
    """Compare profiles, queue the uncertain pairs, merge the sure ones if asked; the
    run and its figures are kept (and audited)."""
    # Splink loads only when a run starts: the app and the queue pages do not need it.
    from parcours.customers.matching_engine import EngineOptions, score_pairs

    started = time.perf_counter()
    _check_request(request)
    left = _profiles(session, request.source_a)
    right = _profiles(session, request.source_b) if request.source_b is not None else None
    options = EngineOptions(
        threshold=request.lower,
        blocking=request.blocking,
        engine=request.engine,
        training=request.training,
        seed=request.seed,
    )
    scored = score_pairs(left, right, options)
    pairs = _oriented(scored.pairs)
    fresh = _unknown_pairs(session, pairs)
    run = MatchRun(
        id=new_id(),
        started_at=now,
        actor=actor.label[:100],
        source_a=request.source_a,
        source_b=request.source_b,
        engine=request.engine,
        lower_threshold=request.lower,
        upper_threshold=request.upper,
        auto_merge=request.auto_merge,
        blocking=[list(rule) for rule in scored.blocking],
        fields=list(scored.fields),
        seed=request.seed,
        trained=scored.trained,
        profiles_a=len(left),
        profiles_b=len(right) if right is not None else 0,
        pairs_found=len(pairs),
        pairs_known=len(pairs) - len(fresh),
        queued=0,
        merged=0,
        merge_refused=0,
        seconds=0.0,
    )
    session.add(run)
    session.flush()
    rows = _candidate_rows(run.id, now, fresh, scored.fields)
    if request.auto_merge:
        _merge_sure_pairs(session, now, actor, run, rows, request.upper)
    if rows:
        session.execute(bulk_insert(MatchCandidate), rows)
    run.queued = sum(1 for row in rows if row["status"] == "pending")
    run.merged = sum(1 for row in rows if row["status"] == "merged")
    run.seconds = round(time.perf_counter() - started, 3)
    audit.record(
        session,
        now,
        actor,
        "matching.run",
        "match_run",
        str(run.id),
        pairs_found=run.pairs_found,
        queued=run.queued,
        merged=run.merged,
    )
    return run


def _check_request(request: RunRequest) -> None:
    errors = []
    if (request.source_a is None) != (request.source_b is None):
        errors.append(FieldError("give both sources, or neither to compare every profile"))
    if not 0 < request.lower <= 1:
        errors.append(FieldError("must be above 0 and at most 1", pointer="#/lower"))
    if not 0 < request.upper <= 1:
        errors.append(FieldError("must be above 0 and at most 1", pointer="#/upper"))
    if request.lower > request.upper:
        errors.append(FieldError("must not be above the upper threshold", pointer="#/lower"))
    if request.engine not in ENGINES:
        errors.append(FieldError(f"must be one of {', '.join(ENGINES)}", pointer="#/engine"))
    if errors:
        raise InvalidInput("The matching run's settings are invalid.", errors)


def _profiles(session: Session, source: str | None) -> pd.DataFrame:
    """Live profiles (not merged away, not erased), of a source if one is given."""
    import pandas as pd

    stmt = select(Customer.id, *_PROFILE_COLUMNS).where(
        Customer.merged_into_id.is_(None), Customer.erased_at.is_(None)
    )
    if source is not None:
        ids = IdentityIdentifier
        stmt = stmt.where(
            exists().where(
                ids.profile_id == Customer.id,
                or_(ids.source == source, ids.source.startswith(f"{source}:", autoescape=True)),
            )
        )
    frame = pd.DataFrame(session.execute(stmt.order_by(Customer.id)).all(), columns=["id", *FIELDS])
    if frame.empty:
        return standardise(frame[list(FIELDS)], frame["id"].astype("string"))
    frame["birth_date"] = frame["birth_date"].map(
        lambda d: d.isoformat() if isinstance(d, date) else None
    )
    return standardise(frame[list(FIELDS)], frame["id"].astype(str))


def _oriented(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs as (older profile, newer profile), each once, self-pairs dropped (a profile
    with identifiers from both sources is on both sides)."""
    a, b = pairs["id_a"].astype(str), pairs["id_b"].astype(str)
    older, newer = a.where(a < b, b), b.where(a < b, a)
    out = pairs.assign(id_a=older, id_b=newer)
    out = out[out["id_a"] != out["id_b"]]
    out = out.sort_values(["probability", "id_a", "id_b"], ascending=[False, True, True])
    return out.drop_duplicates(["id_a", "id_b"], ignore_index=True)


def _unknown_pairs(session: Session, pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs never proposed before (whatever became of them)."""
    import pandas as pd

    if pairs.empty:
        return pairs
    known = pd.DataFrame(
        session.execute(select(MatchCandidate.profile_a, MatchCandidate.profile_b)).all(),
        columns=["id_a", "id_b"],
    ).astype(str)
    merged = pairs.merge(known, on=["id_a", "id_b"], how="left", indicator=True)
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge").reset_index(drop=True)


def _candidate_rows(
    run_id: uuid.UUID, now: datetime, pairs: pd.DataFrame, fields: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows for the queue, best first; ids are made in that order, so the queue (paged
    by id) shows each run's likeliest pairs first."""
    agreements = pairs[list(fields)].to_dict("records") if len(fields) else [{}] * len(pairs)
    return [
        {
            "id": new_id(),
            "run_id": run_id,
            "profile_a": uuid.UUID(a),
            "profile_b": uuid.UUID(b),
            "probability": float(p),
            "match_weight": float(w),
            "agreement": {k: str(v) for k, v in agreement.items()},
            "status": "pending",
            "created_at": now,
            "decided_at": None,
            "decided_by": None,
            "merge_id": None,
        }
        for a, b, p, w, agreement in zip(
            pairs["id_a"],
            pairs["id_b"],
            pairs["probability"],
            pairs["match_weight"],
            agreements,
            strict=True,
        )
    ]


def _merge_sure_pairs(
    session: Session,
    now: datetime,
    actor: Actor,
    run: MatchRun,
    rows: list[dict[str, Any]],
    upper: float,
) -> None:
    """Merge each pair at or above `upper` (older profile kept). A merge the identity
    rules refuse (two customer numbers...) leaves the pair for review instead."""
    for row in rows:
        if row["probability"] < upper:
            continue
        reason = f"matching run {run.id}: probability {row['probability']:.3f}"
        try:
            with session.begin_nested():
                merge_id = identity.merge_profiles(
                    session, now, actor, row["profile_a"], row["profile_b"], reason
                )
        except Conflict:
            run.merge_refused += 1
            continue
        row.update(status="merged", merge_id=merge_id, decided_at=now, decided_by=actor.label)


def list_runs(session: Session, limit: int = 20) -> list[MatchRun]:
    """The latest runs, newest first."""
    return list(session.scalars(select(MatchRun).order_by(MatchRun.id.desc()).limit(limit)))


def get_run(session: Session, run_id: uuid.UUID) -> MatchRun:
    run = session.get(MatchRun, run_id)
    if run is None:
        raise NotFound(f"No matching run has the id {run_id}.")
    return run


# ------------------------------------------------------------------ review queue


def _live_pairs(stmt: Select[Any]) -> Select[Any]:
    """Keep pairs whose two profiles are still live: a pair whose profile was merged
    away or erased since has nothing left to decide."""
    for column in (MatchCandidate.profile_a, MatchCandidate.profile_b):
        side = aliased(Customer)
        stmt = stmt.where(
            exists().where(
                side.id == column, side.merged_into_id.is_(None), side.erased_at.is_(None)
            )
        )
    return stmt


def review_queue(
    session: Session,
    now: datetime,
    actor: Actor,
    status: str = "pending",
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Candidate]:
    """A page of proposed pairs with both profiles (personal data: the view is audited)."""
    if status not in STATUSES:
        raise InvalidInput(
            f"Unknown status {status!r}.",
            [FieldError(f"must be one of {', '.join(STATUSES)}", parameter="status")],
        )
    stmt = select(MatchCandidate).where(MatchCandidate.status == status)
    if status == "pending":
        stmt = _live_pairs(stmt)
    page = paginate(session, stmt, MatchCandidate.id, cursor, limit)
    items = _with_profiles(session, page.items)
    audit.record(
        session,
        now,
        actor,
        "matching.queue_viewed",
        "customer",
        None,
        status=status,
        count=len(items),
    )
    return Page(items, page.next_cursor)


def count_pending(session: Session) -> int:
    """Pairs waiting for a decision."""
    stmt = _live_pairs(
        select(func.count()).select_from(MatchCandidate).where(MatchCandidate.status == "pending")
    )
    return session.scalar(stmt) or 0


def get_candidate(
    session: Session, now: datetime, actor: Actor, candidate_id: uuid.UUID
) -> Candidate:
    """One proposed pair with both profiles (audited)."""
    row = _candidate(session, candidate_id)
    audit.record(session, now, actor, "matching.pair_viewed", "match_candidate", str(row.id))
    return _with_profiles(session, [row])[0]


def _candidate(session: Session, candidate_id: uuid.UUID) -> MatchCandidate:
    row = session.get(MatchCandidate, candidate_id)
    if row is None:
        raise NotFound(f"No proposed pair has the id {candidate_id}.")
    return row


def _with_profiles(session: Session, rows: Sequence[MatchCandidate]) -> list[Candidate]:
    ids = {pid for row in rows for pid in (row.profile_a, row.profile_b)}
    profiles: dict[uuid.UUID, dict[str, str | None]] = {}
    if ids:
        for found in session.execute(
            select(Customer.id, *_PROFILE_COLUMNS).where(Customer.id.in_(ids))
        ):
            profiles[found[0]] = {
                name: (str(value) if value is not None else None)
                for name, value in zip(FIELDS, found[1:], strict=True)
            }
    return [
        Candidate(
            id=row.id,
            run_id=row.run_id,
            probability=row.probability,
            agreement=dict(row.agreement),
            status=row.status,
            created_at=row.created_at,
            decided_at=row.decided_at,
            decided_by=row.decided_by,
            merge_id=row.merge_id,
            a=ProfileSide(row.profile_a, profiles.get(row.profile_a, {})),
            b=ProfileSide(row.profile_b, profiles.get(row.profile_b, {})),
        )
        for row in rows
    ]


def _claim(
    session: Session, now: datetime, actor: Actor, candidate_id: uuid.UUID, status: str
) -> MatchCandidate:
    """Decide a pending pair, once: a second decision (another reviewer, a double
    click) is a Conflict, whoever was first."""
    row = _candidate(session, candidate_id)
    claimed = session.execute(
        update(MatchCandidate)
        .where(MatchCandidate.id == candidate_id, MatchCandidate.status == "pending")
        .values(status=status, decided_at=now, decided_by=actor.label[:100])
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        session.refresh(row)
        raise Conflict(f"This pair was already decided ({row.status}).")
    session.refresh(row)
    return row


def accept_candidate(
    session: Session, now: datetime, actor: Actor, candidate_id: uuid.UUID
) -> uuid.UUID:
    """Merge the pair (the older profile is kept); returns the merge id. Audited by
    the merge and here."""
    row = _claim(session, now, actor, candidate_id, "accepted")
    reason = f"matching review: pair {row.id}, probability {row.probability:.3f}"
    merge_id = identity.merge_profiles(session, now, actor, row.profile_a, row.profile_b, reason)
    row.merge_id = merge_id
    audit.record(
        session,
        now,
        actor,
        "matching.accepted",
        "match_candidate",
        str(row.id),
        merge_id=str(merge_id),
    )
    return merge_id


def reject_candidate(
    session: Session, now: datetime, actor: Actor, candidate_id: uuid.UUID
) -> None:
    """Keep the two profiles apart; the pair will not be proposed again."""
    row = _claim(session, now, actor, candidate_id, "rejected")
    audit.record(session, now, actor, "matching.rejected", "match_candidate", str(row.id))
