"""Segments: saved definitions, their evaluation and their members.

A full evaluation runs the segment's one select and diffs it with the stored members;
an incremental one runs it restricted to the profiles something happened to. Either way
the profiles that entered and exited are written with `Segment Entered` / `Segment
Exited` domain events in the same transaction, and segments using other segments are
evaluated after them (dependency order).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, groupby
from typing import Any, cast

from sqlalchemy import Select, String, Table, bindparam, func, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter

from parcours import customers, stores
from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.db import UUIDType, flushed_connection
from parcours.core.errors import FieldError, NotFound, Refused, SaidConflict, refusal
from parcours.core.ids import new_id
from parcours.core.models import OutboxEvent
from parcours.segments import definition as d
from parcours.segments.compiler import Compiler
from parcours.segments.models import Segment, SegmentEvaluation, SegmentMember
from parcours.segments.prepared import Prepared, prepare

SEGMENT_ENTERED = "Segment Entered"
SEGMENT_EXITED = "Segment Exited"
CHUNK = 500
WRITE_CHUNK = 20_000
SAMPLE = 10


@dataclass(frozen=True)
class SegmentInfo:
    """A segment as other contexts see it; times UTC."""

    id: uuid.UUID
    key: str
    name: str
    member_count: int
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class MembershipChange:
    """Who entered and who exited a segment in one evaluation."""

    segment_id: uuid.UUID
    entered: list[uuid.UUID]
    exited: list[uuid.UUID]


@dataclass(frozen=True)
class Preview:
    """How many profiles a definition keeps now, and a few of them (id, display name)."""

    count: int
    sample: list[tuple[uuid.UUID, str]]


def info(segment: Segment) -> SegmentInfo:
    return SegmentInfo(
        segment.id,
        segment.key,
        segment.name,
        segment.member_count,
        segment.version,
        segment.updated_at,
    )


# ------------------------------------------------------------------ saving


# What the service refuses, as `message % values` so the console can say it in the
# reader's language (the API's `detail` is the English text).
UNKNOWN_SEGMENT = "no segment has the key %(key)s"
UNKNOWN_STORE = "no store has the code %(code)s"
NAMES_UNKNOWN = "The segment definition names unknown things: see below."
CYCLE = "the segment would depend on itself: %(cycle)s"
CYCLE_HEADLINE = "The segment would depend on itself: %(cycle)s."
NOT_A_NAME = "must be a non-empty text of at most 200 characters"
KEY_IN_USE = "A segment already has the key %(key)s; choose another key."
USED_BY = "The segment %(key)s is used by %(users)s: change them first."
NOT_VALID_SEGMENT = "The segment is not valid: see below."
SERVICE_MESSAGES = (
    UNKNOWN_SEGMENT, UNKNOWN_STORE, NAMES_UNKNOWN, CYCLE, CYCLE_HEADLINE, NOT_A_NAME,
    KEY_IN_USE, USED_BY, NOT_VALID_SEGMENT,
)  # fmt: skip


def _segment_keys(session: Session) -> dict[str, uuid.UUID]:
    return {row.key: row.id for row in session.execute(select(Segment.key, Segment.id))}


def _check_references(
    session: Session, key: str, node: d.Node, pointer: str = "#/definition"
) -> None:
    """Refs to unknown segments or stores, and cycles between segments, are refused."""
    deps = d.dependencies(node)
    known = _segment_keys(session)
    errors: list[FieldError] = [
        refusal(UNKNOWN_SEGMENT, pointer=pointer, key=repr(ref))
        for ref in sorted(deps.segments - set(known))
    ]
    codes = {c.store for c in d.walk(node) if isinstance(c, d.Geo | d.Order) and c.store}
    codes |= {
        v
        for c in d.walk(node)
        if isinstance(c, d.Trait) and c.field == "preferred_store" and c.value
        for v in (c.value if isinstance(c.value, tuple) else (c.value,))
    }
    found = stores.store_ids_by_code(session, codes)
    errors += [
        refusal(UNKNOWN_STORE, pointer=pointer, code=repr(code))
        for code in sorted(codes - set(found))
    ]
    if errors:
        raise Refused(
            f"The segment definition names unknown things: {errors[0].detail}.",
            errors,
            NAMES_UNKNOWN,
        )
    cycle = _cycle(session, key, deps.segments)
    if cycle:
        loop = " → ".join(cycle)
        raise Refused.of(CYCLE_HEADLINE, [refusal(CYCLE, pointer=pointer, cycle=loop)], cycle=loop)


def _graph(session: Session) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for key, definition in session.execute(select(Segment.key, Segment.definition)):
        graph[key] = set(d.dependencies(d.parse(definition)).segments)
    return graph


def _cycle(session: Session, key: str, uses: Iterable[str]) -> list[str]:
    graph = _graph(session)
    graph[key] = set(uses)

    def visit(node: str, path: list[str]) -> list[str]:
        for nxt in sorted(graph.get(node, ())):
            if nxt == key:
                return [*path, nxt]
            if nxt not in path:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        return []

    return visit(key, [key])


def create_segment(
    session: Session,
    now: datetime,
    actor: Actor,
    key: str,
    name: str,
    definition: dict[str, Any],
    description: str = "",
) -> SegmentInfo:
    """Save a new segment (not evaluated yet: `refresh_segment` or the worker does it).

    Raises InvalidInput with JSON pointers for a bad key, name or definition (unknown
    field or operator, unknown segment or store, a cycle), Conflict for a key in use."""
    errors = d.check_key(key) + _check_name(name)
    node = _parse(definition, errors)
    if session.scalar(select(Segment.id).where(Segment.key == key)) is not None:
        raise SaidConflict(KEY_IN_USE, key=repr(key))
    _check_references(session, key, node)
    segment = Segment(
        id=new_id(),
        key=key,
        name=name.strip(),
        description=description.strip(),
        definition=definition,
        version=1,
        member_count=0,
        created_at=now,
        updated_at=now,
        created_by=actor.label,
    )
    session.add(segment)
    session.flush()
    audit.record(session, now, actor, "segment.created", "segment", str(segment.id), key=key)
    return info(segment)


def update_segment(
    session: Session,
    now: datetime,
    actor: Actor,
    ref: str,
    name: str | None = None,
    definition: dict[str, Any] | None = None,
    description: str | None = None,
) -> SegmentInfo:
    """Change a segment's name, description or definition; a new definition bumps the
    version (members are kept until the next evaluation)."""
    segment = _get(session, ref)
    errors = _check_name(name) if name is not None else []
    node = _parse(definition, errors) if definition is not None else None
    if node is not None:
        _check_references(session, segment.key, node)
    if name is not None:
        segment.name = name.strip()
    if description is not None:
        segment.description = description.strip()
    if definition is not None and definition != segment.definition:
        segment.definition = definition
        segment.version += 1
    segment.updated_at = now
    audit.record(session, now, actor, "segment.updated", "segment", str(segment.id))
    return info(segment)


def delete_segment(session: Session, now: datetime, actor: Actor, ref: str) -> None:
    """Delete a segment and its members; refused while another segment uses it."""
    segment = _get(session, ref)
    users = sorted(k for k, uses in _graph(session).items() if segment.key in uses)
    if users:
        raise SaidConflict(USED_BY, key=segment.key, users=", ".join(users))
    audit.record(session, now, actor, "segment.deleted", "segment", str(segment.id))
    session.delete(segment)
    session.flush()


def _check_name(name: str | None) -> list[FieldError]:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return [refusal(NOT_A_NAME, parameter="name")]
    return []


def _parse(definition: Any, errors: list[FieldError]) -> d.Node:
    try:
        node = d.parse(definition, "#/definition")
    except Refused as bad:
        if not errors:
            raise
        errors = errors + bad.errors
        raise Refused(_summary(errors), errors, NOT_VALID_SEGMENT) from None
    if errors:
        raise Refused(_summary(errors), errors, NOT_VALID_SEGMENT)
    return node


def _summary(errors: list[FieldError]) -> str:
    first = errors[0]
    return f"The segment is not valid: {first.pointer or first.parameter} {first.detail}."


# ------------------------------------------------------------------ reading


def _get(session: Session, ref: str) -> Segment:
    segment = session.scalar(select(Segment).where(Segment.key == ref))
    if segment is None:
        try:
            segment = session.get(Segment, uuid.UUID(ref))
        except ValueError:
            segment = None
    if segment is None:
        raise NotFound(f"No segment has the key or id {ref!r}.")
    return segment


def find_segment(session: Session, ref: str) -> SegmentInfo:
    """A segment by key or id; NotFound otherwise."""
    return info(_get(session, ref))


def get_segment(session: Session, ref: str) -> Segment:
    """The stored segment (definition included) by key or id; NotFound otherwise."""
    return _get(session, ref)


def list_segments(session: Session) -> list[SegmentInfo]:
    """Every segment, by key."""
    return [info(s) for s in session.scalars(select(Segment).order_by(Segment.key))]


def members_of(session: Session, segment_id: uuid.UUID) -> list[uuid.UUID]:
    """The current member profile ids of a segment (as of its last evaluation)."""
    stmt = select(SegmentMember.profile_id).where(SegmentMember.segment_id == segment_id)
    return list(session.scalars(stmt.order_by(SegmentMember.profile_id)))


def is_member(session: Session, segment_id: uuid.UUID, profile_id: uuid.UUID) -> bool:
    """Whether a profile is in a segment now (as of its last evaluation)."""
    return session.get(SegmentMember, (segment_id, profile_id)) is not None


def history(session: Session, segment_id: uuid.UUID, limit: int = 60) -> list[SegmentEvaluation]:
    """The latest evaluations that changed the segment (or full ones), oldest first."""
    rows = session.scalars(
        select(SegmentEvaluation)
        .where(SegmentEvaluation.segment_id == segment_id)
        .order_by(SegmentEvaluation.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


# ------------------------------------------------------------------ evaluation


def preview(session: Session, now: datetime, definition: dict[str, Any]) -> Preview:
    """Count and sample (10 profiles with their display names) of a definition, unsaved."""
    node = d.parse(definition, "#/definition")
    _check_references(session, "(preview)", node)
    ids = list(session.scalars(Compiler(session, now, _segment_keys(session)).members(node)))
    sample = sorted(ids)[:SAMPLE]
    names = {row[0]: _display(row) for row in customers.contact_rows(session, sample)}
    return Preview(len(ids), [(pid, names.get(pid, str(pid))) for pid in sample])


def _display(row: Any) -> str:
    full = " ".join(part for part in (row.first_name, row.last_name) if part)
    return full or str(row.id)[:8]


def evaluate(
    session: Session, now: datetime, node: d.Node, profile_ids: Sequence[uuid.UUID] | None = None
) -> set[uuid.UUID]:
    """The profiles a tree keeps now (among `profile_ids` when given): one select."""
    compiler = Compiler(session, now, _segment_keys(session), profile_ids)
    return set(session.scalars(compiler.members(node)))


# ------------------------------------------------------------------ many segments at once


@dataclass(frozen=True)
class Entry:
    """A saved segment ready to evaluate: its tree parsed once per version, what it
    depends on and its dependency level (0: uses no segment; n: uses one of level n-1)."""

    id: uuid.UUID
    key: str
    version: int
    node: d.Node
    deps: d.Dependencies
    level: int
    stores: bool = False  # names store codes: its statement follows the store network

    @property
    def trigger(self) -> tuple[Any, ...]:
        """What makes the incremental pass evaluate it (with its level): the segments
        sharing it are always evaluated together, by one cached statement."""
        deps = self.deps
        names = None if deps.event_names is None else tuple(sorted(deps.event_names))
        return (self.level, names, deps.orders, deps.profile, tuple(sorted(deps.segments)))


@dataclass(frozen=True)
class Plan:
    """One statement evaluating some segments side by side (column `s<i>` for
    `segment_ids[i]`), with its time-dependent parameters, and compiled once to the
    driver's SQL text (`prepared`: only those parameters are computed at each run)."""

    segment_ids: tuple[uuid.UUID, ...]
    statement: Select[Any]
    timed: Mapping[str, Callable[[datetime], Any]]
    prepared: Prepared

    def params(self, now: datetime) -> dict[str, Any]:
        return {name: value(now) for name, value in self.timed.items()}

    def rows(
        self, session: Session, now: datetime, profile_ids: Sequence[uuid.UUID] = ()
    ) -> list[tuple[Any, ...]]:
        """(profile_id, flag per segment) of the evaluated profiles at `now` (of
        `profile_ids` for a plan built with profile id slots)."""
        return self.prepared.rows(session, now, profile_ids)


@dataclass(frozen=True)
class Context:
    """What every plan of a pass is built against: the segment keys and the store
    network's version (both read once per pass)."""

    keys: Mapping[str, uuid.UUID]
    network: int


# At most this many segment columns, and about this many bound values, per statement
# (SQLite allows 2,000 columns and 32,766 variables; PostgreSQL 1,664 and 65,535).
COLUMNS_PER_STATEMENT = 100
VALUES_PER_STATEMENT = 20_000
# A pass over at most this many profiles reads them through IN lists of bound
# parameters (their number rounded up to a power of four: 1, 4, 16 or 64 slots, so four
# statements per group of segments are built ahead by `warm`)
# instead of filling the temporary tables (9 statements); measured with
# `python -m bench segments`, see docs/segments.md.
SMALL_PASS = 64
# Core inserts: the ORM's bulk path costs several times more per row.
_MEMBERS = cast(Table, SegmentMember.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
_HISTORY = cast(Table, SegmentEvaluation.__table__)
_SEGMENTS = cast(Table, Segment.__table__)
# An incremental pass's exits and sizes: Core statements run as one executemany each (an
# ORM delete per segment and the ORM's flush of the sizes cost ~1 ms apiece).
_LEAVE = _MEMBERS.delete().where(
    _MEMBERS.c.segment_id == bindparam("sid"), _MEMBERS.c.profile_id == bindparam("pid")
)
_RESIZE = (
    _SEGMENTS.update()
    .where(_SEGMENTS.c.id == bindparam("sid"))
    .values(member_count=_SEGMENTS.c.member_count + bindparam("delta"))
)
# Run by every incremental pass: built once, run on the session's connection.
_ENTER = _MEMBERS.insert()
_ANNOUNCE = _OUTBOX.insert()
_RECORD = _HISTORY.insert()
_MEMBERS_OF = select(_MEMBERS.c.segment_id, _MEMBERS.c.profile_id).where(
    _MEMBERS.c.segment_id.in_(bindparam("sids", expanding=True))
)
_MEMBERS_AMONG = _MEMBERS_OF.where(_MEMBERS.c.profile_id.in_(bindparam("pids", expanding=True)))
_SIZES_OF = select(_SEGMENTS.c.id, _SEGMENTS.c.member_count).where(
    _SEGMENTS.c.id.in_(bindparam("sids", expanding=True))
)
_PARSED: dict[tuple[uuid.UUID, int], tuple[d.Node, d.Dependencies, bool]] = {}
_CACHE_SIZE = 512
# The built statements, least recently used first. A warm catalogue needs (trigger
# groups) x (SMALL_PASS slot sizes + 1) of them: 9 groups x 8 for the benchmark's 50
# segments; beyond PLANS_KEPT the least recently used are dropped.
PLANS_KEPT = 2048
_PLANS: OrderedDict[tuple[Any, ...], list[Plan]] = OrderedDict()
_BUILT = [0]  # statements built (and compiled) by this process


def statements_built() -> int:
    """How many statements this process has built and compiled so far (every cache miss
    of a pass, and every statement a warm-up built)."""
    return _BUILT[0]


_CATALOGUES: dict[tuple[tuple[Any, ...], ...], list[Entry]] = {}
# Core selects run by every pass (the ORM's would cost ~0.3 ms more each)
_CATALOGUE = select(_SEGMENTS.c.id, _SEGMENTS.c.key, _SEGMENTS.c.version).order_by(_SEGMENTS.c.key)
# What tells whether the catalogue changed, the ids as the driver gives them (turning
# 50 ids into UUIDs at every pass cost more than the read itself).
_FINGERPRINT = select(
    type_coerce(_SEGMENTS.c.id, String), _SEGMENTS.c.key, _SEGMENTS.c.version
).order_by(_SEGMENTS.c.key)


def catalogue(session: Session) -> list[Entry]:
    """Every segment with its parsed tree, in dependency order (by level, then key).
    Definitions are parsed once per (segment, version), and the ordered entries built
    once per set of (id, key, version), and kept in this process."""
    connection = flushed_connection(session)
    fingerprint = tuple(tuple(row) for row in connection.execute(_FINGERPRINT))
    cached = _CATALOGUES.get(fingerprint)
    if cached is not None:
        return list(cached)
    rows = connection.execute(_CATALOGUE).all()
    missing = [row.id for row in rows if (row.id, row.version) not in _PARSED]
    if missing:
        if len(_PARSED) > _CACHE_SIZE:
            _PARSED.clear()
        for sid, version, definition in session.execute(
            select(Segment.id, Segment.version, Segment.definition).where(Segment.id.in_(missing))
        ):
            node = d.parse(definition)
            _PARSED[(sid, version)] = (node, d.dependencies(node), _names_stores(node))
    parsed = {row.key: (row, *_PARSED[(row.id, row.version)]) for row in rows}
    levels: dict[str, int] = {}

    def level(key: str, path: frozenset[str] = frozenset()) -> int:
        if key not in levels:
            used = [k for k in parsed[key][2].segments if k in parsed and k not in path]
            levels[key] = 1 + max((level(k, path | {key}) for k in used), default=-1)
        return levels[key]

    entries = [
        Entry(row.id, key, row.version, node, deps, level(key), uses_stores)
        for key, (row, node, deps, uses_stores) in parsed.items()
    ]
    entries.sort(key=lambda e: (e.level, e.key))
    if len(_CATALOGUES) > _CACHE_SIZE:
        _CATALOGUES.clear()
    _CATALOGUES[fingerprint] = entries
    return list(entries)


def _names_stores(node: d.Node) -> bool:
    """Whether a tree names store codes (resolved to ids when its statement is built)."""
    return any(
        (isinstance(c, d.Geo | d.Order) and c.store is not None)
        or (isinstance(c, d.Trait) and c.field == "preferred_store")
        for c in d.walk(node)
    )


def trigger_groups(entries: Sequence[Entry]) -> list[list[Entry]]:
    """The entries by `Entry.trigger`, in dependency order: what an incremental pass
    evaluates is always a union of whole groups, one cached statement each."""
    groups: dict[tuple[Any, ...], list[Entry]] = {}
    for entry in sorted(entries, key=lambda e: (e.level, e.key)):
        groups.setdefault(entry.trigger, []).append(entry)
    return list(groups.values())


def context(
    session: Session, keys: Mapping[str, uuid.UUID] | None = None, network: bool = True
) -> Context:
    """The segment keys (read unless given) and store network version plans are built
    against; `network` False when no segment evaluated names a store (the version,
    then 0, is not part of any statement's key: one read less per pass)."""
    if keys is None:
        keys = _segment_keys(session)
    return Context(keys, stores.network_version(session) if network else 0)


def keys_of(entries: Sequence[Entry]) -> dict[str, uuid.UUID]:
    """The key -> id map of a whole catalogue."""
    return {e.key: e.id for e in entries}


def _slots(count: int) -> int:
    """The profile id slots of a small pass's statement: a power of four (a 2-profile
    pass runs the 4-slot statement, the last id repeated; each size is one more
    statement per group to build ahead)."""
    size = 1
    while size < count:
        size *= 4
    return size


def _plans(
    session: Session,
    now: datetime,
    entries: Sequence[Entry],
    scope: customers.AudienceScope | None,
    built_for: Context | None = None,
    slots: int = 0,
) -> list[Plan]:
    """The statements evaluating `entries` (of one level) over `scope`, or over `slots`
    profile ids given at each run (scope None): built and compiled once per (segments
    and versions, segment keys, store network, database, kind of pass) and kept; only
    their time-dependent parameters (and profile ids) change from one run to the next."""
    built_for = built_for or context(session)
    cache_key = _plan_key(session, entries, _kind(scope, slots), built_for)
    found = _PLANS.get(cache_key)
    if found is None:
        found = _build_plans(session, now, entries, scope, built_for.keys, slots)
        _BUILT[0] += len(found)
        _PLANS[cache_key] = found
        while len(_PLANS) > PLANS_KEPT:
            _PLANS.popitem(last=False)
    else:
        _PLANS.move_to_end(cache_key)
    return found


def _kind(scope: customers.AudienceScope | None, slots: int) -> str:
    """The kind of pass a statement is for: every live profile, the temporary tables of
    some, or `slots` profile ids."""
    if scope is None:
        return f"ids{slots}"
    return "some" if scope.restricted else "all"


def _plan_key(
    session: Session, entries: Sequence[Entry], kind: str, built_for: Context
) -> tuple[Any, ...]:
    """What a statement depends on: the database, the kind of pass, the segments and
    versions, the ids of the segments they use, and the store network when they name
    stores (so that a new segment or a store change rebuilds only what it concerns)."""
    used = sorted({key for e in entries for key in e.deps.segments})
    return (
        str(session.get_bind().engine.url),
        kind,
        tuple((e.id, e.version) for e in entries),
        tuple((key, built_for.keys.get(key)) for key in used),
        built_for.network if any(e.stores for e in entries) else None,
    )


# The catalogue (and store network) each database's statements were last warmed for.
_WARMED: dict[str, tuple[Any, ...]] = {}


@dataclass(frozen=True)
class Warmup:
    """What a warm-up did: statements built, statements already cached, groups."""

    built: int
    cached: int
    groups: int


def warm(session: Session, now: datetime) -> Warmup:
    """Build and compile, ahead of any event, every statement an incremental pass can
    run for the current catalogue: each trigger group (`trigger_groups`) for each number
    of profile id slots of a small pass and for a larger pass's temporary tables. Nothing
    is done when the catalogue (segments, keys, versions) and the store network are those
    of the last warm-up; otherwise only the groups that changed are built, and the
    statements of groups that no longer exist are dropped."""
    entries = catalogue(session)
    built_for = context(session, keys_of(entries), any(e.stores for e in entries))
    url = str(session.get_bind().engine.url)
    fingerprint = (tuple((e.id, e.key, e.version) for e in entries), built_for.network)
    if _WARMED.get(url) == fingerprint:
        return Warmup(0, 0, 0)
    before = _BUILT[0]
    groups = trigger_groups(entries)
    kinds: list[tuple[customers.AudienceScope | None, int]] = [
        (None, slots) for slots in _slot_sizes()
    ]
    kinds.append((customers.AudienceScope(restricted=True), 0))
    wanted: set[tuple[Any, ...]] = set()
    for group in groups:
        for scope, slots in kinds:
            _plans(session, now, group, scope, built_for, slots)
            wanted.add(_plan_key(session, group, _kind(scope, slots), built_for))
    for key in [k for k in _PLANS if k[0] == url and k[1] != "all" and k not in wanted]:
        del _PLANS[key]  # an incremental statement of a group that is gone
    _WARMED[url] = fingerprint
    built = _BUILT[0] - before
    return Warmup(built, len(wanted) - built, len(groups))


def _slot_sizes() -> list[int]:
    """The numbers of profile id slots a small pass's statements have."""
    return sorted({_slots(n) for n in range(1, SMALL_PASS + 1)})


def _build_plans(
    session: Session,
    now: datetime,
    entries: Sequence[Entry],
    scope: customers.AudienceScope | None,
    keys: Mapping[str, uuid.UUID],
    slots: int = 0,
) -> list[Plan]:
    names = [f"pid{i}" for i in range(slots)] if scope is None else []
    ids = [bindparam(name, None, type_=UUIDType) for name in names] if scope is None else None
    plans: list[Plan] = []
    pending = list(entries)
    while pending:
        compiler = Compiler(session, now, keys, profile_ids=ids, scope=scope)
        profiles = compiler.audience()
        flags: list[Any] = []
        segment_ids: list[uuid.UUID] = []
        values = 0
        while pending and len(flags) < COLUMNS_PER_STATEMENT:
            entry = pending[0]
            flag = compiler.flag(entry.node, profiles, f"s{len(flags)}")
            size = _bound_values(flag)
            if flags and values + size > VALUES_PER_STATEMENT:
                break  # starts the next statement (its parameters stay unused here)
            flags.append(flag)
            segment_ids.append(entry.id)
            values += size
            pending.pop(0)
        statement = select(profiles.c.profile_id, *flags)
        compiled = prepare(statement, session.get_bind().dialect, compiler.timed, names)
        plans.append(Plan(tuple(segment_ids), statement, dict(compiler.timed), compiled))
    return plans


def _bound_values(expression: Any) -> int:
    """How many values a statement sends for an expression (IN lists count each)."""
    count = 0
    for element in visitors.iterate(expression):
        if isinstance(element, BindParameter):
            value = element.value
            count += len(value) if element.expanding and value else 1
    return count


def _materialise(
    session: Session, entries: Sequence[Entry], profile_ids: Sequence[uuid.UUID] | None
) -> customers.AudienceScope:
    conditions = [c for e in entries for c in d.walk(e.node)]
    return customers.materialise_audience(
        session,
        profile_ids,
        events=any(isinstance(c, d.Event) for c in conditions),
        owners=any(isinstance(c, d.Order | d.Consent) for c in conditions),
    )


def evaluate_many(
    session: Session,
    now: datetime,
    entries: Sequence[Entry],
    scope: customers.AudienceScope | None,
    built_for: Context | None = None,
    profile_ids: Sequence[uuid.UUID] = (),
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """The members of each segment of one level among the scope's profiles, or among
    `profile_ids` (at most SMALL_PASS) without a scope: one select (per
    COLUMNS_PER_STATEMENT segments) whatever their number."""
    found: dict[uuid.UUID, set[uuid.UUID]] = {e.id: set() for e in entries}
    slots = 0
    if scope is None:
        if not 0 < len(profile_ids) <= SMALL_PASS:
            raise ValueError(f"{len(profile_ids)} profiles without a materialised scope")
        slots = _slots(len(profile_ids))
    for plan in _plans(session, now, entries, scope, built_for, slots):
        rows = plan.rows(session, now, profile_ids if scope is None else ())
        if not rows:
            continue
        columns = list(zip(*rows, strict=True))
        evaluated = columns[0]
        for segment_id, flags in zip(plan.segment_ids, columns[1:], strict=True):
            found[segment_id].update(compress(evaluated, flags))
    return found


def _current(
    session: Session,
    segment_ids: Sequence[uuid.UUID],
    profile_ids: Sequence[uuid.UUID] | None,
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """The stored members of some segments (among `profile_ids` when given)."""
    current: dict[uuid.UUID, set[uuid.UUID]] = {sid: set() for sid in segment_ids}
    sids = list(segment_ids)
    runs = (
        [(_MEMBERS_OF, {"sids": sids})]
        if profile_ids is None
        else [
            (_MEMBERS_AMONG, {"sids": sids, "pids": list(profile_ids[start : start + CHUNK])})
            for start in range(0, len(profile_ids), CHUNK)
        ]
    )
    connection = flushed_connection(session)
    for statement, values in runs:
        for segment_id, profile_id in connection.execute(statement, values):
            current[segment_id].add(profile_id)
    return current


def refresh_entries(
    session: Session,
    now: datetime,
    entries: Sequence[Entry],
    profile_ids: Sequence[uuid.UUID] | None = None,
    wanted: Callable[[Entry, Mapping[str, set[uuid.UUID]]], bool] | None = None,
    keys: Mapping[str, uuid.UUID] | None = None,
) -> dict[uuid.UUID, MembershipChange]:
    """Evaluate segments (fully, or for `profile_ids` only) level by level, one
    statement per level, store who entered and exited and publish `Segment Entered` /
    `Segment Exited` in this transaction. `wanted(entry, moved)`, when given, says
    whether an entry needs evaluating, knowing who moved in the segments of earlier
    levels: only the wanted entries of a level are evaluated, in one statement built
    and compiled once per such set of entries and kept (a pass for a "Product Viewed"
    event runs the statement of the segments counting Product Viewed, then of those
    using them). A pass over at most SMALL_PASS profiles reads them through IN lists,
    a larger one through temporary tables filled once. `keys` (every segment's key and
    id) saves reading them when the caller has the whole catalogue."""
    ordered = sorted(entries, key=lambda e: (e.level, e.key))
    ids = None if profile_ids is None else sorted(set(profile_ids))
    changes: dict[uuid.UUID, MembershipChange] = {}
    moved: dict[str, set[uuid.UUID]] = {}
    scope: customers.AudienceScope | None = None
    built_for: Context | None = None
    small = ids is not None and len(ids) <= SMALL_PASS
    if ids is not None and not ids:
        return changes
    for _, group in groupby(ordered, key=lambda e: e.level):
        level = list(group)
        if wanted is not None:
            level = [e for e in level if wanted(e, moved)]  # each asked: the caller counts
            if not level:
                continue
        if built_for is None:
            built_for = context(session, keys, any(e.stores for e in ordered))
        if scope is None and not small:  # one materialisation for every level
            scope = _materialise(session, ordered, ids)
        if ids is None:  # a full pass: the whole level in one statement
            found = evaluate_many(session, now, level, scope, built_for)
        else:  # the statements of the trigger groups, built ahead by `warm`
            found = {}
            for together in trigger_groups(level):
                found.update(evaluate_many(session, now, together, scope, built_for, ids))
        current = _current(session, [e.id for e in level], ids)
        level_changes = [
            MembershipChange(
                e.id, sorted(found[e.id] - current[e.id]), sorted(current[e.id] - found[e.id])
            )
            for e in level
        ]
        sizes = {e.id: len(found[e.id]) for e in level} if ids is None else None
        _store(session, now, level, level_changes, sizes)
        for entry, change in zip(level, level_changes, strict=True):
            changes[entry.id] = change
            moved[entry.key] = set(change.entered) | set(change.exited)
    return changes


def refresh_segment(
    session: Session,
    now: datetime,
    segment_id: uuid.UUID,
    profile_ids: Sequence[uuid.UUID] | None = None,
) -> MembershipChange:
    """Evaluate a segment (fully, or for `profile_ids` only), store who entered and
    exited and publish `Segment Entered` / `Segment Exited` in this transaction."""
    entry = next((e for e in catalogue(session) if e.id == segment_id), None)
    if entry is None:
        raise NotFound(f"No segment has the id {segment_id}.")
    if profile_ids is not None and not profile_ids:
        return MembershipChange(segment_id, [], [])
    return refresh_entries(session, now, [entry], profile_ids)[segment_id]


def _store(
    session: Session,
    now: datetime,
    entries: Sequence[Entry],
    changes: Sequence[MembershipChange],
    sizes: Mapping[uuid.UUID, int] | None,
) -> None:
    """Write one level's changes in bulk: memberships, outbox events, sizes, history.
    `sizes` (a full evaluation's member counts) marks a full evaluation."""
    connection = session.connection()
    entered = [
        {"segment_id": c.segment_id, "profile_id": pid, "entered_at": now}
        for c in changes
        for pid in c.entered
    ]
    for start in range(0, len(entered), WRITE_CHUNK):
        connection.execute(_ENTER, entered[start : start + WRITE_CHUNK])
    exited = [{"sid": c.segment_id, "pid": pid} for c in changes for pid in c.exited]
    if len(exited) <= CHUNK:  # a few: one statement run for each
        if exited:
            connection.execute(_LEAVE, exited)
    else:
        for change in changes:
            for start in range(0, len(change.exited), CHUNK):
                connection.execute(
                    _MEMBERS.delete().where(
                        _MEMBERS.c.segment_id == change.segment_id,
                        _MEMBERS.c.profile_id.in_(change.exited[start : start + CHUNK]),
                    )
                )
    events = [
        {
            "event_id": new_id(),
            "type": kind,
            "payload": {"segment_id": str(e.id), "segment_key": e.key, "profile_id": str(pid)},
            "occurred_at": now,
            "recorded_at": now,
        }
        for e, c in zip(entries, changes, strict=True)
        for kind, pids in ((SEGMENT_ENTERED, c.entered), (SEGMENT_EXITED, c.exited))
        for pid in pids
    ]
    for start in range(0, len(events), WRITE_CHUNK):
        connection.execute(_ANNOUNCE, events[start : start + WRITE_CHUNK])
    touched = {c.segment_id: c for c in changes if sizes is not None or c.entered or c.exited}
    if not touched:
        return
    if sizes is None:
        _store_sizes(session, now, touched)
        return
    rows = session.scalars(select(Segment).where(Segment.id.in_(list(touched))))
    history = []
    for segment in rows:
        change = touched[segment.id]
        segment.member_count = sizes[segment.id]
        segment.last_evaluated_at = now
        history.append(
            {
                "segment_id": segment.id,
                "at": now,
                "mode": "full",
                "entered": len(change.entered),
                "exited": len(change.exited),
                "members": segment.member_count,
            }
        )
    session.execute(_HISTORY.insert(), history)
    session.flush()


def _store_sizes(
    session: Session, now: datetime, changed: Mapping[uuid.UUID, MembershipChange]
) -> None:
    """An incremental pass's new sizes and history rows, with Core statements; the
    session's loaded segments forget their size (read again when used)."""
    connection = session.connection()
    connection.execute(
        _RESIZE,
        [{"sid": sid, "delta": len(c.entered) - len(c.exited)} for sid, c in changed.items()],
    )
    counts = {
        row.id: row.member_count for row in connection.execute(_SIZES_OF, {"sids": list(changed)})
    }
    connection.execute(
        _RECORD,
        [
            {
                "segment_id": sid,
                "at": now,
                "mode": "incremental",
                "entered": len(c.entered),
                "exited": len(c.exited),
                "members": counts[sid],
            }
            for sid, c in changed.items()
        ],
    )
    for loaded in list(session.identity_map.values()):
        if isinstance(loaded, Segment) and loaded.id in changed:
            session.expire(loaded, ["member_count"])


def in_dependency_order(session: Session) -> list[tuple[Segment, d.Dependencies]]:
    """Every segment, each after the segments it uses."""
    entries = catalogue(session)
    found = {s.id: s for s in session.scalars(select(Segment))}
    return [(found[e.id], e.deps) for e in entries]


def refresh_everything(session: Session, now: datetime) -> int:
    """Fully evaluate every segment, one statement per dependency level; how many
    segments."""
    entries = catalogue(session)
    refresh_entries(session, now, entries, keys=keys_of(entries))
    return len(entries)


def members_page(
    session: Session, segment_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """Member profile ids in id order, after `after` (cursor pagination)."""
    stmt = select(SegmentMember.profile_id).where(SegmentMember.segment_id == segment_id)
    if after is not None:
        stmt = stmt.where(SegmentMember.profile_id > after)
    return list(session.scalars(stmt.order_by(SegmentMember.profile_id).limit(limit)))


def count_segments(session: Session) -> int:
    """How many segments are defined (for the console home page)."""
    return int(session.scalar(select(func.count()).select_from(Segment)) or 0)
