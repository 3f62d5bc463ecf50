"""Customer profiles and their consents."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, JSONType, UTCDateTime, UUIDType
from parcours.core.ids import new_id
from parcours.core.models import AutoBigInt


class Customer(Base):
    """One person, whatever the channel they use. Email is stored normalised
    (lower-case), phone in E.164."""

    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    customer_number: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    first_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    last_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    postcode: Mapped[str | None] = mapped_column(String(12), nullable=True)
    city: Mapped[str | None] = mapped_column(String(120), nullable=True)
    country: Mapped[str] = mapped_column(String(2), default="FR")
    locale: Mapped[str] = mapped_column(String(8), default="fr")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    preferred_store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # indexed for the segments' incremental pass (profiles changed since its last run)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set by an erasure (privacy.py): the row keeps its id, every personal field is NULL.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set when an identity merge absorbed this profile: lookups follow it to the survivor.
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True, index=True)


class Consent(Base):
    """A consent decision for one purpose on one channel, kept as proof (append-only:
    the latest row per customer, purpose and channel is in force)."""

    __tablename__ = "consents"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("customers.id", ondelete="CASCADE")
    )
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(64))
    proof: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The version of the text the person agreed to, and the evidence of the decision
    # (hash of the form text, IP, user agent, the confirmation that granted it...).
    wording_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)

    __table_args__ = (
        Index("ix_consents_customer_purpose", "customer_id", "purpose", "channel", "at"),
    )


# ------------------------------------------------------------------ tracking
# The tracked events log (owner: tracking.py). Tables go here.


class TrackedEvent(Base):
    """One Segment-spec message from any channel, as received (append-only).

    `seq` orders the log. A profile's events are found through its identifiers
    (`user_id`, `anonymous_id`), so merges and unmerges never rewrite the log.
    `timestamp` is the event time corrected for the sender's clock skew.
    """

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(200), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    previous_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    group_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    channel: Mapped[str] = mapped_column(String(24))
    store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    source_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    original_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    traits: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)

    __table_args__ = (Index("ix_events_timestamp", "timestamp"),)


class EventSender(Base):
    """The log's index by sender: one row per user id and anonymous id of an event.

    Written by the log's identity reader (`identity_log`), not by ingestion: indexing
    the log by these random keys inside each request cost it a third of its time (the
    pages a commit dirties are scattered across both indexes). Events past the reader's
    position are found by scanning the log's tail (`identity_log.sender_events`).
    Deleting an event deletes its rows.
    """

    __tablename__ = "event_senders"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # user_id | anonymous_id
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    seq: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("events.seq", ondelete="CASCADE"), primary_key=True, index=True
    )

    __table_args__ = ({"sqlite_with_rowid": False},)


# ------------------------------------------------------------------ identity
# Identifiers, observations, merges and traits (owner: identity.py). Tables go here.


class IdentityCluster(Base):
    """Profiles tied by any observation, even a refused one: the unit a replay recomputes.

    `conflicted` is set once a rule refused a link in it (or an unmerge separated it):
    only then does the order of its observations matter.
    """

    __tablename__ = "identity_clusters"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    conflicted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdentityIdentifier(Base):
    """One normalised identifier and the profile it resolves to (always a live profile).

    `origin_profile_id` is the profile it was first attached to: an unmerge gives it back.
    """

    __tablename__ = "identity_identifiers"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(320), primary_key=True)
    profile_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    origin_profile_id: Mapped[uuid.UUID] = mapped_column(UUIDType)
    cluster_id: Mapped[uuid.UUID] = mapped_column(UUIDType, index=True)
    source: Mapped[str] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class IdentityObservation(Base):
    """The evidence: identifiers seen together (`identifiers`: [[kind, value], ...]).

    `link_key` hashes the identifier set, so a set already on record is not stored again;
    `kind` is "seen" (tracking, imports) or "manual" (a merge decided by a person, whose
    `keep_profile_id` survives).
    """

    __tablename__ = "identity_observations"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    cluster_id: Mapped[uuid.UUID] = mapped_column(UUIDType)
    kind: Mapped[str] = mapped_column(String(16), default="seen")
    identifiers: Mapped[list[list[str]]] = mapped_column(JSONType)
    link_key: Mapped[str] = mapped_column(String(40), index=True)
    source: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    keep_profile_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_identity_observations_cluster_observed", "cluster_id", "observed_at"),
    )


class IdentityMerge(Base):
    """A merge of `absorbed_id` into `kept_id`, or a link a rule refused (`outcome`).

    `identifiers` are the observation's identifiers that triggered it; the two sides'
    identifying identifiers at merge time are kept so that an unmerge can keep them apart
    (`separating`) when the cluster is replayed.
    """

    __tablename__ = "identity_merges"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    cluster_id: Mapped[uuid.UUID] = mapped_column(UUIDType, index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # "merged" | "refused"
    kept_id: Mapped[uuid.UUID] = mapped_column(UUIDType, index=True)
    absorbed_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True, index=True)
    rule: Mapped[str] = mapped_column(String(64))
    identifiers: Mapped[list[list[str]]] = mapped_column(JSONType)
    kept_identifiers: Mapped[list[list[str]]] = mapped_column(JSONType)
    absorbed_identifiers: Mapped[list[list[str]]] = mapped_column(JSONType)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    source: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    undone_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    undone_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    separating: Mapped[bool] = mapped_column(Boolean, default=False)


class IdentityTrait(Base):
    """One trait value from one source, attached to the identifier it came with.

    A profile's traits are those of its identifiers, so merges and unmerges move them
    without rewriting; per (identifier, trait, source) the latest observation wins.
    """

    __tablename__ = "identity_traits"

    anchor_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    anchor_value: Mapped[str] = mapped_column(String(320), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)


# ------------------------------------------------------------------ consent & privacy
# Double opt-in, erasure tombstones, import runs (owner: consent.py, privacy.py,
# imports.py). Tables go here.


class ConsentConfirmation(Base):
    """A double opt-in request: the email consent is granted only when the person opens
    the signed link sent to `email` and confirms. `customer_id` is NULL when the request
    came for an address no profile holds yet (the profile is made on confirmation)."""

    __tablename__ = "consent_confirmations"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        UUIDType, ForeignKey("customers.id", ondelete="CASCADE"), nullable=True, index=True
    )
    email: Mapped[str] = mapped_column(String(254), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    wording_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locale: Mapped[str] = mapped_column(String(8))
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    consent_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)


class Erasure(Base):
    """The minimal proof that a person's data was erased: when, by whom, how much.
    It holds no personal data; the profile id is a bare, pseudonymous key."""

    __tablename__ = "erasures"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUIDType, index=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(String(200))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ErasureTombstone(Base):
    """A keyed SHA-256 (HMAC under the installation secret) of one erased identifier:
    tracking and imports drop data carrying it until a new consent clears it."""

    __tablename__ = "erasure_tombstones"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    erasure_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("erasures.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TombstoneState(Base):
    """One row: a number every change to `erasure_tombstones` increments, in the same
    transaction, so that a server process holding the tombstones in memory knows when
    to read them again (`privacy.blocked_digests`)."""

    __tablename__ = "tombstone_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)  # 1
    version: Mapped[int] = mapped_column(BigInteger)


class CustomerImport(Base):
    """One customer file import and its checkpoint: `rows_done` data rows (in file order)
    are committed, so a re-run of the same file continues after them."""

    __tablename__ = "customer_imports"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    file_sha256: Mapped[str] = mapped_column(String(64))
    plan_sha256: Mapped[str] = mapped_column(String(64))  # source, format, mapping, options
    file_name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16))  # running | done | rejected
    rows_total: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_imported: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_linked: Mapped[int] = mapped_column(BigInteger, default=0)  # rows tied to a profile
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ux_customer_imports_file_plan", "file_sha256", "plan_sha256", unique=True),
    )


class CustomerImportError(Base):
    """One rejected row of an import, kept for its error report."""

    __tablename__ = "customer_import_errors"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    import_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("customer_imports.id", ondelete="CASCADE"), index=True
    )
    row: Mapped[int] = mapped_column(BigInteger)
    column: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(String(500))


# ------------------------------------------------------------------ matching
# Probabilistic matching runs and the review queue (owner: matching.py). Tables go here.


class MatchRun(Base):
    """One probabilistic matching run over the profiles, and its figures.

    `source_a`/`source_b` name the two sources compared (profiles with an identifier
    from each); both empty: every live profile against every other. Thresholds are
    match probabilities (0-1); `seconds` is the wall time of the run.
    """

    __tablename__ = "match_runs"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    source_a: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_b: Mapped[str | None] = mapped_column(String(64), nullable=True)
    engine: Mapped[str] = mapped_column(String(16))
    lower_threshold: Mapped[float] = mapped_column(Float)
    upper_threshold: Mapped[float] = mapped_column(Float)
    auto_merge: Mapped[bool] = mapped_column(Boolean)
    blocking: Mapped[list[list[str]]] = mapped_column(JSONType)
    fields: Mapped[list[str]] = mapped_column(JSONType)
    seed: Mapped[int] = mapped_column(Integer)
    trained: Mapped[bool] = mapped_column(Boolean)
    profiles_a: Mapped[int] = mapped_column(Integer)
    profiles_b: Mapped[int] = mapped_column(Integer)
    pairs_found: Mapped[int] = mapped_column(Integer)
    pairs_known: Mapped[int] = mapped_column(Integer)
    queued: Mapped[int] = mapped_column(Integer)
    merged: Mapped[int] = mapped_column(Integer)
    merge_refused: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)


class MatchCandidate(Base):
    """A pair of profiles a run found alike: waiting for review, or decided.

    `profile_a` is the older profile (ids sort by creation) and is the one kept when the
    pair is merged. One row per pair ever proposed, so a rejected pair is never proposed
    again. `agreement` says, per compared field, "exact", "close", "different" or
    "missing" (no personal data).
    """

    __tablename__ = "match_candidates"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("match_runs.id", ondelete="CASCADE"), index=True
    )
    profile_a: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("customers.id", ondelete="CASCADE")
    )
    profile_b: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    probability: Mapped[float] = mapped_column(Float)
    match_weight: Mapped[float] = mapped_column(Float)
    agreement: Mapped[dict[str, str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))  # pending|accepted|rejected|merged
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    merge_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)

    __table_args__ = (
        UniqueConstraint("profile_a", "profile_b", name="uq_match_candidates_pair"),
        Index("ix_match_candidates_status_probability", "status", "probability"),
    )


# ------------------------------------------------------------------ profiles
# Computed traits (owner: profiles.py). Tables go here.


class ComputedTraits(Base):
    """What a profile's behaviour says about it, recomputed from the event log (and,
    later, orders): one row per profile. Money in minor units of `currency`, the
    currency of most of the profile's purchases; RFM scores are quintiles (1-5) among
    the profiles that bought, NULL for those that never did."""

    __tablename__ = "profile_computed_traits"

    profile_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    events_count: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_count: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    revenue_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    average_basket_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    favourite_category: Mapped[str | None] = mapped_column(String(200), nullable=True)
    preferred_store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    last_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_purchase_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_purchase_currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    last_purchase_channel: Mapped[str | None] = mapped_column(String(24), nullable=True)
    last_purchase_store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    recency_score: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    frequency_score: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    monetary_score: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (Index("ix_profile_computed_traits_preferred_store", "preferred_store_id"),)
