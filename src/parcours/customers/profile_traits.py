"""Computed traits of profiles: what a person's behaviour on every channel says about them.

First and last seen, channels used, orders, revenue, average basket, favourite category,
preferred store, last purchase and RFM scores, stored one row per profile in
`profile_computed_traits`.

A profile's events are found through its identifiers (the `user_id` and `anonymous_id`
values the identity graph links to it), so merges never rewrite the log. Purchases come
from *purchase feeds*: today the Segment e-commerce events of the log (`Order Completed`,
sent alike by the web shop, the app and the store tills); the orders context adds its own
feed later and the same computation takes it in.

Everything is set-based: a full refresh links every profile to its events once (into a
temporary table), then runs four grouped queries for every profile at once; a refresh of
some profiles runs the same queries restricted to them (which the events indexes on
`user_id` and `anonymous_id` serve).
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from babel.numbers import get_currency_precision, list_currencies
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    CompoundSelect,
    FromClause,
    MetaData,
    Select,
    String,
    Subquery,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    text,
    true,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from parcours.core.clock import Clock
from parcours.core.db import Database, UUIDType, bulk_insert, flushed_connection
from parcours.core.events import PeriodicJob, locked_cursor
from parcours.core.models import ConsumerCursor
from parcours.core.money import Money
from parcours.customers import identity_log
from parcours.customers.models import ComputedTraits, Customer, EventSender, IdentityIdentifier
from parcours.customers.models import TrackedEvent as E

ORDER_COMPLETED = "Order Completed"
# Segment leaves the currency to the sender; a French retailer's tills and shop send euros.
DEFAULT_CURRENCY = "EUR"
REFRESH_CHUNK = 500
# The incremental refresh's position in the events log (a row of `consumer_cursors`).
EVENTS_CURSOR = "customers.profiles@events"


# ------------------------------------------------------------------ identifier links


def identifier_links(profile_ids: Sequence[uuid.UUID] | None = None) -> FromClause:
    """(profile_id, kind, value) of the event identifiers linked to profiles (all, or
    some). The identity graph keeps each identifier on its live profile."""
    stmt = select(
        IdentityIdentifier.profile_id, IdentityIdentifier.kind, IdentityIdentifier.value
    ).where(IdentityIdentifier.kind.in_(identity_log.SENDER_KINDS))
    if profile_ids is not None:
        stmt = stmt.where(IdentityIdentifier.profile_id.in_(list(profile_ids)))
    return stmt.subquery("links")


def linked_events(links: FromClause) -> Subquery:
    """(profile_id, seq) of every event filed under one of the linked identifiers, once
    each (an event may carry two of them). The log is filed by sender up to its identity
    reader's position, the position readers of the log stop at
    (`customers.event_log_head`)."""
    return (
        select(links.c.profile_id, EventSender.seq)
        .join(
            EventSender,
            and_(EventSender.kind == links.c.kind, EventSender.value == links.c.value),
        )
        .distinct()
        .subquery("linked")
    )


@dataclass(frozen=True)
class ProfileScope:
    """The profiles a computation covers: their identifier `links` (profile_id, kind,
    value) and the `events` those reach (profile_id, seq)."""

    links: FromClause
    events: FromClause


def scope_of(profile_ids: Sequence[uuid.UUID] | None = None) -> ProfileScope:
    """Some profiles (or all): subqueries the database plans with the rest."""
    links = identifier_links(profile_ids)
    return ProfileScope(links, linked_events(links))


_LINKED = Table(
    "tmp_profile_linked_events",
    MetaData(),
    Column("profile_id", UUIDType),
    Column("seq", BigInteger),
    prefixes=["TEMPORARY"],
)


def materialised_scope(session: Session) -> ProfileScope:
    """Every profile, with the (profile, event) pairs written once into a temporary table:
    the full refresh's four queries then read it instead of each re-linking the log."""
    links = identifier_links()
    connection = session.connection()
    connection.execute(text(f"DROP TABLE IF EXISTS {_LINKED.name}"))
    _LINKED.create(connection)
    linked = linked_events(links)
    session.execute(
        _LINKED.insert().from_select(
            ["profile_id", "seq"], select(linked.c.profile_id, linked.c.seq)
        )
    )
    return ProfileScope(links, _LINKED)


def drop_materialised(session: Session) -> None:
    session.execute(text(f"DROP TABLE IF EXISTS {_LINKED.name}"))


# ------------------------------------------------------------------ purchase feeds


@dataclass(frozen=True)
class PurchaseFeed:
    """Where purchases come from, as two selects over a `ProfileScope` of profiles.

    `orders(dialect, scope)` selects (profile_id, ref, at, amount_minor, currency, channel,
    store_id): one row per purchase, `amount_minor` in minor units of `currency`.
    `lines(dialect, scope)` selects (profile_id, ref, at, sku, name, category): one row per
    product line. A feed keyed by profile id (orders) reads `scope.links.c.profile_id`.
    """

    name: str
    orders: Callable[[str, ProfileScope], Select[Any]]
    lines: Callable[[str, ProfileScope], Select[Any]]


@cache
def _currency_codes() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def _currencies_by_precision() -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = defaultdict(list)
    for code in sorted(list_currencies()):
        found[int(get_currency_precision(code))].append(code)
    return {digits: tuple(codes) for digits, codes in found.items()}


def _minor_unit_factor(currency: ColumnElement[Any]) -> ColumnElement[int]:
    """10 ** (digits after the decimal point) of a currency column (100 for EUR, 1 for JPY)."""
    whens = [
        (currency.in_(codes), literal(10**digits))
        for digits, codes in sorted(_currencies_by_precision().items())
        if digits != 2
    ]
    return case(*whens, else_=literal(100))


def _json_number(dialect: str, column: Any, key: str) -> ColumnElement[Any]:
    """The number at `column.key`, or NULL when it is absent or not a number."""
    if dialect == "postgresql":
        return case((func.jsonb_typeof(column[key]) == "number", column[key].as_float()))
    path = f"$.{key}"
    return case(
        (func.json_type(column, path).in_(("integer", "real")), func.json_extract(column, path))
    )


def _event_currency() -> ColumnElement[str]:
    return func.upper(func.coalesce(E.properties["currency"].as_string(), DEFAULT_CURRENCY))


def _event_orders(dialect: str, scope: ProfileScope) -> Select[Any]:
    linked = scope.events
    major = func.coalesce(
        _json_number(dialect, E.properties, "revenue"), _json_number(dialect, E.properties, "total")
    )
    currency = _event_currency()
    amount = cast(func.round(func.coalesce(major, 0) * _minor_unit_factor(currency)), BigInteger)
    return (
        select(
            linked.c.profile_id,
            E.message_id.label("ref"),
            E.timestamp.label("at"),
            amount.label("amount_minor"),
            currency.label("currency"),
            E.channel,
            E.store_id,
        )
        .select_from(linked.join(E, E.seq == linked.c.seq))
        .where(E.type == "track", E.event == ORDER_COMPLETED)
    )


def _event_lines(dialect: str, scope: ProfileScope) -> Select[Any]:
    linked = scope.events
    if dialect == "postgresql":
        products = case(
            (func.jsonb_typeof(E.properties["products"]) == "array", E.properties["products"]),
            else_=cast(literal("[]"), JSONB),
        )
        item = func.jsonb_array_elements(products).table_valued("value").lateral("item")
        value = item.c.value

        def text_of(key: str) -> ColumnElement[Any]:
            return value.op("->>")(key)

        is_object = func.jsonb_typeof(value) == "object"
        is_array: ColumnElement[bool] = literal(True)
    else:
        item = (
            func.json_each(E.properties, "$.products").table_valued("value", "type").alias("item")
        )
        value = item.c.value

        def text_of(key: str) -> ColumnElement[Any]:
            return cast(func.json_extract(value, f"$.{key}"), String)

        is_object = item.c.type == "object"
        is_array = func.json_type(E.properties, "$.products") == "array"
    return (
        select(
            linked.c.profile_id,
            E.message_id.label("ref"),
            E.timestamp.label("at"),
            text_of("sku").label("sku"),
            text_of("name").label("name"),
            text_of("category").label("category"),
        )
        .select_from(linked.join(E, E.seq == linked.c.seq).join(item, true()))
        .where(E.type == "track", E.event == ORDER_COMPLETED, is_array, is_object)
    )


def order_amount(properties: Mapping[str, Any]) -> Money | None:
    """The amount of one `Order Completed` event's properties, as the feed reads it in SQL
    (revenue, else total, in `currency`); None when absent or unreadable."""
    major = next(
        (
            properties[key]
            for key in ("revenue", "total")
            if isinstance(properties.get(key), int | float)
            and not isinstance(properties.get(key), bool)
        ),
        None,
    )
    currency = str(properties.get("currency") or DEFAULT_CURRENCY).upper()
    if major is None:
        return None
    try:
        return Money.from_decimal(Decimal(str(major)), currency)
    except (ValueError, ArithmeticError):
        return None


def order_amount_of(amount_minor: int | None, currency: str | None) -> Money | None:
    """A purchase amount read back from a feed, if its currency is a real one."""
    if amount_minor is None or currency not in _currency_codes():
        return None
    return Money(int(amount_minor), currency)


EVENT_PURCHASES = PurchaseFeed("events", _event_orders, _event_lines)
PURCHASE_FEEDS: tuple[PurchaseFeed, ...] = (EVENT_PURCHASES,)


def purchases(
    dialect: str, scope: ProfileScope, feeds: Sequence[PurchaseFeed] = PURCHASE_FEEDS
) -> Subquery:
    """Every purchase of the profiles in scope, from every feed (see `PurchaseFeed.orders`)."""
    return union_all(*(feed.orders(dialect, scope) for feed in feeds)).subquery("purchases")


def purchase_lines(
    dialect: str, scope: ProfileScope, feeds: Sequence[PurchaseFeed] = PURCHASE_FEEDS
) -> Subquery:
    """Every product line of the profiles' purchases (see `PurchaseFeed.lines`)."""
    return union_all(*(feed.lines(dialect, scope) for feed in feeds)).subquery("lines")


# ------------------------------------------------------------------ computation


@dataclass
class _Profile:
    """What the grouped queries say about one profile, assembled in Python."""

    events: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    channels: Counter[str] = field(default_factory=Counter)
    visits: Counter[uuid.UUID] = field(default_factory=Counter)
    store_purchases: Counter[uuid.UUID] = field(default_factory=Counter)
    store_last: dict[uuid.UUID, datetime] = field(default_factory=dict)
    orders: Counter[str] = field(default_factory=Counter)
    unpriced_orders: int = 0  # in a currency that is not ISO 4217: counted, not summed
    revenue: Counter[str] = field(default_factory=Counter)
    last_purchase: tuple[datetime, int | None, str, str, uuid.UUID | None] | None = None
    categories: Counter[str] = field(default_factory=Counter)
    category_last: dict[str, datetime] = field(default_factory=dict)

    def seen(self, at_first: datetime, at_last: datetime) -> None:
        self.first_seen = min(self.first_seen or at_first, at_first)
        self.last_seen = max(self.last_seen or at_last, at_last)

    def at_store(self, store_id: uuid.UUID, at: datetime) -> None:
        self.store_last[store_id] = max(self.store_last.get(store_id, at), at)


def _read_activity(session: Session, scope: ProfileScope, found: dict[uuid.UUID, _Profile]) -> None:
    linked = scope.events
    rows = session.execute(
        select(
            linked.c.profile_id,
            E.channel,
            E.store_id,
            func.count(),
            func.min(E.timestamp),
            func.max(E.timestamp),
        )
        .select_from(linked.join(E, E.seq == linked.c.seq))
        .group_by(linked.c.profile_id, E.channel, E.store_id)
    )
    for profile_id, channel, store_id, events, first, last in rows:
        profile = found[profile_id]
        first, last = _utc(first), _utc(last)
        profile.events += events
        profile.channels[channel] += events
        profile.seen(first, last)
        if store_id is not None:
            profile.visits[store_id] += events
            profile.at_store(store_id, last)


def _read_orders(session: Session, bought: Subquery, found: dict[uuid.UUID, _Profile]) -> None:
    rows = session.execute(
        select(
            bought.c.profile_id,
            bought.c.currency,
            bought.c.channel,
            bought.c.store_id,
            func.count(),
            func.sum(bought.c.amount_minor),
            func.min(bought.c.at),
            func.max(bought.c.at),
        ).group_by(bought.c.profile_id, bought.c.currency, bought.c.channel, bought.c.store_id)
    )
    for profile_id, currency, channel, store_id, orders, amount, first, last in rows:
        profile = found[profile_id]
        first, last = _utc(first), _utc(last)
        if currency in _currency_codes():
            profile.orders[currency] += orders
            profile.revenue[currency] += int(amount or 0)
        else:
            profile.unpriced_orders += orders
        profile.seen(first, last)
        if channel not in profile.channels:
            profile.channels[channel] += 0  # a channel seen only through the orders feed
        if store_id is not None:
            profile.store_purchases[store_id] += orders
            profile.at_store(store_id, last)


def _read_last_purchases(
    session: Session, bought: Subquery, found: dict[uuid.UUID, _Profile]
) -> None:
    rank = (
        func.row_number()
        .over(
            partition_by=bought.c.profile_id,
            order_by=(bought.c.at.desc(), bought.c.ref.desc()),
        )
        .label("rank")
    )
    ranked = select(bought, rank).subquery("ranked")
    rows = session.execute(
        select(
            ranked.c.profile_id,
            ranked.c.at,
            ranked.c.amount_minor,
            ranked.c.currency,
            ranked.c.channel,
            ranked.c.store_id,
        ).where(ranked.c.rank == 1)
    )
    for profile_id, at, amount, currency, channel, store_id in rows:
        cents = int(amount or 0) if currency in _currency_codes() else None
        found[profile_id].last_purchase = (_utc(at), cents, currency, channel, store_id)


def _read_categories(session: Session, lines: Subquery, found: dict[uuid.UUID, _Profile]) -> None:
    rows = session.execute(
        select(lines.c.profile_id, lines.c.category, func.count(), func.max(lines.c.at))
        .where(lines.c.category.is_not(None), lines.c.category != "")
        .group_by(lines.c.profile_id, lines.c.category)
    )
    for profile_id, category, bought, last in rows:
        profile = found[profile_id]
        profile.categories[category] += bought
        profile.category_last[category] = _utc(last)


def _utc(value: Any) -> datetime:
    """Aggregates bypass the column type: SQLite hands back text, PostgreSQL aware times."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _best(counts: Counter[Any], last: dict[Any, datetime]) -> Any:
    """The most frequent key; ties go to the most recent, then to the smallest key."""
    if not counts:
        return None
    return min(counts, key=lambda k: (-counts[k], -last[k].timestamp(), str(k)))


def _row(profile_id: uuid.UUID, profile: _Profile, now: datetime) -> dict[str, Any]:
    orders = sum(profile.orders.values()) + profile.unpriced_orders
    currency = None
    if profile.orders:
        currency = min(profile.orders, key=lambda c: (-profile.orders[c], -profile.revenue[c], c))
    revenue = profile.revenue[currency] if currency else 0
    in_currency = profile.orders[currency] if currency else 0
    store_score = Counter(
        {s: profile.store_purchases[s] * 1_000_000 + profile.visits[s] for s in profile.store_last}
    )
    last = profile.last_purchase
    return {
        "profile_id": profile_id,
        "first_seen_at": profile.first_seen,
        "last_seen_at": profile.last_seen,
        "channels": sorted(profile.channels, key=lambda c: (-profile.channels[c], c)),
        "events_count": profile.events,
        "orders_count": orders,
        "currency": currency,
        "revenue_cents": revenue,
        "average_basket_cents": (revenue + in_currency // 2) // in_currency
        if in_currency
        else None,
        "favourite_category": _best(profile.categories, profile.category_last),
        "preferred_store_id": _best(store_score, profile.store_last),
        "last_purchase_at": last[0] if last else None,
        "last_purchase_cents": last[1] if last else None,
        "last_purchase_currency": last[2] if last and last[1] is not None else None,
        "last_purchase_channel": last[3] if last else None,
        "last_purchase_store_id": last[4] if last else None,
        "recency_score": None,
        "frequency_score": None,
        "monetary_score": None,
        "computed_at": now,
    }


def compute_rows(
    session: Session,
    now: datetime,
    profile_ids: Iterable[uuid.UUID],
    scope: ProfileScope,
    feeds: Sequence[PurchaseFeed] = PURCHASE_FEEDS,
) -> list[dict[str, Any]]:
    """The computed traits of `profile_ids` (without RFM), from events and purchase feeds
    of `scope`; four queries whatever the number of profiles."""
    dialect = session.get_bind().dialect.name
    found: dict[uuid.UUID, _Profile] = defaultdict(_Profile)
    wanted = list(dict.fromkeys(profile_ids))
    _read_activity(session, scope, found)
    bought = purchases(dialect, scope, feeds)
    _read_orders(session, bought, found)
    _read_last_purchases(session, bought, found)
    _read_categories(session, purchase_lines(dialect, scope, feeds), found)
    return [_row(pid, found.get(pid) or _Profile(), now) for pid in wanted]


# ------------------------------------------------------------------ RFM


def quintile(sorted_values: Sequence[Any], value: Any) -> int:
    """1-5: where `value` ranks among `sorted_values` (which include it), ties sharing
    their middle rank, so five distinct values score 1, 2, 3, 4 and 5."""
    below = bisect_left(sorted_values, value)
    equal = bisect_right(sorted_values, value) - below
    share = (below + equal / 2) / len(sorted_values)
    return min(5, 1 + int(share * 5))


def score_rfm(rows: Sequence[dict[str, Any]], others: Sequence[tuple[Any, int, int]] = ()) -> None:
    """Set the RFM scores of the buyers among `rows`, ranked together with `others`
    (last purchase, orders, revenue of buyers not in `rows`). Recency ranks the last
    purchase time, so a more recent buyer scores higher."""
    buyers = [r for r in rows if r["orders_count"] > 0]
    population = [(r["last_purchase_at"], r["orders_count"], r["revenue_cents"]) for r in buyers]
    population.extend(others)
    if not population:
        return
    recency = sorted(_utc(p[0]) for p in population)
    frequency = sorted(p[1] for p in population)
    monetary = sorted(p[2] for p in population)
    for row in buyers:
        row["recency_score"] = quintile(recency, row["last_purchase_at"])
        row["frequency_score"] = quintile(frequency, row["orders_count"])
        row["monetary_score"] = quintile(monetary, row["revenue_cents"])


# ------------------------------------------------------------------ refreshes


def refresh_all(
    session: Session, now: datetime, feeds: Sequence[PurchaseFeed] = PURCHASE_FEEDS
) -> int:
    """Recompute every profile's traits and RFM scores, from the whole log (identity
    catches up first); how many profiles."""
    identity_log.resolve_logged_events(session, now)
    profile_ids = list(session.scalars(select(Customer.id)))
    rows = compute_rows(session, now, profile_ids, materialised_scope(session), feeds)
    drop_materialised(session)
    score_rfm(rows)
    session.execute(delete(ComputedTraits))
    if rows:
        session.execute(bulk_insert(ComputedTraits), rows)
    return len(rows)


def refresh_profiles(
    session: Session,
    now: datetime,
    profile_ids: Iterable[uuid.UUID],
    feeds: Sequence[PurchaseFeed] = PURCHASE_FEEDS,
) -> int:
    """Recompute the traits of some profiles (after their events, an identify, a merge);
    their RFM scores rank them among every other buyer as last computed."""
    wanted = list(session.scalars(select(Customer.id).where(Customer.id.in_(set(profile_ids)))))
    if not wanted:
        return 0
    rows = compute_rows(session, now, wanted, scope_of(wanted), feeds)
    others = session.execute(
        select(
            ComputedTraits.last_purchase_at,
            ComputedTraits.orders_count,
            ComputedTraits.revenue_cents,
        ).where(ComputedTraits.orders_count > 0, ComputedTraits.profile_id.not_in(wanted))
    ).all()
    score_rfm(rows, [(o[0], int(o[1]), int(o[2])) for o in others])
    session.execute(delete(ComputedTraits).where(ComputedTraits.profile_id.in_(wanted)))
    session.execute(bulk_insert(ComputedTraits), rows)
    return len(rows)


def computed_traits(session: Session, profile_id: uuid.UUID) -> ComputedTraits | None:
    """The stored computed traits of a profile (None before its first refresh)."""
    return session.get(ComputedTraits, profile_id)


# ------------------------------------------------------------------ periodic jobs


def _events_cursor(session: Session, now: datetime) -> ConsumerCursor:
    return locked_cursor(session, EVENTS_CURSOR, now)


def touched_profiles(session: Session, after: int, up_to: int) -> list[uuid.UUID]:
    """Profiles with an event in the log between positions `after` (excluded) and `up_to`.

    The identifiers are looked up from the window's events (`value IN (...)`), so the
    query reads the few new events then the identifier index, never every identifier
    (SQLite otherwise drove the join from identity_identifiers: ~10 ms at 5k profiles).
    """
    rows = flushed_connection(session).execute(_touched(), {"after": after, "up_to": up_to})
    return list(rows.scalars())


@cache
def _touched() -> CompoundSelect[Any]:
    """Built once: the incremental passes run it every second."""
    window = and_(E.seq > bindparam("after"), E.seq <= bindparam("up_to"))
    ident = IdentityIdentifier
    by_user = select(ident.profile_id).where(
        ident.kind == "user_id", ident.value.in_(select(E.user_id).where(window))
    )
    by_anonymous = select(ident.profile_id).where(
        ident.kind == "anonymous_id", ident.value.in_(select(E.anonymous_id).where(window))
    )
    return union(by_user, by_anonymous)


def refresh_recent(db: Database, clock: Clock) -> int:
    """Refresh the profiles whose events arrived since the last run; how many."""
    with db.transaction() as session:
        now = clock.now()
        cursor = _events_cursor(session, now)
        head = identity_log.resolve_logged_events(session, now)
        if head <= cursor.position:
            return 0
        touched = touched_profiles(session, cursor.position, head)
        for start in range(0, len(touched), REFRESH_CHUNK):
            refresh_profiles(session, now, touched[start : start + REFRESH_CHUNK])
        cursor.position = head
        cursor.updated_at = now
        return len(touched)


def refresh_everyone(db: Database, clock: Clock) -> int:
    """The full refresh: every profile, and RFM quintiles re-ranked; how many profiles."""
    with db.transaction() as session:
        now = clock.now()
        cursor = _events_cursor(session, now)
        cursor.position = identity_log.resolve_logged_events(session, now)
        cursor.updated_at = now
        return refresh_all(session, now)


def periodic_jobs() -> list[PeriodicJob]:
    """Fresh jobs (each worker keeps its own schedule): recent profiles every minute,
    everyone every six hours (recency moves with time, quintiles with everyone)."""
    return [
        PeriodicJob("customers.profiles.refresh_recent", 60.0, refresh_recent),
        PeriodicJob("customers.profiles.refresh_all", 6 * 3600.0, refresh_everyone),
    ]
