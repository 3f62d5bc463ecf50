"""What the customers context publishes to analytics: the event log with each event's
profile resolved, and the profiles' few descriptive fields.

Selects only, in portable types (ids as text, UTC timestamps without a zone, money in
cents): analytics runs them on the live database or exports them to Parquet.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, Select, String, and_, cast, extract, func, literal
from sqlalchemy import select as sql_select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from parcours import stores
from parcours.core.facts import id_text, utc_timestamp
from parcours.customers.models import Customer, IdentityIdentifier
from parcours.customers.models import TrackedEvent as E
from parcours.customers.profile_traits import _json_number


def _text(dialect: str, column: Any, *path: str) -> ColumnElement[Any]:
    """The text at a JSON path (NULL when absent), whatever the JSON type there."""
    if dialect == "postgresql":
        return func.jsonb_extract_path_text(column, *path)
    return cast(func.json_extract(column, "$." + ".".join(path)), String)


def profile_keys() -> Select[Any]:
    """(customer_id, profile) for every profile id ever made: the live profile each one
    stands for now, merges followed (a recursive walk down from the live profiles)."""
    walk = (
        sql_select(Customer.id.label("customer_id"), Customer.id.label("live_id"))
        .where(Customer.merged_into_id.is_(None))
        .cte("profile_walk", recursive=True)
    )
    absorbed = aliased(Customer)
    walk = walk.union_all(
        sql_select(absorbed.id, walk.c.live_id).join(
            walk, absorbed.merged_into_id == walk.c.customer_id
        )
    )
    return sql_select(walk.c.customer_id, id_text(walk.c.live_id).label("profile"))


def event_facts(
    dialect: str, *, after_seq: int | None = None, up_to_seq: int | None = None
) -> Select[Any]:
    """The `events` fact: one row per logged event (columns in analytics/facts.py).

    `profile` is the profile of the event's user id, else of its anonymous id (NULL for a
    visitor never identified); `revenue` is `properties.revenue` (else `total`) in cents
    when it is a number; `device` is `context.device.type`, else the channel. With
    `after_seq` / `up_to_seq`, only events logged after / up to those positions
    (incremental exports).
    """
    by_user = aliased(IdentityIdentifier)
    by_anonymous = aliased(IdentityIdentifier)
    codes = stores.store_codes().subquery("event_stores")
    major = func.coalesce(
        _json_number(dialect, E.properties, "revenue"), _json_number(dialect, E.properties, "total")
    )
    stmt = (
        sql_select(
            cast(E.seq, BigInteger).label("seq"),
            E.type.label("type"),
            E.event.label("event"),
            E.channel.label("channel"),
            codes.c.code.label("store"),
            id_text(func.coalesce(by_user.profile_id, by_anonymous.profile_id)).label("profile"),
            E.anonymous_id.label("anonymous_id"),
            utc_timestamp(E.timestamp, dialect).label("timestamp"),
            func.coalesce(
                _text(dialect, E.properties, "sku"), _text(dialect, E.properties, "product_id")
            ).label("sku"),
            _text(dialect, E.properties, "category").label("category"),
            _text(dialect, E.properties, "order_id").label("order_id"),
            cast(func.round(major * 100), BigInteger).label("revenue"),
            func.coalesce(_text(dialect, E.context, "device", "type"), E.channel).label("device"),
        )
        .select_from(E)
        .outerjoin(by_user, and_(by_user.kind == "user_id", by_user.value == E.user_id))
        .outerjoin(
            by_anonymous,
            and_(by_anonymous.kind == "anonymous_id", by_anonymous.value == E.anonymous_id),
        )
        .outerjoin(codes, codes.c.store_id == E.store_id)
    )
    if after_seq is not None:
        stmt = stmt.where(E.seq > after_seq)
    if up_to_seq is not None:
        stmt = stmt.where(E.seq <= up_to_seq)
    return stmt


def customer_facts(dialect: str) -> Select[Any]:
    """The `customers` fact: one row per live profile (erased ones keep only their key).

    `gender` is not recorded on profiles yet: always NULL, kept for breakdowns to come.
    """
    return sql_select(
        id_text(Customer.id).label("customer"),
        utc_timestamp(Customer.created_at, dialect).label("created_at"),
        cast(extract("year", Customer.birth_date), Integer).label("birth_year"),
        Customer.postcode.label("postcode"),
        Customer.city.label("city"),
        cast(literal(None), String).label("gender"),
    ).where(Customer.merged_into_id.is_(None))
