"""What the customers context publishes to audiences (the segments context): set-based
selects over live profiles, their events and their consents, and the few lookups an
incremental re-evaluation needs. Selects only, in native column types (UUID ids, UTC
times), so a caller can nest them in one statement; no personal data is logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    func,
    select,
    union,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased
from sqlalchemy.schema import CreateTable

from parcours.core.db import UTCDateTime, UUIDType, flushed_connection
from parcours.core.events import ConsumerStatus
from parcours.core.models import ConsumerCursor
from parcours.customers import identity_log
from parcours.customers.models import ComputedTraits, Consent, Customer, IdentityIdentifier
from parcours.customers.models import TrackedEvent as E
from parcours.customers.profile_traits import identifier_links, linked_events


def audience_profiles(
    profile_ids: Sequence[uuid.UUID] | None = None, scope: AudienceScope | None = None
) -> Select[Any]:
    """One row per live profile (not erased, not merged into another; all, or among
    `profile_ids`): `profile_id`, the descriptive fields (postcode, city, country, locale,
    birth_date, created_at, email, phone) and the computed traits (NULL before the first
    refresh; money in cents). With a restricted materialised `scope`, only its profiles."""
    columns: list[Any] = [
        Customer.id.label("profile_id"),
        Customer.email.label("email"),
        Customer.phone.label("phone"),
        Customer.postcode.label("postcode"),
        Customer.city.label("city"),
        Customer.country.label("country"),
        Customer.locale.label("locale"),
        Customer.birth_date.label("birth_date"),
        Customer.created_at.label("created_at"),
        ComputedTraits.first_seen_at,
        ComputedTraits.last_seen_at,
        ComputedTraits.channels,
        ComputedTraits.events_count,
        ComputedTraits.orders_count,
        ComputedTraits.currency,
        ComputedTraits.revenue_cents,
        ComputedTraits.average_basket_cents,
        ComputedTraits.favourite_category,
        ComputedTraits.preferred_store_id,
        ComputedTraits.last_purchase_at,
        ComputedTraits.recency_score,
        ComputedTraits.frequency_score,
        ComputedTraits.monetary_score,
    ]
    stmt = select(*columns)
    if scope is not None and scope.restricted:
        # from the scope's few ids to customers by primary key
        stmt = stmt.select_from(_SCOPE).join(Customer, Customer.id == _SCOPE.c.profile_id)
    stmt = stmt.outerjoin(ComputedTraits, ComputedTraits.profile_id == Customer.id).where(
        Customer.merged_into_id.is_(None), Customer.erased_at.is_(None)
    )
    if profile_ids is not None:
        stmt = stmt.where(Customer.id.in_(list(profile_ids)))
    return stmt


def live_profile_of(profile_ids: Sequence[uuid.UUID] | None = None) -> Select[Any]:
    """(customer_id, profile_id) for every profile id ever made (or those standing for
    the live `profile_ids`): the live profile it stands for now, merges followed (the
    UUID twin of `profile_keys`)."""
    anchor = select(Customer.id.label("customer_id"), Customer.id.label("profile_id")).where(
        Customer.merged_into_id.is_(None)
    )
    if profile_ids is not None:
        anchor = anchor.where(Customer.id.in_(list(profile_ids)))
    walk = anchor.cte("audience_walk", recursive=True)
    absorbed = aliased(Customer)
    walk = walk.union_all(
        select(absorbed.id, walk.c.profile_id).join(
            walk, absorbed.merged_into_id == walk.c.customer_id
        )
    )
    return select(walk.c.customer_id, walk.c.profile_id)


def profile_events(profile_ids: Sequence[uuid.UUID] | None = None) -> Select[Any]:
    """(profile_id, seq, type, event, channel, store_id, timestamp, properties) of every
    logged event of the profiles (all, or `profile_ids`), found through their identifiers
    and counted once even when both its user id and anonymous id are linked."""
    return _events_of(linked_events(identifier_links(profile_ids)))


def _events_of(linked: Any) -> Select[Any]:
    """The events of `linked` (profile_id, seq) rows, with the columns conditions read."""
    return select(
        linked.c.profile_id,
        E.seq,
        E.type,
        E.event,
        E.channel,
        E.store_id,
        E.timestamp,
        E.properties,
    ).select_from(linked.join(E, E.seq == linked.c.seq))


def granted_consents(
    purpose: str,
    channel: str,
    now: Any,
    profile_ids: Sequence[uuid.UUID] | None = None,
    scope: AudienceScope | None = None,
    owners: Select[Any] | None = None,
) -> Select[Any]:
    """(profile_id) of the live profiles (all, or among `profile_ids`) whose consent to
    `purpose` on `channel` is granted at `now`: the latest decision of the person (any
    profile merged into it) wins, as in `can_contact`. One statement, a window over the
    decisions. `now` may be a bound parameter; with a materialised `scope`, its owners
    table replaces the merge walk; `owners`, a `live_profile_of(profile_ids)` select the
    caller reuses elsewhere in its statement (one merge walk CTE), may be given."""
    walk: Any = (
        scope.owners.alias("consent_owners")
        if scope is not None
        else (owners if owners is not None else live_profile_of(profile_ids)).subquery(
            "consent_owners"
        )
    )
    decided = (Consent.purpose == purpose, Consent.channel == channel, Consent.at <= now)
    order = (Consent.at.desc(), Consent.id.desc())
    if scope is None and profile_ids is not None:
        # A few profiles: their consents are read through the customer id index, each
        # mapped to its profile by a lookup. As a join, SQLite without statistics on the
        # merge walk started from the consents (an automatic index over every consent
        # of the purpose: ~150 ms at 100,000 profiles, for one profile).
        profile = (
            select(walk.c.profile_id)
            .where(walk.c.customer_id == Consent.customer_id)
            .scalar_subquery()
        )
        ranked = (
            select(
                profile.label("profile_id"),
                Consent.granted,
                func.row_number().over(partition_by=profile, order_by=order).label("rank"),
            )
            .where(Consent.customer_id.in_(select(walk.c.customer_id)), *decided)
            .subquery("latest_consents")
        )
    else:
        ranked = (
            select(
                walk.c.profile_id,
                Consent.granted,
                func.row_number()
                .over(partition_by=walk.c.profile_id, order_by=order)
                .label("rank"),
            )
            .join(walk, walk.c.customer_id == Consent.customer_id)
            .where(*decided)
            .subquery("latest_consents")
        )
    return (
        select(ranked.c.profile_id)
        .join(Customer, Customer.id == ranked.c.profile_id)
        .where(ranked.c.rank == 1, ranked.c.granted.is_(True), Customer.erased_at.is_(None))
    )


# Run by the incremental passes every second: built once, run on the session's connection
# (the ORM's execute and a statement built per call cost ~0.3 ms each per pass).
_WINDOW = and_(E.seq > bindparam("after"), E.seq <= bindparam("up_to"))
_NAMES = select(func.coalesce(E.event, E.type)).where(_WINDOW).distinct()


def event_log_head(session: Session, now: datetime) -> int:
    """How far the tracking log's readers may read: the position (`seq`, 0 when empty)
    up to which every event's identifiers are in the identity graph, after the graph
    has read the events logged since its last pass (`identity_log`)."""
    return identity_log.resolve_logged_events(session, now)


def log_readers(session: Session) -> list[ConsumerStatus]:
    """The readers of the tracking log (cursors named `…@events`): position, how many
    positions they have left to read, and their last error."""
    head = identity_log.log_head(session)
    cursors = session.scalars(
        select(ConsumerCursor)
        .where(ConsumerCursor.consumer.like("%@events"))
        .order_by(ConsumerCursor.consumer)
    )
    return [
        ConsumerStatus(c.consumer, int(c.position), max(0, head - c.position), c.last_error)
        for c in cursors
    ]


def logged_event_names(session: Session, after: int, up_to: int) -> set[str]:
    """The names of the track events logged between positions `after` (excluded) and
    `up_to`; page, screen and identify messages are named by their type."""
    rows = flushed_connection(session).execute(_NAMES, {"after": after, "up_to": up_to}).scalars()
    return set(rows)


def changed_profiles(session: Session, since: datetime, until: datetime) -> list[uuid.UUID]:
    """Profiles whose record, computed traits or consents changed in (since, until]
    (UTC): an edit, a trait refresh, a consent decision, a merge or an erasure. Three
    index range reads (`updated_at`, `computed_at`, consents' `at`)."""
    window = {"since": since, "until": until}
    rows = flushed_connection(session).execute(_changed_statement(), window)
    return list(rows.scalars())


@cache
def _changed_statement() -> Select[Any]:
    """Built once: the incremental passes run it every second."""
    since = bindparam("since", type_=UTCDateTime())
    until = bindparam("until", type_=UTCDateTime())
    window_customers = and_(Customer.updated_at > since, Customer.updated_at <= until)
    window_traits = and_(ComputedTraits.computed_at > since, ComputedTraits.computed_at <= until)
    decided = select(Consent.customer_id).where(Consent.at > since, Consent.at <= until)
    return union(
        select(Customer.id).where(window_customers),
        select(ComputedTraits.profile_id).where(window_traits),
        _live_profiles_of(decided),
    )  # type: ignore[return-value]


def contact_rows(session: Session, profile_ids: Sequence[uuid.UUID]) -> list[Any]:
    """(id, email, phone, first_name, last_name, locale) of live profiles, for audience
    exports; the caller audits the access. Chunked: a few queries per 5,000 profiles."""
    rows: list[Any] = []
    ids = list(profile_ids)
    for start in range(0, len(ids), 5000):
        rows.extend(
            session.execute(
                select(
                    Customer.id,
                    Customer.email,
                    Customer.phone,
                    Customer.first_name,
                    Customer.last_name,
                    Customer.locale,
                )
                .where(Customer.id.in_(ids[start : start + 5000]), Customer.erased_at.is_(None))
                .order_by(Customer.id)
            )
        )
    return rows


# ------------------------------------------------------------------ materialised scope

_META = MetaData()
_SCOPE = Table(
    "tmp_audience_scope",
    _META,
    Column("profile_id", UUIDType, primary_key=True),
    prefixes=["TEMPORARY"],
)
_EVENTS = Table(
    "tmp_audience_events",
    _META,
    Column("profile_id", UUIDType),
    Column("seq", BigInteger),
    prefixes=["TEMPORARY"],
)
_OWNERS = Table(
    "tmp_audience_owners",
    _META,
    Column("customer_id", UUIDType, primary_key=True),
    Column("profile_id", UUIDType),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class AudienceScope:
    """The profiles one evaluation pass covers, with the expensive shared parts written
    once into temporary tables of the caller's connection: `events` (profile_id, seq)
    links each profile to its logged events, `owners` (customer_id, profile_id) maps every
    customer id merged into a profile (and the profile itself) to it. `restricted` is
    False for every live profile, True for the ids given to `materialise_audience`
    (kept in a third table that `audience_profiles(scope=...)` reads)."""

    restricted: bool
    events: Table = _EVENTS
    owners: Table = _OWNERS


def materialise_audience(
    session: Session,
    profile_ids: Sequence[uuid.UUID] | None = None,
    *,
    events: bool = True,
    owners: bool = True,
) -> AudienceScope:
    """Fill the temporary tables of a pass over every live profile (None) or some: an
    INSERT ... SELECT each, whatever the number of profiles; `events` / `owners` False
    leaves that table empty (for passes with no event, order or consent condition). The
    tables live on the session's connection and are emptied by the next call."""
    connection = session.connection()
    for ddl in _temporary_tables(connection.dialect.name):
        connection.exec_driver_sql(ddl)
    restricted = profile_ids is not None
    if profile_ids is not None:
        ids = sorted(set(profile_ids))
        for start in range(0, len(ids), 5000):
            connection.execute(
                _SCOPE.insert(), [{"profile_id": pid} for pid in ids[start : start + 5000]]
            )
    # Statistics on the temporary tables (no autovacuum reaches them) let both planners
    # start from the few profiles of an incremental pass (without them SQLite scanned
    # every consent). They are taken when the kind of pass changes on this connection,
    # not at every pass: an ANALYZE makes SQLite prepare every statement again.
    analyse = connection.info.get(_STATISTICS) != restricted
    if analyse:
        connection.exec_driver_sql(f"ANALYZE {_SCOPE.name}")
    fill_events, fill_owners = _fill_statements(restricted)
    if events:
        connection.execute(fill_events)
    if owners:
        connection.execute(fill_owners)
    if analyse:
        for table in (_EVENTS, _OWNERS):
            connection.exec_driver_sql(f"ANALYZE {table.name}")
        connection.info[_STATISTICS] = restricted
    return AudienceScope(restricted)


_STATISTICS = "parcours.audience_statistics"  # in the DBAPI connection's info


@cache
def _temporary_tables(dialect_name: str) -> tuple[str, ...]:
    """CREATE (if missing) and empty the three tables, compiled once per dialect."""
    dialect = (postgresql.dialect if dialect_name == "postgresql" else sqlite.dialect)()
    statements: list[str] = []
    for table in (_SCOPE, _EVENTS, _OWNERS):
        statements.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        statements.append(str(table.delete().compile(dialect=dialect)))
    return tuple(statements)


@cache
def _fill_statements(restricted: bool) -> tuple[Any, Any]:
    """The INSERT ... SELECT of the profile/event links and of the merge walk, built
    once. Restricted, they are written as joins from the scope table, which (with its
    statistics) lets both planners start from its few profiles: with `IN (SELECT ...)`
    SQLite walked every live customer and every identifier."""
    anchor: Any = select(Customer.id.label("customer_id"), Customer.id.label("profile_id"))
    links: Any = select(
        IdentityIdentifier.profile_id, IdentityIdentifier.kind, IdentityIdentifier.value
    )
    anchor = anchor.where(Customer.merged_into_id.is_(None))
    if restricted:
        anchor = anchor.select_from(_SCOPE).join(Customer, Customer.id == _SCOPE.c.profile_id)
        # The scope's identifiers by profile id, materialised before the kind filter:
        # given `kind = ?`, SQLite read every identifier of that kind instead.
        scoped = links.select_from(_SCOPE).join(
            IdentityIdentifier, IdentityIdentifier.profile_id == _SCOPE.c.profile_id
        )
        linked = linked_events(scoped.cte("scope_links").prefix_with("MATERIALIZED"))
    else:
        linked = linked_events(
            links.where(IdentityIdentifier.kind.in_(identity_log.SENDER_KINDS)).subquery(
                "scope_links"
            )
        )
    walk = _walk(anchor)
    return (
        _EVENTS.insert().from_select(
            ["profile_id", "seq"], select(linked.c.profile_id, linked.c.seq)
        ),
        _OWNERS.insert().from_select(
            ["customer_id", "profile_id"], select(walk.c.customer_id, walk.c.profile_id)
        ),
    )


def scoped_events(scope: AudienceScope) -> Select[Any]:
    """`profile_events` of the profiles of a materialised scope (same columns)."""
    return _events_of(scope.events)


def _walk(anchor: Select[Any]) -> Any:
    """The merge walk from (customer_id, profile_id) rows of live profiles: a CTE of
    every customer id merged into them, with the live profile it stands for."""
    walk = anchor.cte("scope_walk", recursive=True)
    absorbed = aliased(Customer)
    return walk.union_all(
        select(absorbed.id, walk.c.profile_id).join(
            walk, absorbed.merged_into_id == walk.c.customer_id
        )
    )


def _live_profiles_of(customer_ids: Select[Any]) -> Select[Any]:
    """The live profile ids the given customer ids stand for now (merges followed up),
    walking from those customers only."""
    start = select(Customer.id.label("customer_id"), Customer.merged_into_id.label("into")).where(
        Customer.id.in_(customer_ids)
    )
    up = start.cte("changed_walk", recursive=True)
    parent = aliased(Customer)
    up = up.union_all(select(parent.id, parent.merged_into_id).join(up, parent.id == up.c.into))
    return select(up.c.customer_id).where(up.c.into.is_(None))
