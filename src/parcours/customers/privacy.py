"""Privacy: subject access export, erasure everywhere, erasure tombstones, retention.

- `export_person` gathers everything about a person from every context (profile,
  identity, events, consents, audit entries about them, and the contexts above
  customers through `PersonalDataHandler`s) for a zip of JSON and CSV files.
- `erase_person` deletes the person's events, identity data, traits and consents,
  pseudonymises the profile row (its id stays, every personal field is emptied), lets
  the handlers do their part (orders keep their amounts for accounting, without the
  person), and stores tombstones: keyed hashes of the erased identifiers.
- `erased_identifiers(session, pairs)` tells tracking and imports which identifiers an
  erasure blocked: their data never comes back until the person gives a new consent
  (a confirmed double opt-in clears the tombstone of that address, `clear_tombstone`).
- `apply_retention` deletes what is kept longer than the retention rules allow; the
  worker runs it every hour (`retention_job`).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO, Any, cast

from sqlalchemy import CursorResult, delete, exists, false, func, or_, select, update
from sqlalchemy.orm import Session

from parcours.core import audit, signing
from parcours.core.audit import SYSTEM_ACTOR, Actor
from parcours.core.clock import Clock
from parcours.core.db import Database, bulk_insert
from parcours.core.errors import Conflict
from parcours.core.events import PeriodicJob
from parcours.core.memo import Expiring
from parcours.core.models import AuditEntry
from parcours.core.settings import Settings, get_settings
from parcours.customers import consent, identity, identity_log, tracking
from parcours.customers.models import (
    ComputedTraits,
    Consent,
    ConsentConfirmation,
    Customer,
    CustomerImport,
    CustomerImportError,
    Erasure,
    ErasureTombstone,
    IdentityIdentifier,
    TombstoneState,
    TrackedEvent,
)

TOMBSTONE_SIGNING = "erasure-tombstone"
_CHUNK = 5000
# Columns of `customers` an erasure keeps: the bare id, the row's own bookkeeping and the
# merge pointer (so an old id still leads to the erased person, and nowhere else).
_KEPT_COLUMNS = frozenset({"id", "created_at", "updated_at", "erased_at", "merged_into_id"})


# ------------------------------------------------------------------ handlers


Tables = Mapping[str, list[dict[str, Any]]]


@dataclass(frozen=True)
class PersonalDataHandler:
    """What a context above customers (orders, loyalty...) does for a person's rights.

    `export` returns its tables about the profile ({table name: rows}); `erase` removes
    or pseudonymises them and returns how many rows it touched; `last_activity` (when
    given) tells the retention rules when the person last dealt with that context.
    """

    name: str
    export: Callable[[Session, uuid.UUID], Tables]
    erase: Callable[[Session, datetime, uuid.UUID], int]
    last_activity: Callable[[Session, uuid.UUID], datetime | None] | None = None


# ------------------------------------------------------------------ tombstones


def _tombstone_digest(secret: bytes, kind: str, value: str) -> str:
    return signing.keyed_digest(secret, TOMBSTONE_SIGNING, f"{kind}\x00{value}")


def erasures_in_force(session: Session) -> bool:
    """Whether any identifier is blocked by an erasure (one indexed read): when none is,
    callers skip normalising identifiers for `erased_identifiers`."""
    return session.scalar(select(ErasureTombstone.digest).limit(1)) is not None


def _tombstones_changed(session: Session) -> None:
    """Count a change to the tombstones, in the changing transaction (see
    `blocked_digests`)."""
    session.execute(
        update(TombstoneState)
        .where(TombstoneState.id == 1)
        .values(version=TombstoneState.version + 1)
    )


_VERSION = select(TombstoneState.version).where(TombstoneState.id == 1)


def blocked_digests(
    session: Session, memory: Expiring[str, tuple[int, frozenset[str]]]
) -> frozenset[str]:
    """The digests of every tombstone, kept in `memory` (a server process's) and read
    again only when their version moved: one one-row read per call.

    The version is read before the digests, so a change committed in between is in the
    digests read (and read again at the next call), never missed."""
    version = session.scalar(_VERSION)
    held = memory.get("tombstones")
    if held is not None and held[0] == version:
        return held[1]
    digests = frozenset(session.scalars(select(ErasureTombstone.digest)))
    if version is not None:  # (without its row, never trust a copy)
        memory.put("tombstones", (int(version), digests))
    return digests


def erased_identifiers(
    session: Session,
    pairs: Iterable[tuple[str, str]],
    remembered: Expiring[tuple[str, str], str] | None = None,
    blocked: frozenset[str] | None = None,
) -> set[tuple[str, str]]:
    """The (kind, normalised value) pairs among `pairs` that an erasure blocked.

    `remembered`, when given, keeps each pair's tombstone digest across calls (the
    installation's secret never changes, so neither do they); `blocked`, every
    tombstone's digest as `blocked_digests` answers, replaces the lookup query."""
    wanted = set(pairs)
    secret = signing.instance_secret(session) if wanted else None
    if secret is None:  # no secret yet: nothing was ever erased
        return set()
    by_digest = {}
    for pair in wanted:
        digest = remembered.get(pair) if remembered is not None else None
        if digest is None:
            digest = _tombstone_digest(secret, *pair)
            if remembered is not None:
                remembered.put(pair, digest)
        by_digest[digest] = pair
    if blocked is not None:
        return {pair for digest, pair in by_digest.items() if digest in blocked}
    digests = sorted(by_digest)
    found: set[str] = set()
    for start in range(0, len(digests), _CHUNK):
        chunk = digests[start : start + _CHUNK]
        found.update(
            session.scalars(
                select(ErasureTombstone.digest).where(ErasureTombstone.digest.in_(chunk))
            )
        )
    return {by_digest[digest] for digest in found}


def clear_tombstone(session: Session, kind: str, value: str) -> bool:
    """Lift the block on one identifier (the person gave a new consent); True if any."""
    secret = signing.instance_secret(session)
    if secret is None:
        return False
    digest = _tombstone_digest(secret, kind, value)
    result = session.execute(delete(ErasureTombstone).where(ErasureTombstone.digest == digest))
    cleared = bool(cast("CursorResult[Any]", result).rowcount)
    if cleared:
        _tombstones_changed(session)
    return cleared


def _bury(
    session: Session, now: datetime, erasure_id: uuid.UUID, pairs: set[tuple[str, str]]
) -> int:
    secret = signing.instance_secret(session, now)
    assert secret is not None
    rows = {_tombstone_digest(secret, kind, value): kind for kind, value in pairs if value.strip()}
    existing = set(
        session.scalars(
            select(ErasureTombstone.digest).where(ErasureTombstone.digest.in_(sorted(rows)))
        )
    )
    fresh = [
        {"digest": d, "kind": kind, "erasure_id": erasure_id, "created_at": now}
        for d, kind in rows.items()
        if d not in existing
    ]
    if fresh:
        session.execute(bulk_insert(ErasureTombstone), fresh)
        _tombstones_changed(session)
    return len(rows)


# ------------------------------------------------------------------ export


@dataclass(frozen=True)
class SubjectExport:
    """Everything about one person: {table name: rows of JSON-able values}."""

    profile_id: uuid.UUID
    exported_at: datetime
    tables: dict[str, list[dict[str, Any]]]


def _plain(value: Any) -> Any:
    """A JSON-able copy of a column value."""
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def _row(obj: Any) -> dict[str, Any]:
    return {column.key: _plain(getattr(obj, column.key)) for column in obj.__table__.columns}


def _profile_pairs(session: Session, rows: Sequence[Customer]) -> set[tuple[str, str]]:
    """Every identifier of a person: the identity graph's (of the live profile, the
    first row) and those in the rows' own fields."""
    pairs = {(i.kind, i.value) for i in identity.identifiers_of(session, rows[0].id)}
    for row in rows:
        for kind, value in (
            ("email", row.email),
            ("phone", row.phone),
            ("customer_number", row.customer_number),
        ):
            normal = identity.normalise(kind, value) if value else None
            if normal is not None:
                pairs.add((kind, normal))
    return pairs


def _person_rows(session: Session, profile_id: uuid.UUID) -> list[Customer]:
    """The rows of one person: the live profile first, then those merged into it."""
    live = consent.get_profile(session, profile_id)
    members = consent.person_ids(session, live.id)
    others = session.scalars(select(Customer).where(Customer.id.in_(members[1:]))).all()
    return [live, *sorted(others, key=lambda c: c.id)]


def export_person(
    session: Session,
    now: datetime,
    actor: Actor,
    profile_id: uuid.UUID,
    handlers: Sequence[PersonalDataHandler] = (),
) -> SubjectExport:
    """Everything Parcours holds about a person, all merged profiles included (audited)."""
    identity_log.resolve_logged_events(session, now)  # links of events not read yet
    rows = _person_rows(session, profile_id)
    live, ids = rows[0].id, [row.id for row in rows]
    pairs = _profile_pairs(session, rows)
    tables: dict[str, list[dict[str, Any]]] = {"profile": [_row(row) for row in rows]}
    for name, table_rows in identity.export_identity(session, live).items():
        tables[f"identity_{name}"] = [_plain(row) for row in table_rows]
    tables["events"] = [_plain(row) for row in tracking.export_events(session, sorted(pairs))]
    tables["consents"] = _rows_of(session, Consent, Consent.customer_id.in_(ids))
    emails = sorted(value for kind, value in pairs if kind == "email")
    tables["consent_confirmations"] = _rows_of(
        session,
        ConsentConfirmation,
        or_(
            ConsentConfirmation.customer_id.in_(ids),
            ConsentConfirmation.email.in_(emails) if emails else false(),
        ),
    )
    tables["computed_traits"] = _rows_of(
        session, ComputedTraits, ComputedTraits.profile_id.in_(ids)
    )
    tables["audit_log"] = _rows_of(
        session,
        AuditEntry,
        (AuditEntry.target_type == "customer") & AuditEntry.target_id.in_([str(i) for i in ids]),
    )
    for handler in handlers:
        for profile in ids:
            for name, handler_rows in handler.export(session, profile).items():
                key = name if name.startswith(handler.name) else f"{handler.name}_{name}"
                tables.setdefault(key, []).extend(_plain(row) for row in handler_rows)
    audit.record(
        session,
        now,
        actor,
        "customer.exported",
        "customer",
        str(live),
        rows={name: len(table_rows) for name, table_rows in tables.items()},
    )
    return SubjectExport(live, now, tables)


def _rows_of(session: Session, model: Any, condition: Any) -> list[dict[str, Any]]:
    return [_row(obj) for obj in session.scalars(select(model).where(condition))]


def write_export_zip(export: SubjectExport, stream: IO[bytes]) -> None:
    """The export as a zip: `person.json` with every table, and one CSV per table."""
    document = {
        "profile_id": str(export.profile_id),
        "exported_at": export.exported_at.isoformat(),
        "tables": export.tables,
    }
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "person.json", json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True)
        )
        for name, rows in export.tables.items():
            archive.writestr(f"{name}.csv", _csv(rows))


def export_zip(export: SubjectExport) -> bytes:
    buffer = io.BytesIO()
    write_export_zip(export, buffer)
    return buffer.getvalue()


def _csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


# ------------------------------------------------------------------ erasure


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did: rows removed per data class and identifiers blocked."""

    erasure_id: uuid.UUID
    profile_id: uuid.UUID
    erased_at: datetime
    counts: dict[str, int]
    tombstones: int


def erase_person(
    session: Session,
    now: datetime,
    actor: Actor,
    profile_id: uuid.UUID,
    handlers: Sequence[PersonalDataHandler] = (),
    reason: str = "request of the person",
) -> ErasureReport:
    """Erase a person everywhere, all merged profiles included (audited); `Conflict` if
    already erased.

    Events, identity data, traits and consents are deleted; the profile rows keep only
    their ids; handlers erase their contexts' part; the identifiers become tombstones.
    """
    identity_log.resolve_logged_events(session, now)  # links of events not read yet
    rows = _person_rows(session, profile_id)
    live, ids = rows[0], [row.id for row in rows]
    if live.erased_at is not None:
        raise Conflict(f"Customer {live.id} was already erased ({live.erased_at:%Y-%m-%d}).")
    pairs = _profile_pairs(session, rows)
    counts: dict[str, int] = {
        "profiles": len(ids),
        "events": tracking.erase_events(session, sorted(pairs)),
    }
    for handler in handlers:
        counts[handler.name] = sum(handler.erase(session, now, profile) for profile in ids)
    erased_pairs = identity.erase_identity(session, live.id)
    pairs.update(erased_pairs)
    counts["identifiers"] = len(erased_pairs)
    emails = [value for kind, value in pairs if kind == "email"]
    counts["consents"] = consent.erase_consents(session, ids, emails)
    counts["computed_traits"] = _deleted(
        session, delete(ComputedTraits).where(ComputedTraits.profile_id.in_(ids))
    )
    for row in rows:
        _pseudonymise(row, now)
    erasure = Erasure(
        customer_id=live.id, erased_at=now, actor=actor.label, reason=reason[:200], counts=counts
    )
    session.add(erasure)
    session.flush()
    buried = _bury(session, now, erasure.id, pairs)
    audit.record(
        session,
        now,
        actor,
        "customer.erased",
        "customer",
        str(live.id),
        counts=counts,
        tombstones=buried,
    )
    return ErasureReport(erasure.id, live.id, now, counts, buried)


def _pseudonymise(customer: Customer, now: datetime) -> None:
    """Empty every personal field of the row (nullable ones to NULL, the others to their
    default), whatever columns the table grows later."""
    for column in Customer.__table__.columns:
        if column.key in _KEPT_COLUMNS:
            continue
        if column.nullable:
            setattr(customer, column.key, None)
        elif column.default is not None and getattr(column.default, "is_scalar", False):
            setattr(customer, column.key, column.default.arg)
    customer.erased_at = now
    customer.updated_at = now


def _deleted(session: Session, stmt: Any) -> int:
    return int(cast("CursorResult[Any]", session.execute(stmt)).rowcount)


# ------------------------------------------------------------------ retention


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each data class is kept (0: forever). Defaults follow the CNIL's guidance:
    13 months for audience measurement of anonymous visitors, 3 years after the last
    contact for prospects, 5 years for the proof of a consent (the limitation period),
    about a year for access logs."""

    anonymous_events_days: int = 395
    events_days: int = 1095
    inactive_profiles_days: int = 1095
    consent_proofs_days: int = 1825
    unconfirmed_days: int = 30
    audit_log_days: int = 365
    import_reports_days: int = 90

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            anonymous_events_days=settings.retention_anonymous_events_days,
            events_days=settings.retention_events_days,
            inactive_profiles_days=settings.retention_inactive_profiles_days,
            consent_proofs_days=settings.retention_consent_proofs_days,
            unconfirmed_days=settings.retention_unconfirmed_days,
            audit_log_days=settings.retention_audit_log_days,
            import_reports_days=settings.retention_import_reports_days,
        )


@dataclass
class RetentionReport:
    """Rows removed per data class, and profiles erased for inactivity."""

    removed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def _cutoff(now: datetime, days: int) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def apply_retention(
    session: Session,
    now: datetime,
    policy: RetentionPolicy,
    handlers: Sequence[PersonalDataHandler] = (),
    max_profiles: int = 200,
) -> RetentionReport:
    """Delete what the policy no longer allows to keep; erase at most `max_profiles`
    inactive profiles per run (the next run continues)."""
    identity_log.resolve_logged_events(session, now)  # before deleting events
    report = RetentionReport()
    removed = report.removed
    if cutoff := _cutoff(now, policy.events_days):
        removed["events"] = _deleted(
            session, delete(TrackedEvent).where(TrackedEvent.timestamp < cutoff)
        )
    if cutoff := _cutoff(now, policy.anonymous_events_days):
        removed["anonymous_events"] = _delete_anonymous_events(session, cutoff)
    if cutoff := _cutoff(now, policy.consent_proofs_days):
        removed["consent_proofs"] = consent.purge_superseded(session, now, cutoff)
    if cutoff := _cutoff(now, policy.unconfirmed_days):
        removed["unconfirmed_consents"] = consent.purge_unconfirmed(session, cutoff)
    if cutoff := _cutoff(now, policy.import_reports_days):
        removed["import_reports"] = _delete_import_runs(session, cutoff)
    if cutoff := _cutoff(now, policy.audit_log_days):
        removed["audit_log"] = _deleted(session, delete(AuditEntry).where(AuditEntry.at < cutoff))
    if cutoff := _cutoff(now, policy.inactive_profiles_days):
        inactive = inactive_profiles(session, cutoff, handlers, max_profiles)
        for profile_id in inactive:
            erase_person(
                session, now, SYSTEM_ACTOR, profile_id, handlers, reason="retention: inactive"
            )
        removed["inactive_profiles"] = len(inactive)
    return report


def _delete_anonymous_events(session: Session, before: datetime) -> int:
    """Events without a user id whose anonymous id no profile holds."""
    linked = exists().where(
        IdentityIdentifier.kind == "anonymous_id",
        IdentityIdentifier.value == TrackedEvent.anonymous_id,
    )
    stmt = delete(TrackedEvent).where(
        TrackedEvent.timestamp < before, TrackedEvent.user_id.is_(None), ~linked
    )
    return _deleted(session, stmt)


def _delete_import_runs(session: Session, before: datetime) -> int:
    old = select(CustomerImport.id).where(CustomerImport.updated_at < before)
    _deleted(session, delete(CustomerImportError).where(CustomerImportError.import_id.in_(old)))
    return _deleted(session, delete(CustomerImport).where(CustomerImport.updated_at < before))


def inactive_profiles(
    session: Session,
    before: datetime,
    handlers: Sequence[PersonalDataHandler] = (),
    limit: int = 200,
) -> list[uuid.UUID]:
    """Live profiles with no contact since `before`: not changed, no consent decision,
    no event, and no activity in any handler's context (oldest first). A person's merged
    profiles count as theirs; a merged-away row is never a candidate itself."""
    recent_consent = exists().where(Consent.customer_id == Customer.id, Consent.at >= before)
    candidates = session.scalars(
        select(Customer)
        .where(
            Customer.erased_at.is_(None),
            Customer.merged_into_id.is_(None),
            func.coalesce(Customer.updated_at, Customer.created_at) < before,
            ~recent_consent,
        )
        .order_by(Customer.updated_at, Customer.id)
        .limit(limit * 4)
    ).all()
    inactive: list[uuid.UUID] = []
    for customer in candidates:
        if len(inactive) >= limit:
            break
        if _seen_since(session, customer, before, handlers):
            continue
        inactive.append(customer.id)
    return inactive


def _seen_since(
    session: Session, customer: Customer, before: datetime, handlers: Sequence[PersonalDataHandler]
) -> bool:
    members = consent.person_ids(session, customer.id)
    if len(members) > 1:
        touched = session.scalar(
            select(
                exists().where(
                    Customer.id.in_(members[1:]),
                    or_(
                        Customer.updated_at >= before,
                        exists().where(Consent.customer_id == Customer.id, Consent.at >= before),
                    ),
                )
            )
        )
        if touched:
            return True
    identifiers = identity.identifiers_of(session, customer.id)
    if any(i.last_seen >= before for i in identifiers):
        return True
    senders = sorted({i.value for i in identifiers if i.kind in identity_log.SENDER_KINDS})
    if senders:
        sent = identity_log.sender_events(dict.fromkeys(identity_log.SENDER_KINDS, senders))
        recent = session.scalar(select(exists().where(sent, TrackedEvent.timestamp >= before)))
        if recent:
            return True
    for handler in handlers:
        if handler.last_activity is None:
            continue
        for member in members:
            last = handler.last_activity(session, member)
            if last is not None and last >= before:
                return True
    return False


def retention_job(handlers: Sequence[PersonalDataHandler] = ()) -> PeriodicJob:
    """The hourly retention run (the worker's), with the settings' policy."""

    def run(db: Database, clock: Clock) -> int:
        policy = RetentionPolicy.from_settings(get_settings())
        with db.transaction() as session:
            return apply_retention(session, clock.now(), policy, handlers).total

    return PeriodicJob("customers.retention", 3600.0, run)
