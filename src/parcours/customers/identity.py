"""The identity graph: every identifier a person leaves resolves to one profile.

Contract used by tracking, imports, matching, profiles and privacy:

- `observe(session, now, observations)` links the identifiers seen together in each
  observation, creating or merging profiles by the deterministic rules of
  `identity_rules`, records traits, and returns the profile id per observation (None
  when nothing in it identifies a person, e.g. an anonymous id never linked, or only
  blocked values).
- `resolve`, `identifiers_of`, `traits_of`, `canonical_profile_id`, `merge_history`
  read the graph; `merge_profiles` and `unmerge` change it by hand;
  `export_identity` and `erase_identity` serve privacy requests.

How it stays fast: an observation whose identifiers are all known and on one profile
costs nothing per row (one SELECT for the batch, one for the evidence already on
record). Only new links load the clusters they touch, apply the rules in memory and
write the difference in bulk. An observation that arrives out of order in a cluster
where some rule refused a link makes that cluster replay from its evidence, so the
result never depends on arrival order.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from parcours.core import audit
from parcours.core.audit import SYSTEM_ACTOR, Actor
from parcours.core.db import insert_many
from parcours.core.errors import Conflict, FieldError, InvalidInput, NotFound
from parcours.core.ids import new_id
from parcours.customers.identity_rules import (
    BLOCKED_VALUES,
    IDENTIFIER_KINDS,
    IDENTIFIER_LIMITS,
    KIND_PRIORITY,
    SOURCE_PRIORITY,
    WEAK_KINDS,
    Evidence,
    Graph,
    Link,
    Pair,
    Separation,
    identifying,
    normalise,
    pair_order,
    source_rank,
)
from parcours.customers.models import (
    Customer,
    IdentityCluster,
    IdentityIdentifier,
    IdentityMerge,
    IdentityObservation,
    IdentityTrait,
)

__all__ = [
    "BLOCKED_VALUES",
    "CORE_FIELDS",
    "IDENTIFIER_KINDS",
    "IDENTIFIER_LIMITS",
    "KIND_PRIORITY",
    "SOURCE_PRIORITY",
    "Identifier",
    "MergeRecord",
    "Observation",
    "Trait",
    "canonical_profile_id",
    "erase_identity",
    "export_identity",
    "get_merge",
    "identifiers_of",
    "merge_history",
    "merge_profiles",
    "merged_profile_ids",
    "normalise",
    "observe",
    "register_customers",
    "resolve",
    "traits_of",
    "unmerge",
]

# Traits written onto the customers row (the value in force), so readers of the row
# need not know about sources. Identifier-backed ones are anchored on the identifier.
CORE_FIELDS = (
    "email",
    "phone",
    "customer_number",
    "first_name",
    "last_name",
    "birth_date",
    "address",
    "postcode",
    "city",
    "country",
    "locale",
    "preferred_store_id",
)
_IDENTIFIER_TRAITS = ("email", "phone", "customer_number")
_TRAIT_ALIASES = {
    "firstname": "first_name",
    "firstName": "first_name",
    "lastname": "last_name",
    "lastName": "last_name",
    "birthday": "birth_date",
    "birthDate": "birth_date",
    "dateOfBirth": "birth_date",
    "postalCode": "postcode",
    "postal_code": "postcode",
    "zip": "postcode",
    "zipCode": "postcode",
    "customerNumber": "customer_number",
    "preferredStoreId": "preferred_store_id",
    "phoneNumber": "phone",
}
_ADDRESS_PARTS = {
    "street": "address",
    "city": "city",
    "postalCode": "postcode",
    "postal_code": "postcode",
    "postcode": "postcode",
    "country": "country",
}
_COLUMN_LENGTHS = {
    "email": 254,
    "phone": 20,
    "customer_number": 32,
    "first_name": 100,
    "last_name": 100,
    "address": 300,
    "postcode": 12,
    "city": 120,
    "locale": 8,
}
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_MAX_TRAIT_NAME = 100
_IN_CHUNK = 2_000
# Last seen is kept to the hour: a signed-in session's events then cost no write each.
LAST_SEEN_STEP = timedelta(hours=1)  # identifiers per `(kind, value) IN (...)` query
_LOCK_KEY = 0x1D_E7_17_1  # pg_advisory_xact_lock: identity writes are serialised
_REPLAYED = "replayed"
_UNMERGED = "unmerge"

# Hot statements, built once: Core tables and expanding IN parameters keep the per-call
# cost of a tracking batch to the round trips themselves.
_IDS = cast(Table, IdentityIdentifier.__table__)
_CLUSTERS = cast(Table, IdentityCluster.__table__)
_OBS = cast(Table, IdentityObservation.__table__)
_TRAITS = cast(Table, IdentityTrait.__table__)
_MERGES = cast(Table, IdentityMerge.__table__)
_CUSTOMERS = cast(Table, Customer.__table__)
_INSERT_CUSTOMERS = insert(_CUSTOMERS)
_INSERT_MERGES = insert(_MERGES)
_SELECT_IDENTIFIERS = (
    select(
        _IDS.c.kind,
        _IDS.c.value,
        _IDS.c.profile_id,
        _IDS.c.cluster_id,
        _IDS.c.first_seen,
        _IDS.c.last_seen,
        _CLUSTERS.c.conflicted,
    )
    .select_from(_IDS.outerjoin(_CLUSTERS, _CLUSTERS.c.id == _IDS.c.cluster_id))
    # Two lists rather than `(kind, value) IN (...)`, which SQLite answers with a full
    # scan: both databases probe the primary key for each (kind, value) combination.
    .where(
        _IDS.c.kind.in_(bindparam("kinds", expanding=True)),
        _IDS.c.value.in_(bindparam("values", expanding=True)),
    )
)
# PostgreSQL: the exact pairs, unnested from two array parameters and joined on the key.
_WANTED = (
    func.unnest(
        bindparam("kinds", type_=ARRAY(String())), bindparam("values", type_=ARRAY(String()))
    )
    .table_valued("kind", "value")
    .render_derived(name="wanted")
)
_SELECT_IDENTIFIERS_PG = select(
    _IDS.c.kind,
    _IDS.c.value,
    _IDS.c.profile_id,
    _IDS.c.cluster_id,
    _IDS.c.first_seen,
    _IDS.c.last_seen,
    _CLUSTERS.c.conflicted,
).select_from(
    _WANTED.join(
        _IDS, and_(_IDS.c.kind == _WANTED.c.kind, _IDS.c.value == _WANTED.c.value)
    ).outerjoin(_CLUSTERS, _CLUSTERS.c.id == _IDS.c.cluster_id)
)
_SELECT_STORED_SETS = (
    select(_OBS.c.link_key, func.min(_OBS.c.observed_at))
    .where(_OBS.c.link_key.in_(bindparam("keys", expanding=True)), _OBS.c.kind == "seen")
    .group_by(_OBS.c.link_key)
)
_EARLIER = _IDS.c.first_seen > bindparam("f")
_TOUCH = (
    update(_IDS)
    .where(_IDS.c.kind == bindparam("k"), _IDS.c.value == bindparam("v"))
    .values(
        first_seen=case((_EARLIER, bindparam("f")), else_=_IDS.c.first_seen),
        source=case((_EARLIER, bindparam("s")), else_=_IDS.c.source),
        last_seen=case((_IDS.c.last_seen < bindparam("l"), bindparam("l")), else_=_IDS.c.last_seen),
    )
)
_SELECT_TRAITS = (
    select(
        _IDS.c.profile_id,
        _TRAITS.c.name,
        _TRAITS.c.value,
        _TRAITS.c.source,
        _TRAITS.c.observed_at,
        _TRAITS.c.reference,
    )
    .select_from(
        _TRAITS.join(
            _IDS,
            and_(_IDS.c.kind == _TRAITS.c.anchor_kind, _IDS.c.value == _TRAITS.c.anchor_value),
        )
    )
    .where(_IDS.c.profile_id.in_(bindparam("ids", expanding=True)))
)


# ------------------------------------------------------------------ contract types


@dataclass(frozen=True)
class Observation:
    """Identifiers seen together at one moment, with the traits that came with them.

    `source` names where it came from ("web", "app", "store", "call_centre",
    "import:<name>", "console", ...) and ranks traits by source priority;
    `reference` points back at the evidence (a messageId, "file.csv:12").
    """

    identifiers: Mapping[str, str]
    source: str
    observed_at: datetime
    traits: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None


@dataclass(frozen=True)
class Identifier:
    """One identifier linked to a profile."""

    kind: str
    value: str
    source: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Trait:
    """The value in force for one trait, and where it came from."""

    name: str
    value: Any
    source: str
    observed_at: datetime


@dataclass(frozen=True)
class MergeRecord:
    """A merge (or a link a rule refused), with the evidence that triggered it."""

    id: uuid.UUID
    outcome: str  # "merged" | "refused"
    kept_id: uuid.UUID
    absorbed_id: uuid.UUID | None
    rule: str
    identifiers: list[tuple[str, str]]
    reason: str | None
    source: str
    reference: str | None
    observed_at: datetime
    at: datetime
    actor: str
    undone_at: datetime | None
    undone_by: str | None
    undone_reason: str | None


# ------------------------------------------------------------------ observe


@dataclass
class _TraitRow:
    anchor: Pair
    name: str
    value: Any
    source: str
    observed_at: datetime
    reference: str | None


@dataclass
class _Prepared:
    pairs: tuple[Pair, ...]  # strongest first
    source: str
    observed_at: datetime
    evidence: Evidence | None  # None unless an identifier names a person
    traits: list[_TraitRow]


@dataclass(frozen=True, slots=True)
class _Known:
    """What the hot path needs of a stored identifier."""

    profile_id: uuid.UUID
    cluster_id: uuid.UUID
    first_seen: datetime
    last_seen: datetime
    conflicted: bool


@dataclass
class _Row:
    """An identifier as stored."""

    profile_id: uuid.UUID
    origin_profile_id: uuid.UUID
    cluster_id: uuid.UUID
    first_seen: datetime
    last_seen: datetime
    source: str
    conflicted: bool = False


def observe(
    session: Session, now: datetime, observations: Sequence[Observation]
) -> list[uuid.UUID | None]:
    """Link each observation's identifiers into the graph; the profile id per observation.

    Invalid and blocked values are ignored; an email or phone in `traits` counts as an
    identifier too. An observation with only anonymous/device ids links nothing and
    returns the profile they already belong to, if any. Raises InvalidInput for an
    unknown identifier kind or an empty source.
    """
    if not observations:
        return []
    prepared = [_prepare(obs) for obs in observations]
    every_pair = {pair for item in prepared for pair in item.pairs}
    rows = _select_identifiers(session, every_pair)
    evidence = _new_evidence(session, prepared)
    touched: set[uuid.UUID] = set()
    inserted: set[uuid.UUID] = set()
    if evidence:
        _lock(session)
        if session.get_bind().dialect.name == "postgresql":
            rows = _select_identifiers(session, every_pair)  # as of holding the lock
    profile_of = {pair: row.profile_id for pair, row in rows.items()}
    if evidence:
        fast, slow = _split(evidence, rows)
        _store_evidence(session, now, [(e, rows[e.pairs[0]].cluster_id) for e in fast])
        if slow:
            outcome = _link(session, now, slow, known=rows)
            profile_of.update(outcome.profile_of)
            touched |= outcome.live_profiles
            inserted = outcome.inserted
    _touch(session, prepared, rows)
    traits = [row for item in prepared for row in item.traits]
    if traits:
        _upsert_traits(session, traits)
        touched |= {profile_of[t.anchor] for t in traits if t.anchor in profile_of}
    if touched:
        _refresh_profiles(session, now, touched, inserted)
    return [profile_of.get(item.pairs[0]) if item.pairs else None for item in prepared]


def _prepare(obs: Observation) -> _Prepared:
    if not obs.source or len(obs.source) > 64:
        raise InvalidInput(
            "an observation needs a source of 1 to 64 characters",
            [FieldError("is empty or too long", pointer="#/source")],
        )
    raw: list[tuple[str, Any]] = list(obs.identifiers.items())
    traits = _normalise_traits(obs.traits)
    for kind in ("email", "phone"):
        if isinstance(traits.get(kind), str):
            raw.append((kind, traits[kind]))
    pairs: set[Pair] = set()
    for kind, value in raw:
        if kind not in IDENTIFIER_KINDS:
            raise InvalidInput(
                f"unknown identifier kind {kind!r}; known: {', '.join(IDENTIFIER_KINDS)}",
                [FieldError("is not an identifier kind", pointer=f"#/identifiers/{kind}")],
            )
        if value is None or isinstance(value, bool) or not isinstance(value, str | int):
            continue
        normalised = normalise(kind, str(value))
        if normalised is not None:
            pairs.add((kind, normalised))
    ordered = tuple(sorted(pairs, key=pair_order))
    reference = obs.reference[:200] if obs.reference else None
    if not ordered:
        return _Prepared((), obs.source, obs.observed_at, None, [])
    evidence = Evidence(ordered, obs.source, obs.observed_at, reference)
    rows = []
    for name, value in traits.items():
        if name in _IDENTIFIER_TRAITS:
            continue  # written below, anchored on the identifier itself
        rows.append(_TraitRow(ordered[0], name, value, obs.source, obs.observed_at, reference))
    for pair in ordered:
        if pair[0] in _IDENTIFIER_TRAITS:
            rows.append(_TraitRow(pair, pair[0], pair[1], obs.source, obs.observed_at, reference))
    chosen = evidence if identifying(ordered) else None
    return _Prepared(ordered, obs.source, obs.observed_at, chosen, rows)


def _normalise_traits(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Segment-style names mapped to ours; an address object split into its parts."""
    out: dict[str, Any] = {}
    for key, value in traits.items():
        name = _TRAIT_ALIASES.get(key, key)
        if name == "address" and isinstance(value, Mapping):
            for part, target in _ADDRESS_PARTS.items():
                if part in value:
                    out[target] = _jsonable(value[part])
            continue
        if 0 < len(name) <= _MAX_TRAIT_NAME:
            out[name] = _jsonable(value)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _link_key(pairs: Iterable[Pair]) -> str:
    text_ = "\x1e".join(f"{kind}\x1f{value}" for kind, value in sorted(pairs))
    return hashlib.sha256(text_.encode()).hexdigest()[:40]


def _new_evidence(session: Session, prepared: list[_Prepared]) -> list[Evidence]:
    """Identifying observations whose identifier set is not already on record earlier.

    A set seen again later changes nothing (the first sighting placed every identifier
    of it, and limits only bite harder as profiles grow), so it is not stored.
    """
    first: dict[str, Evidence] = {}
    for item in prepared:
        if item.evidence is None:
            continue
        key = _link_key(item.pairs)
        known = first.get(key)
        if known is None or item.evidence.order_key() < known.order_key():
            first[key] = item.evidence
    if not first:
        return []
    stored: dict[str, datetime] = {}
    keys = list(first)
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        result = session.execute(_SELECT_STORED_SETS, {"keys": chunk})
        stored.update((key, at) for key, at in result)
    return [e for key, e in first.items() if key not in stored or e.observed_at <= stored[key]]


def _split(
    evidence: list[Evidence], rows: dict[Pair, _Known]
) -> tuple[list[Evidence], list[Evidence]]:
    """Fast: every identifier known, on one profile, in a cluster where order is moot."""
    fast, slow = [], []
    for item in evidence:
        known = [rows.get(pair) for pair in item.pairs]
        profiles = {row.profile_id for row in known if row is not None}
        if all(known) and len(profiles) == 1 and not any(r.conflicted for r in known if r):
            fast.append(item)
        else:
            slow.append(item)
    slow_clusters = {rows[p].cluster_id for item in slow for p in item.pairs if p in rows}
    moved = [item for item in fast if rows[item.pairs[0]].cluster_id in slow_clusters]
    return [item for item in fast if item not in moved], slow + moved


def _select_identifiers(session: Session, pairs: Iterable[Pair]) -> dict[Pair, _Known]:
    wanted = set(pairs)
    found: dict[Pair, _Known] = {}
    if not wanted:
        return found
    if session.get_bind().dialect.name == "postgresql":
        ordered = sorted(wanted)
        chunks = [
            {"kinds": [k for k, _ in part], "values": [v for _, v in part]}
            for part in (ordered[i : i + _IN_CHUNK] for i in range(0, len(ordered), _IN_CHUNK))
        ]
        statement = _SELECT_IDENTIFIERS_PG
    else:
        values = sorted({value for _, value in wanted})
        kinds = sorted({kind for kind, _ in wanted})
        chunks = [
            {"kinds": kinds, "values": values[i : i + _IN_CHUNK]}
            for i in range(0, len(values), _IN_CHUNK)
        ]
        statement = _SELECT_IDENTIFIERS
    for chunk in chunks:
        for kind, value, profile, cluster, first, last, flag in session.execute(statement, chunk):
            if (kind, value) in wanted:  # the lists also match other combinations
                found[(kind, value)] = _Known(profile, cluster, first, last, bool(flag))
    return found


def _lock(session: Session) -> None:
    # SQLite already runs one writer at a time (BEGIN IMMEDIATE); PostgreSQL needs a
    # lock so that two transactions do not link the same new identifier twice.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _store_evidence(
    session: Session, now: datetime, items: list[tuple[Evidence, uuid.UUID]]
) -> None:
    if not items:
        return
    insert_many(
        session,
        _OBS,
        [
            {
                "cluster_id": cluster_id,
                "kind": e.kind,
                "identifiers": [list(p) for p in e.pairs],
                "link_key": _link_key(e.pairs),
                "source": e.source,
                "observed_at": e.observed_at,
                "reference": e.reference,
                "keep_profile_id": e.keep,
                "recorded_at": now,
            }
            for e, cluster_id in items
        ],
    )


def _touch(session: Session, prepared: list[_Prepared], rows: dict[Pair, _Known]) -> None:
    """Move first/last seen of known identifiers (never backwards, even concurrently)."""
    span: dict[Pair, tuple[datetime, datetime, str]] = {}
    for item in prepared:
        at, source = item.observed_at, item.source
        for pair in item.pairs:
            if pair not in rows:
                continue
            first, last, first_source = span.get(pair, (at, at, source))
            if at < first:
                first, first_source = at, source
            span[pair] = (first, max(last, at), first_source)
    changes = [
        {"k": kind, "v": value, "f": first, "l": last, "s": source}
        for (kind, value), (first, last, source) in sorted(span.items())
        if first < rows[(kind, value)].first_seen
        or last >= rows[(kind, value)].last_seen + LAST_SEEN_STEP
    ]
    if changes:
        session.execute(_TOUCH, changes)


# ------------------------------------------------------------------ linking


@dataclass
class _Loaded:
    """The stored part of the graph a batch touches: whole clusters."""

    rows: dict[Pair, _Row] = field(default_factory=dict)
    profiles: dict[uuid.UUID, tuple[datetime, str | None, uuid.UUID | None]] = field(
        default_factory=dict
    )  # created_at, customer_number, merged_into_id
    separations: list[tuple[uuid.UUID, Separation]] = field(default_factory=list)
    conflicted: dict[uuid.UUID, bool] = field(default_factory=dict)
    latest: dict[uuid.UUID, datetime] = field(default_factory=dict)


@dataclass
class _Outcome:
    profile_of: dict[Pair, uuid.UUID]
    live_profiles: set[uuid.UUID]
    merge_ids: list[tuple[Link, uuid.UUID]]
    inserted: set[uuid.UUID]  # profiles whose customers rows this call inserted


class _Components:
    """Union-find over clusters and identifiers: what one observation ties together."""

    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, node: object) -> object:
        self.parent.setdefault(node, node)
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra  # which root wins does not matter: targets are chosen apart


def _link(
    session: Session,
    now: datetime,
    new: list[Evidence],
    replay: frozenset[uuid.UUID] = frozenset(),
    actor: str = SYSTEM_ACTOR.label,
    reason: str | None = None,
    known: Mapping[Pair, _Known] | None = None,
) -> _Outcome:
    """Apply new evidence to the clusters it touches (replaying those that need it);
    `known` are the stored identifiers of the evidence if the caller has them."""
    pairs = {p for e in new for p in e.pairs}
    if known is None:
        known = _select_identifiers(session, pairs)
    rows = {pair: known[pair] for pair in pairs if pair in known}
    clusters = {row.cluster_id for row in rows.values()} | set(replay)
    loaded = _load_clusters(session, clusters)
    parts = _Components()
    for cluster_id in clusters:
        parts.find(("c", cluster_id))
    for pair, row in loaded.rows.items():
        parts.union(("p", pair), ("c", row.cluster_id))
    for e in new:
        for pair in e.pairs:
            parts.union(("p", e.pairs[0]), ("p", pair))
    ordered = sorted(new, key=Evidence.order_key)
    trial = _graph(now, loaded, set())
    for e in ordered:
        trial.apply(e)
    to_replay = _needing_replay(parts, loaded, ordered, trial, replay)
    graph = trial
    stored: list[Evidence] = []
    if to_replay:
        replay_clusters = {c for c in clusters if parts.find(("c", c)) in to_replay}
        stored = _load_evidence(session, replay_clusters)
        graph = _graph(now, loaded, to_replay, parts)
        for e in sorted(stored + ordered, key=Evidence.order_key):
            graph.apply(e)
    writer = _Writer(session, now, loaded, parts, graph, to_replay, actor, reason)
    return writer.write(ordered)


_CLUSTER_IDS: BindParameter[Any] = bindparam("clusters", expanding=True)
_LOAD_IDENTIFIERS = select(
    _IDS.c.kind,
    _IDS.c.value,
    _IDS.c.profile_id,
    _IDS.c.origin_profile_id,
    _IDS.c.cluster_id,
    _IDS.c.first_seen,
    _IDS.c.last_seen,
    _IDS.c.source,
).where(_IDS.c.cluster_id.in_(_CLUSTER_IDS))
_LOAD_FLAGS = select(_CLUSTERS.c.id, _CLUSTERS.c.conflicted).where(_CLUSTERS.c.id.in_(_CLUSTER_IDS))
_LOAD_LATEST = (
    select(_OBS.c.cluster_id, func.max(_OBS.c.observed_at))
    .where(_OBS.c.cluster_id.in_(_CLUSTER_IDS))
    .group_by(_OBS.c.cluster_id)
)
_LOAD_SEPARATIONS = (
    select(_MERGES.c.id, _MERGES.c.kept_identifiers, _MERGES.c.absorbed_identifiers)
    .where(_MERGES.c.cluster_id.in_(_CLUSTER_IDS), _MERGES.c.separating.is_(True))
    .order_by(_MERGES.c.id)
)
_LOAD_PROFILES = select(
    _CUSTOMERS.c.id,
    _CUSTOMERS.c.created_at,
    _CUSTOMERS.c.customer_number,
    _CUSTOMERS.c.merged_into_id,
).where(_CUSTOMERS.c.id.in_(bindparam("ids", expanding=True)))
_LOAD_EVIDENCE = select(
    _OBS.c.identifiers,
    _OBS.c.source,
    _OBS.c.observed_at,
    _OBS.c.reference,
    _OBS.c.kind,
    _OBS.c.keep_profile_id,
).where(_OBS.c.cluster_id.in_(_CLUSTER_IDS))


def _load_clusters(session: Session, clusters: set[uuid.UUID]) -> _Loaded:
    loaded = _Loaded()
    if not clusters:
        return loaded
    ids = {"clusters": sorted(clusters, key=str)}
    for kind, value, *rest in session.execute(_LOAD_IDENTIFIERS, ids):
        loaded.rows[(kind, value)] = _Row(*rest)
    for cluster_id, conflicted in session.execute(_LOAD_FLAGS, ids):
        loaded.conflicted[cluster_id] = conflicted
    for cluster_id, latest in session.execute(_LOAD_LATEST, ids):
        loaded.latest[cluster_id] = latest
    for merge_id, kept, absorbed in session.execute(_LOAD_SEPARATIONS, ids):
        separation = Separation(_pairs(kept), _pairs(absorbed))
        loaded.separations.append((merge_id, separation))
    profile_ids = {r.profile_id for r in loaded.rows.values()}
    profile_ids |= {r.origin_profile_id for r in loaded.rows.values()}
    if profile_ids:
        query = {"ids": sorted(profile_ids, key=str)}
        for pid, created_at, number, merged_into in session.execute(_LOAD_PROFILES, query):
            loaded.profiles[pid] = (created_at, number, merged_into)
    return loaded


def _pairs(stored: Iterable[Sequence[str]]) -> frozenset[Pair]:
    return frozenset((kind, value) for kind, value in stored)


def _load_evidence(session: Session, clusters: set[uuid.UUID]) -> list[Evidence]:
    if not clusters:
        return []
    rows = session.execute(_LOAD_EVIDENCE, {"clusters": sorted(clusters, key=str)})
    return [
        Evidence(
            tuple(sorted(((k, v) for k, v in identifiers), key=pair_order)),
            source,
            observed_at,
            reference,
            kind,
            keep,
        )
        for identifiers, source, observed_at, reference, kind, keep in rows
        if identifiers
    ]


def _graph(
    now: datetime,
    loaded: _Loaded,
    replayed: set[object],
    parts: _Components | None = None,
) -> Graph:
    """A graph holding the loaded profiles, except those of replayed components, whose
    ids are offered for reuse instead."""
    graph = Graph(new_profile_id=new_id, now=now)
    for index, (_, separation) in enumerate(loaded.separations):
        graph.add_separation(index, separation)
    members: dict[uuid.UUID, list[Pair]] = defaultdict(list)
    origin: dict[Pair, uuid.UUID] = {}
    previous: dict[Pair, uuid.UUID] = {}
    for pair, row in loaded.rows.items():
        if parts is not None and parts.find(("c", row.cluster_id)) in replayed:
            origin[pair], previous[pair] = row.origin_profile_id, row.profile_id
            continue
        members[row.profile_id].append(pair)
    for profile_id, pairs in members.items():
        created_at = loaded.profiles.get(profile_id, (graph.now, None, None))[0]
        graph.add_profile(profile_id, created_at, pairs)
    if parts is not None:
        replayed_ids = set(origin.values()) | set(previous.values())
        graph.reusable = {
            pid: loaded.profiles[pid][0] for pid in replayed_ids if pid in loaded.profiles
        }
        graph.origin, graph.previous = origin, previous
    return graph


def _needing_replay(
    parts: _Components,
    loaded: _Loaded,
    ordered: list[Evidence],
    trial: Graph,
    forced: frozenset[uuid.UUID],
) -> set[object]:
    """Components where applying the new evidence last may differ from the canonical
    order: the evidence is not the latest, and some rule refused a link there."""
    needing = {parts.find(("c", c)) for c in forced}
    refused = {
        parts.find(("p", link.evidence.pairs[0]))
        for link in trial.links
        if link.outcome == "refused"
    }
    separated = {
        parts.find(("p", pair))
        for _, separation in loaded.separations
        for pair in separation.kept | separation.absorbed
        if pair in loaded.rows
    }
    conflicted = {parts.find(("c", c)) for c, flag in loaded.conflicted.items() if flag}
    latest: dict[object, datetime] = {}
    for cluster_id, at in loaded.latest.items():
        root = parts.find(("c", cluster_id))
        latest[root] = max(at, latest.get(root, at))
    for e in ordered:
        root = parts.find(("p", e.pairs[0]))
        if root not in refused | separated | conflicted:
            continue
        if root in latest and e.observed_at <= latest[root]:
            needing.add(root)
    return needing


class _Writer:
    """Writes the difference between the loaded clusters and the graph, in bulk."""

    def __init__(
        self,
        session: Session,
        now: datetime,
        loaded: _Loaded,
        parts: _Components,
        graph: Graph,
        replayed: set[object],
        actor: str,
        reason: str | None,
    ) -> None:
        self.session, self.now, self.loaded, self.parts = session, now, loaded, parts
        self.graph, self.replayed, self.actor, self.reason = graph, replayed, actor, reason
        self.target: dict[object, uuid.UUID] = {}

    def write(self, new: list[Evidence]) -> _Outcome:
        self._clusters(new)
        self._profiles()
        self._identifiers()
        merge_ids = self._merges()
        _store_evidence(
            self.session, self.now, [(e, self.target[self._root(e.pairs[0])]) for e in new]
        )
        inserted = {pid for pid in self.graph.created if pid not in self.loaded.profiles}
        return _Outcome(dict(self.graph.profile_of), set(self.graph.members), merge_ids, inserted)

    def _root(self, pair: Pair) -> object:
        return self.parts.find(("p", pair))

    def _clusters(self, new: list[Evidence]) -> None:
        by_root: dict[object, list[uuid.UUID]] = defaultdict(list)
        roots = {self._root(e.pairs[0]) for e in new}
        for cluster_id in self.loaded.conflicted.keys() | {
            r.cluster_id for r in self.loaded.rows.values()
        }:
            root = self.parts.find(("c", cluster_id))
            by_root[root].append(cluster_id)
            roots.add(root)
        refused_roots = {
            self._root(link.evidence.pairs[0])
            for link in self.graph.links
            if link.outcome == "refused"
        }
        separated = {
            self._root(p)
            for _, s in self.loaded.separations
            for p in s.kept | s.absorbed
            if p in self.loaded.rows
        }
        new_clusters: list[dict[str, Any]] = []
        flags: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        for root in roots:
            olds = sorted(by_root.get(root, []), key=str)
            conflicted = (
                root in refused_roots
                or root in separated
                or any(self.loaded.conflicted.get(c, False) for c in olds)
            )
            if not olds:
                target = new_id()
                new_clusters.append(
                    {"id": target, "conflicted": conflicted, "created_at": self.now}
                )
            else:
                target = olds[0]
                if conflicted and not self.loaded.conflicted.get(target, False):
                    flags.append({"cid": target})
                moves.extend({"old": old, "new": target} for old in olds[1:])
            self.target[root] = target
        if new_clusters:
            insert_many(self.session, _CLUSTERS, new_clusters)
        if flags:
            clusters = _CLUSTERS
            self.session.execute(
                update(clusters).where(clusters.c.id == bindparam("cid")).values(conflicted=True),
                flags,
            )
        if moves:
            for table in (_IDS, _OBS, _MERGES):
                self.session.execute(
                    update(table)
                    .where(table.c.cluster_id == bindparam("old"))
                    .values(cluster_id=bindparam("new")),
                    moves,
                )
            clusters = _CLUSTERS
            self.session.execute(
                delete(clusters).where(clusters.c.id == bindparam("old")),
                [{"old": m["old"]} for m in moves],
            )

    def _profiles(self) -> None:
        graph, loaded = self.graph, self.loaded
        inserts = [
            {
                "id": pid,
                "created_at": graph.born[pid][0],
                "updated_at": self.now,
                "merged_into_id": graph.absorbed.get(pid),
            }
            for pid in graph.created
            if pid not in loaded.profiles
        ]
        if inserts:
            self.session.execute(_INSERT_CUSTOMERS, inserts)
        pointer_changes: list[dict[str, Any]] = []
        numbers_cleared: list[dict[str, Any]] = []
        for pid, (_, number, merged_into) in loaded.profiles.items():
            target = self._merged_into(pid, merged_into)
            if target != merged_into:
                pointer_changes.append({"pid": pid, "into": target})
            elif number is not None and self._final_number(pid) != number:
                numbers_cleared.append({"pid": pid})
        customers = _CUSTOMERS
        if numbers_cleared:  # first, so that the number can move to another row
            self.session.execute(
                update(customers)
                .where(customers.c.id == bindparam("pid"))
                .values(customer_number=None),
                numbers_cleared,
            )
        if pointer_changes:
            # An absorbed row keeps its id but no copy of the person's data: its fields
            # come back from its traits if an unmerge restores it.
            cleared = dict.fromkeys(_NULLABLE_CORE)
            self.session.execute(
                update(customers)
                .where(customers.c.id == bindparam("pid"))
                .values(merged_into_id=bindparam("into"), updated_at=self.now, **cleared),
                pointer_changes,
            )

    def _merged_into(self, pid: uuid.UUID, current: uuid.UUID | None) -> uuid.UUID | None:
        graph = self.graph
        if pid in graph.members:
            return None
        if pid in graph.absorbed:
            return graph.absorbed[pid]
        mine = [p for p, r in self.loaded.rows.items() if r.origin_profile_id == pid]
        mine += [p for p, r in self.loaded.rows.items() if r.profile_id == pid]
        in_replay = any(self._root(p) in self.replayed for p in mine)
        if not in_replay:
            return current
        for pair in mine:
            holder = graph.profile_of.get(pair)
            if holder is not None and holder != pid:
                return holder
        return current

    def _final_number(self, pid: uuid.UUID) -> str | None:
        for kind, value in self.graph.members.get(pid, ()):
            if kind == "customer_number":
                return value
        return None

    def _identifiers(self) -> None:
        graph, rows = self.graph, self.loaded.rows
        inserts: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        for pair, profile_id in graph.profile_of.items():
            row = rows.get(pair)
            target = self.target[self._root(pair)]
            if row is None:
                seen = graph.seen[pair]
                inserts.append(
                    {
                        "kind": pair[0],
                        "value": pair[1],
                        "profile_id": profile_id,
                        "origin_profile_id": graph.origin_of_new.get(pair, profile_id),
                        "cluster_id": target,
                        "source": seen.source,
                        "first_seen": seen.first,
                        "last_seen": seen.last,
                    }
                )
            elif row.profile_id != profile_id:
                moves.append({"k": pair[0], "v": pair[1], "pid": profile_id})
        if inserts:
            insert_many(self.session, _IDS, inserts)
        if moves:
            table = _IDS
            self.session.execute(
                update(table)
                .where(table.c.kind == bindparam("k"), table.c.value == bindparam("v"))
                .values(profile_id=bindparam("pid")),
                moves,
            )

    def _merges(self) -> list[tuple[Link, uuid.UUID]]:
        """Insert the graph's merges and refusals; in replayed clusters, keep the merges
        it made again, mark the others undone and recompute the refusals."""
        links = self.graph.links
        kept: dict[tuple[uuid.UUID, uuid.UUID | None], uuid.UUID] = {}
        merges = _MERGES
        replayed_clusters = [t for root, t in self.target.items() if root in self.replayed]
        if replayed_clusters:
            existing = self.session.execute(
                select(merges.c.id, merges.c.kept_id, merges.c.absorbed_id).where(
                    merges.c.cluster_id.in_(replayed_clusters),
                    merges.c.outcome == "merged",
                    merges.c.undone_at.is_(None),
                )
            ).all()
            redone = {(link.kept, link.other) for link in links if link.outcome == "merged"}
            kept = {(k, a): mid for mid, k, a in existing if (k, a) in redone}
            gone = [{"mid": mid} for mid, k, a in existing if (k, a) not in redone]
            if gone:
                self.session.execute(
                    update(merges)
                    .where(merges.c.id == bindparam("mid"))
                    .values(undone_at=self.now, undone_by=self.actor, undone_reason=_REPLAYED),
                    gone,
                )
            self.session.execute(
                delete(merges).where(
                    merges.c.cluster_id.in_(replayed_clusters), merges.c.outcome == "refused"
                )
            )
        out, inserts = [], []
        for link in links:
            key = (link.kept, link.other)
            if link.outcome == "merged" and key in kept:
                out.append((link, kept.pop(key)))
                continue
            merge_id = new_id()
            out.append((link, merge_id))
            inserts.append(self._merge_row(merge_id, link))
        if inserts:
            self.session.execute(_INSERT_MERGES, inserts)
        return out

    def _merge_row(self, merge_id: uuid.UUID, link: Link) -> dict[str, Any]:
        evidence = link.evidence
        return {
            "id": merge_id,
            "cluster_id": self.target[self._root(evidence.pairs[0])],
            "outcome": link.outcome,
            "kept_id": link.kept,
            "absorbed_id": link.other,
            "rule": link.rule,
            "identifiers": [list(p) for p in link.pairs],
            "kept_identifiers": [list(p) for p in link.kept_side],
            "absorbed_identifiers": [list(p) for p in link.other_side],
            "reason": self.reason if evidence.kind == "manual" else None,
            "source": evidence.source,
            "reference": evidence.reference,
            "observed_at": evidence.observed_at,
            "at": self.now,
            "actor": self.actor if evidence.kind == "manual" else SYSTEM_ACTOR.label,
            "undone_at": None,
            "undone_by": None,
            "undone_reason": None,
            "separating": False,
        }


# ------------------------------------------------------------------ traits


def _upsert_traits(session: Session, traits: list[_TraitRow]) -> None:
    """Per (identifier, trait, source) keep the latest value (ties: the larger reference)."""
    latest: dict[tuple[str, str, str, str], _TraitRow] = {}
    for row in traits:
        key = (row.anchor[0], row.anchor[1], row.name, row.source)
        known = latest.get(key)
        if known is None or (row.observed_at, row.reference or "") > (
            known.observed_at,
            known.reference or "",
        ):
            latest[key] = row
    session.execute(
        _trait_upsert(session.get_bind().dialect.name),
        [
            {
                "anchor_kind": key[0],
                "anchor_value": key[1],
                "name": key[2],
                "source": key[3],
                "value": row.value,
                "observed_at": row.observed_at,
                "reference": row.reference,
            }
            for key, row in sorted(latest.items())
        ],
    )


@cache
def _trait_upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT that only lets a newer value replace the stored one."""
    from sqlalchemy.dialects import postgresql, sqlite

    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_TRAITS)
    current = _TRAITS.c
    newer = or_(
        stmt.excluded.observed_at > current.observed_at,
        and_(
            stmt.excluded.observed_at == current.observed_at,
            func.coalesce(stmt.excluded.reference, "") > func.coalesce(current.reference, ""),
        ),
    )
    return stmt.on_conflict_do_update(
        index_elements=["anchor_kind", "anchor_value", "name", "source"],
        set_={
            "value": stmt.excluded.value,
            "observed_at": stmt.excluded.observed_at,
            "reference": stmt.excluded.reference,
        },
        where=newer,
    )


def _in_force(candidates: Iterable[tuple[Trait, str | None]]) -> dict[str, Trait]:
    """Per trait: the highest-priority source, then the latest value (ties: the larger
    reference, then source, then value, so the answer never depends on row order)."""
    best: dict[str, tuple[tuple[int, datetime, str, str, str], Trait]] = {}
    for trait, reference in candidates:
        rank = (
            -source_rank(trait.source),
            trait.observed_at,
            reference or "",
            trait.source,
            repr(trait.value),
        )
        known = best.get(trait.name)
        if known is None or rank > known[0]:
            best[trait.name] = (rank, trait)
    return {name: trait for name, (_, trait) in sorted(best.items())}


def _traits_by_profile(
    session: Session, profile_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Trait]]:
    ids = list(profile_ids)
    found: dict[uuid.UUID, list[tuple[Trait, str | None]]] = defaultdict(list)
    for start in range(0, len(ids), _IN_CHUNK):
        result = session.execute(_SELECT_TRAITS, {"ids": ids[start : start + _IN_CHUNK]})
        for pid, name, value, source, observed_at, reference in result:
            found[pid].append((Trait(name, value, source, observed_at), reference))
    return {pid: _in_force(found.get(pid, [])) for pid in ids}


def _refresh_profiles(
    session: Session,
    now: datetime,
    profile_ids: set[uuid.UUID],
    inserted: Set[uuid.UUID] = frozenset(),
) -> None:
    """Write the core traits in force onto the customers rows of live profiles.

    `inserted` rows were written at `now` by this call, without traits (country and
    locale at their defaults): one whose profile has no core trait in force is already
    right, and is not written again (a first sighting without traits).
    """
    traits = _traits_by_profile(session, sorted(profile_ids, key=str))
    rows: list[dict[str, Any]] = []
    for pid, found in traits.items():
        values = _core_values(found)
        if pid in inserted and all(value is None for value in values.values()):
            continue
        rows.append({"pid": pid, **values, "now": now})
    if rows:
        session.execute(_WRITE_CORE_FIELDS, rows)


def _write_core_fields() -> Any:
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}", type_=_CUSTOMERS.c[name].type)
        for name in CORE_FIELDS
        if name not in ("country", "locale")
    }
    values["updated_at"] = bindparam("now", type_=_CUSTOMERS.c.updated_at.type)
    for name in ("country", "locale"):  # never NULL: keep the row's value when no trait
        fresh = bindparam(f"v_{name}", type_=_CUSTOMERS.c[name].type)
        values[name] = func.coalesce(fresh, _CUSTOMERS.c[name])
    # By primary key only: with `AND merged_into_id IS NULL` PostgreSQL's generic plan
    # (used after five executions) turned 500 row updates from 75 ms into 800 ms. Callers
    # pass live profiles only.
    return update(_CUSTOMERS).where(_CUSTOMERS.c.id == bindparam("pid")).values(values)


_WRITE_CORE_FIELDS = _write_core_fields()
_NULLABLE_CORE = tuple(name for name in CORE_FIELDS if name not in ("country", "locale"))


def _core_values(traits: Mapping[str, Trait]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in CORE_FIELDS:
        trait = traits.get(name)
        out[f"v_{name}"] = _column_value(name, trait.value) if trait is not None else None
    return out


def _column_value(name: str, value: Any) -> Any:
    """The trait as the customers column holds it, or None when it does not fit."""
    if value is None:
        return None
    if name == "birth_date":
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            return None
    if name == "preferred_store_id":
        try:
            return uuid.UUID(str(value))
        except ValueError:
            return None
    if name == "country":
        text_ = str(value).strip().upper()
        return text_ if _COUNTRY.match(text_) else None
    if isinstance(value, dict | list | bool):
        return None
    text_ = str(value).strip()
    if not text_ or len(text_) > _COLUMN_LENGTHS.get(name, 300):
        return None
    return text_


# ------------------------------------------------------------------ bulk registration


def register_customers(
    session: Session, now: datetime, rows: Sequence[Mapping[str, Any]], source: str = "import"
) -> None:
    """Register the identifiers and traits of customers inserted in bulk (`add_customers`).

    Each row (with its `id`) gets its customer number, email and phone as identifiers,
    its fields as traits from `source`, and one observation as evidence: five bulk
    statements whatever the number of rows. An identifier another profile already holds
    stays there (the row is linked through its other identifiers, if any).
    """
    wanted: list[tuple[Mapping[str, Any], list[Pair]]] = []
    for row in rows:
        pairs = []
        for kind in ("customer_number", "email", "phone"):
            value = row.get(kind)
            normalised = normalise(kind, str(value)) if value else None
            if normalised is not None:
                pairs.append((kind, normalised))
        wanted.append((row, pairs))
    taken = set(_select_identifiers(session, {p for _, pairs in wanted for p in pairs}))
    clusters, identifiers, observations, traits = [], [], [], []
    for row, pairs in wanted:
        mine = sorted((p for p in pairs if p not in taken), key=pair_order)
        if not mine:
            continue
        taken.update(mine)
        profile_id, at = row["id"], row.get("created_at") or now
        cluster_id = new_id()
        clusters.append({"id": cluster_id, "conflicted": False, "created_at": now})
        for kind, value in mine:
            identifiers.append(
                {
                    "kind": kind,
                    "value": value,
                    "profile_id": profile_id,
                    "origin_profile_id": profile_id,
                    "cluster_id": cluster_id,
                    "source": source,
                    "first_seen": at,
                    "last_seen": at,
                }
            )
        reference = f"customer:{profile_id}"
        evidence = Evidence(tuple(mine), source, at, reference)
        observations.append((evidence, cluster_id))
        for name in CORE_FIELDS:
            value = row.get(name)
            if value is None:
                continue
            anchor = mine[0]
            if name in _IDENTIFIER_TRAITS:
                match = [p for p in mine if p[0] == name]
                if not match:
                    continue
                anchor, value = match[0], match[0][1]
            traits.append(_TraitRow(anchor, name, _jsonable(value), source, at, reference))
    if not clusters:
        return
    insert_many(session, _CLUSTERS, clusters)
    insert_many(session, _IDS, identifiers)
    _store_evidence(session, now, observations)
    if traits:
        _upsert_traits(session, traits)


# ------------------------------------------------------------------ reads


def canonical_profile_id(session: Session, profile_id: uuid.UUID) -> uuid.UUID | None:
    """The live profile a (possibly merged) profile id stands for; None if unknown."""
    current = profile_id
    for _ in range(64):  # a chain this long would be a bug, not a person
        merged_into = session.execute(
            select(Customer.merged_into_id).where(Customer.id == current)
        ).first()
        if merged_into is None:
            return None
        if merged_into[0] is None:
            return current
        current = merged_into[0]
    return current


def _live(session: Session, profile_id: uuid.UUID) -> uuid.UUID:
    canonical = canonical_profile_id(session, profile_id)
    if canonical is None:
        raise NotFound(f"No customer profile has the id {profile_id}.")
    return canonical


def _normalised_or_error(kind: str, value: str) -> Pair:
    if kind not in IDENTIFIER_KINDS:
        raise InvalidInput(
            f"unknown identifier kind {kind!r}",
            [FieldError(f"must be one of {', '.join(IDENTIFIER_KINDS)}", parameter="kind")],
        )
    normalised = normalise(kind, value)
    if normalised is None:
        hint = {
            "email": "an email address such as lea@example.com",
            "phone": "a phone number such as +33612345678 or 06 12 34 56 78",
        }.get(kind, "a non-empty value")
        raise InvalidInput(
            f"this {kind} is invalid or blocked",
            [FieldError(f"must be {hint} (shared test values are blocked)", parameter="value")],
        )
    return kind, normalised


def resolve(session: Session, kind: str, value: str) -> uuid.UUID | None:
    """The profile an identifier belongs to (value normalised first), or None.

    Raises InvalidInput for an unknown kind or a value that is invalid or blocked.
    """
    pair = _normalised_or_error(kind, value)
    return session.execute(
        select(IdentityIdentifier.profile_id).where(
            IdentityIdentifier.kind == pair[0], IdentityIdentifier.value == pair[1]
        )
    ).scalar_one_or_none()


def devices_of(session: Session, profile_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The device id push messages go to for each of these live profiles (the first in
    identifier order, as `identifiers_of` lists them), for those that have one; one query
    per 5,000 profiles."""
    ids = sorted(set(profile_ids))
    t = IdentityIdentifier
    found: dict[uuid.UUID, str] = {}
    for start in range(0, len(ids), 5000):
        rows = session.execute(
            select(t.profile_id, func.min(t.value))
            .where(t.kind == "device", t.profile_id.in_(ids[start : start + 5000]))
            .group_by(t.profile_id)
        )
        for profile_id, value in rows:
            found[profile_id] = value
    return found


def identifiers_of(session: Session, profile_id: uuid.UUID) -> list[Identifier]:
    """Every identifier linked to a profile (following merges), strongest kind first."""
    live = _live(session, profile_id)
    t = IdentityIdentifier
    found = [
        Identifier(kind, value, source, first, last)
        for kind, value, source, first, last in session.execute(
            select(t.kind, t.value, t.source, t.first_seen, t.last_seen).where(t.profile_id == live)
        )
    ]
    return sorted(found, key=lambda i: pair_order((i.kind, i.value)))


def traits_of(session: Session, profile_id: uuid.UUID) -> dict[str, Trait]:
    """The traits in force on a profile, each from its highest-priority source (then the
    latest); `SOURCE_PRIORITY` orders the sources."""
    live = _live(session, profile_id)
    return _traits_by_profile(session, [live])[live]


def merged_profile_ids(session: Session, profile_id: uuid.UUID) -> list[uuid.UUID]:
    """The profiles merged into this one, directly or through others (their rows keep
    their ids and point at the survivor)."""
    found: list[uuid.UUID] = []
    frontier = [profile_id]
    while frontier:
        children = list(
            session.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier)))
        )
        children = [c for c in children if c not in found and c != profile_id]
        found.extend(children)
        frontier = children
    return found


def _record(row: IdentityMerge) -> MergeRecord:
    return MergeRecord(
        id=row.id,
        outcome=row.outcome,
        kept_id=row.kept_id,
        absorbed_id=row.absorbed_id,
        rule=row.rule,
        identifiers=[(k, v) for k, v in row.identifiers],
        reason=row.reason,
        source=row.source,
        reference=row.reference,
        observed_at=row.observed_at,
        at=row.at,
        actor=row.actor,
        undone_at=row.undone_at,
        undone_by=row.undone_by,
        undone_reason=row.undone_reason,
    )


def get_merge(session: Session, merge_id: uuid.UUID) -> MergeRecord:
    """One merge (or refused link) by id; NotFound if there is none."""
    row = session.get(IdentityMerge, merge_id)
    if row is None:
        raise NotFound(f"No merge has the id {merge_id}.")
    return _record(row)


def merge_history(session: Session, profile_id: uuid.UUID) -> list[MergeRecord]:
    """Merges and refused links of a profile and of the profiles merged into it, oldest
    first; undone merges stay, with when and why."""
    live = _live(session, profile_id)
    ids = [live, *merged_profile_ids(session, live)]
    query = (
        select(IdentityMerge)
        .where(or_(IdentityMerge.kept_id.in_(ids), IdentityMerge.absorbed_id.in_(ids)))
        .order_by(IdentityMerge.at, IdentityMerge.observed_at, IdentityMerge.id)
    )
    return [_record(row) for row in session.scalars(query)]


# ------------------------------------------------------------------ manual changes


def merge_profiles(
    session: Session, now: datetime, actor: Actor, keep: uuid.UUID, other: uuid.UUID, reason: str
) -> uuid.UUID:
    """Merge `other` into `keep` (a person's or the matching queue's decision); returns
    the merge id. Merging profiles already merged returns the existing merge.

    Raises NotFound for an unknown profile, InvalidInput for a profile merged with
    itself and Conflict when the merge would break an identifier limit (two customer
    numbers, ...). A merge a person asks for lifts an earlier unmerge between the two.
    """
    if keep == other:
        raise InvalidInput(
            "a profile cannot be merged with itself",
            [FieldError("must be another profile than the one kept", pointer="#/other")],
        )
    live_keep, live_other = _live(session, keep), _live(session, other)
    if live_keep == live_other:
        return _existing_merge(session, keep, other)
    _lock(session)
    sides = {pid: _identifying_pairs_of(session, pid) for pid in (live_keep, live_other)}
    for pid, pairs in sides.items():
        if not pairs:
            raise Conflict(
                f"profile {pid} has no identifier to link; add an email, a phone or a "
                "customer number to it first"
            )
    _check_limits(sides[live_keep], sides[live_other])
    _lift_separations(session, sides[live_keep], sides[live_other])
    together = tuple(sorted(set(sides[live_keep]) | set(sides[live_other]), key=pair_order))
    evidence = Evidence(
        together, "merge:manual", now, f"merge:{actor.label}"[:200], "manual", live_keep
    )
    outcome = _link(session, now, [evidence], actor=actor.label, reason=reason[:500] or None)
    merge_id = next(
        (
            mid
            for link, mid in outcome.merge_ids
            if link.outcome == "merged" and link.evidence == evidence
        ),
        None,
    )
    if merge_id is None:
        raise Conflict("the rules refused this merge; see the profile's merge history")
    _refresh_profiles(session, now, outcome.live_profiles)
    audit.record(
        session,
        now,
        actor,
        "identity.merged",
        "customer",
        str(live_keep),
        absorbed=str(live_other),
        merge_id=str(merge_id),
    )
    return merge_id


def _existing_merge(session: Session, keep: uuid.UUID, other: uuid.UUID) -> uuid.UUID:
    merges = IdentityMerge
    for candidate in (other, keep):
        found = session.scalar(
            select(merges.id)
            .where(
                merges.absorbed_id == candidate,
                merges.outcome == "merged",
                merges.undone_at.is_(None),
            )
            .order_by(merges.at.desc())
            .limit(1)
        )
        if found is not None:
            return found
    raise Conflict("these profiles are already one profile, but no merge records it")


def _identifying_pairs_of(session: Session, profile_id: uuid.UUID) -> list[Pair]:
    t = IdentityIdentifier
    pairs = [
        (k, v)
        for k, v in session.execute(select(t.kind, t.value).where(t.profile_id == profile_id))
    ]
    return sorted((p for p in pairs if p[0] not in WEAK_KINDS), key=pair_order)


def _check_limits(keep: list[Pair], other: list[Pair]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for kind, _ in (*keep, *other):
        counts[kind] += 1
    for kind, n in counts.items():
        limit = IDENTIFIER_LIMITS.get(kind)
        if limit is not None and n > limit:
            raise Conflict(
                f"merging would give the profile {n} identifiers of kind {kind} "
                f"(at most {limit}); these look like two people"
            )


def _lift_separations(session: Session, keep: list[Pair], other: list[Pair]) -> None:
    profiles = _profiles_of(session, keep + other)
    merges = IdentityMerge
    rows = session.execute(
        select(merges.id, merges.kept_identifiers, merges.absorbed_identifiers).where(
            merges.separating.is_(True),
            or_(merges.kept_id.in_(profiles), merges.absorbed_id.in_(profiles)),
        )
    ).all()
    mine, theirs = set(keep), set(other)
    lifted = []
    for merge_id, kept_side, absorbed_side in rows:
        a = {tuple(p) for p in kept_side}
        b = {tuple(p) for p in absorbed_side}
        if (a & mine and b & theirs) or (a & theirs and b & mine):
            lifted.append({"mid": merge_id})
    if lifted:
        table = _MERGES
        session.execute(
            update(table).where(table.c.id == bindparam("mid")).values(separating=False), lifted
        )


def _profiles_of(session: Session, pairs: list[Pair]) -> list[uuid.UUID]:
    """The profiles holding these identifiers and those they were first attached to."""
    wanted = set(pairs)
    t = IdentityIdentifier
    query = select(t.kind, t.value, t.profile_id, t.origin_profile_id).where(
        t.kind.in_(sorted({k for k, _ in wanted})), t.value.in_(sorted({v for _, v in wanted}))
    )
    found: set[uuid.UUID] = set()
    for kind, value, profile_id, origin in session.execute(query):
        if (kind, value) in wanted:
            found |= {profile_id, origin}
    return list(found)


def unmerge(session: Session, now: datetime, actor: Actor, merge_id: uuid.UUID) -> uuid.UUID:
    """Undo a merge: its two sides are kept apart from now on and the cluster is replayed
    from its evidence, so identifiers, traits and later merges land where they would have
    without that link. Returns the restored profile's id (the one absorbed, same id).

    Raises NotFound for an unknown merge, InvalidInput for a refused link and Conflict
    for a merge already undone.
    """
    row = session.get(IdentityMerge, merge_id)
    if row is None:
        raise NotFound(f"No merge has the id {merge_id}.")
    if row.outcome != "merged" or row.absorbed_id is None:
        raise InvalidInput(
            "this is a link the rules refused, not a merge: there is nothing to undo",
            [FieldError("names a refused link", parameter="merge_id")],
        )
    if row.undone_at is not None:
        raise Conflict(
            f"this merge was already undone on {row.undone_at:%Y-%m-%d %H:%M} UTC "
            f"({row.undone_reason})"
        )
    _lock(session)
    row.undone_at, row.undone_by, row.undone_reason = now, actor.label, _UNMERGED
    row.separating = True
    session.flush()
    outcome = _link(session, now, [], replay=frozenset({row.cluster_id}), actor=actor.label)
    _refresh_profiles(session, now, outcome.live_profiles)
    audit.record(
        session,
        now,
        actor,
        "identity.unmerged",
        "customer",
        str(row.kept_id),
        restored=str(row.absorbed_id),
        merge_id=str(merge_id),
    )
    return row.absorbed_id


# ------------------------------------------------------------------ privacy


def _person(
    session: Session, profile_id: uuid.UUID
) -> tuple[uuid.UUID, list[uuid.UUID], list[Pair]]:
    live = _live(session, profile_id)
    ids = [live, *merged_profile_ids(session, live)]
    t = IdentityIdentifier
    pairs = [
        (k, v) for k, v in session.execute(select(t.kind, t.value).where(t.profile_id == live))
    ]
    return live, ids, sorted(pairs, key=pair_order)


@dataclass(frozen=True)
class _StoredObservation:
    id: int
    identifiers: list[list[str]]
    source: str
    observed_at: datetime
    reference: str | None
    kind: str


def _observations_with(session: Session, pairs: list[Pair]) -> Iterator[_StoredObservation]:
    clusters = {row.cluster_id for row in _select_identifiers(session, pairs).values()}
    if not clusters:
        return
    wanted = set(pairs)
    o = IdentityObservation
    stored = (
        select(o.id, o.identifiers, o.source, o.observed_at, o.reference, o.kind)
        .where(o.cluster_id.in_(list(clusters)))
        .order_by(o.observed_at, o.id)
    )
    for row in session.execute(stored):
        observation = _StoredObservation(*row)
        if any((k, v) in wanted for k, v in observation.identifiers):
            yield observation


def _trait_rows(session: Session, pairs: list[Pair]) -> list[IdentityTrait]:
    wanted = set(pairs)
    kinds = sorted({kind for kind, _ in wanted})
    values = sorted({value for _, value in wanted})
    found: list[IdentityTrait] = []
    t = IdentityTrait
    for start in range(0, len(values), _IN_CHUNK):
        query = select(t).where(
            t.anchor_kind.in_(kinds), t.anchor_value.in_(values[start : start + _IN_CHUNK])
        )
        found.extend(r for r in session.scalars(query) if (r.anchor_kind, r.anchor_value) in wanted)
    return found


def export_identity(session: Session, profile_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """Everything the identity graph holds about a person, as JSON-ready rows:
    `profiles` (this one and those merged into it), `identifiers`, `observations`,
    `traits` (every source's value) and `merges`."""
    live, ids, pairs = _person(session, profile_id)
    identifiers = [
        {
            "kind": i.kind,
            "value": i.value,
            "source": i.source,
            "first_seen": i.first_seen.isoformat(),
            "last_seen": i.last_seen.isoformat(),
        }
        for i in identifiers_of(session, live)
    ]
    observations = [
        {
            "identifiers": obs.identifiers,
            "source": obs.source,
            "observed_at": obs.observed_at.isoformat(),
            "reference": obs.reference,
            "kind": obs.kind,
        }
        for obs in _observations_with(session, pairs)
    ]
    traits = [
        {
            "identifier": [t.anchor_kind, t.anchor_value],
            "name": t.name,
            "value": t.value,
            "source": t.source,
            "observed_at": t.observed_at.isoformat(),
            "reference": t.reference,
        }
        for t in _trait_rows(session, pairs)
    ]
    merges = [
        {
            "id": str(m.id),
            "outcome": m.outcome,
            "kept_id": str(m.kept_id),
            "absorbed_id": str(m.absorbed_id) if m.absorbed_id else None,
            "rule": m.rule,
            "identifiers": [list(p) for p in m.identifiers],
            "reason": m.reason,
            "at": m.at.isoformat(),
            "actor": m.actor,
            "undone_at": m.undone_at.isoformat() if m.undone_at else None,
        }
        for m in merge_history(session, live)
    ]
    profiles = [{"id": str(pid), "live": pid == live} for pid in ids]
    return {
        "profiles": profiles,
        "identifiers": identifiers,
        "observations": observations,
        "traits": traits,
        "merges": merges,
    }


def erase_identity(session: Session, profile_id: uuid.UUID) -> list[tuple[str, str]]:
    """Remove a person's identifiers, the evidence naming them, their traits and merge
    records; returns the (kind, value) pairs removed, for privacy to tombstone.

    Observations that also name other people keep the other identifiers. The customers
    rows (this profile and `merged_profile_ids`) are privacy's to erase.
    """
    _lock(session)
    _, ids, pairs = _person(session, profile_id)
    wanted = set(pairs)
    observations = _OBS
    gone, rewritten = [], []
    for obs in list(_observations_with(session, pairs)):
        left = [[k, v] for k, v in obs.identifiers if (k, v) not in wanted]
        if identifying((k, v) for k, v in left):
            rewritten.append(
                {"oid": obs.id, "ids": left, "key": _link_key((k, v) for k, v in left)}
            )
        else:
            gone.append({"oid": obs.id})
    if rewritten:
        session.execute(
            update(observations)
            .where(observations.c.id == bindparam("oid"))
            .values(identifiers=bindparam("ids"), link_key=bindparam("key")),
            rewritten,
        )
    if gone:
        session.execute(delete(observations).where(observations.c.id == bindparam("oid")), gone)
    traits = _TRAITS
    identifiers = _IDS
    rows = [{"k": k, "v": v} for k, v in pairs]
    if rows:
        session.execute(
            delete(traits).where(
                traits.c.anchor_kind == bindparam("k"), traits.c.anchor_value == bindparam("v")
            ),
            rows,
        )
        session.execute(
            delete(identifiers).where(
                identifiers.c.kind == bindparam("k"), identifiers.c.value == bindparam("v")
            ),
            rows,
        )
    merges = _MERGES
    session.execute(
        delete(merges).where(or_(merges.c.kept_id.in_(ids), merges.c.absorbed_id.in_(ids)))
    )
    return pairs
