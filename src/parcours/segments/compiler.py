"""A segment definition becomes ONE boolean expression over a live profile: set-based,
parametrised, the same answer on SQLite and PostgreSQL. `members` wraps one tree in a
select of profile ids; `columns` puts many trees side by side in ONE select (a 0/1
column per segment), which is how the refreshes evaluate a whole dependency level.

The select reads the live profiles (`customers.audience_profiles`) and keeps those for
which the tree's boolean expression holds; conditions on events, orders, consents and
other segments become `profile_id IN (grouped subquery)` (or `NOT IN` when the condition
also holds for a profile with nothing, such as "at most 2 orders"). Restricted to some
profile ids, every subquery is restricted too, so an incremental re-evaluation reads only
their rows. Over a materialised `customers.AudienceScope`, the subqueries read its
temporary tables (profile ↔ event links, merge walk) instead of recomputing them.

Every value that depends on the time of evaluation (windows, ages, birthdays, consent
decisions) is a named bound parameter recorded in `timed`: a compiled select can be run
again later with `params(now)`, which the incremental pass does with its cached plans.
"""

from __future__ import annotations

import json
import operator as op
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Float,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.expression import Subquery
from sqlalchemy.types import TypeEngine

from parcours import customers, orders, stores
from parcours.core.db import UTCDateTime
from parcours.core.errors import InvalidInput
from parcours.core.geo import GeoPoint, haversine_km
from parcours.segments import definition as d
from parcours.segments.models import SegmentMember

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": op.eq,
    "ne": op.ne,
    "lt": op.lt,
    "lte": op.le,
    "gt": op.gt,
    "gte": op.ge,
}


@dataclass
class Compiler:
    """Compiles trees against one session (store codes, segment keys) at time `now`."""

    session: Session
    now: datetime
    segment_ids: Mapping[str, uuid.UUID]
    # the evaluated profile ids, or bound parameters standing for them (a cached plan)
    profile_ids: Sequence[Any] | None = None
    scope: customers.AudienceScope | None = None
    # name of each time-dependent bound parameter -> its value at a given `now`
    timed: dict[str, Callable[[datetime], Any]] = field(default_factory=dict)
    # the merge walk of `profile_ids`, one CTE shared by every order and consent condition
    _walk: Select[Any] | None = field(default=None, init=False, repr=False)
    # the events of `profile_ids`, one CTE shared by every event condition
    _events: CTE | None = field(default=None, init=False, repr=False)

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def audience(self) -> Subquery:
        """The live profiles evaluated (`p`): all, `profile_ids` or the scope's."""
        return customers.audience_profiles(self.profile_ids, scope=self.scope).subquery("p")

    def members(self, node: d.Node) -> Select[Any]:
        """The select of the profile ids the tree keeps (among `profile_ids` if given)."""
        profiles = self.audience()
        return select(profiles.c.profile_id).where(self.expression(node, profiles))

    def flag(self, node: d.Node, p: Subquery, label: str) -> ColumnElement[int]:
        """A 0/1 column over `p`: 1 when the tree keeps the profile."""
        return case((self.expression(node, p), 1), else_=0).label(label)

    def columns(self, nodes: Sequence[d.Node]) -> Select[Any]:
        """ONE select of (profile_id, s0, s1, ...): a row per live profile (of the scope),
        column `s<i>` 1 when tree `i` keeps it, else 0."""
        profiles = self.audience()
        flags = [self.flag(node, profiles, f"s{i}") for i, node in enumerate(nodes)]
        return select(profiles.c.profile_id, *flags)

    def _profile_events(self) -> CTE:
        """The events of the few profiles evaluated (`profile_ids`), read once per
        statement whatever the number of event conditions: PostgreSQL, with statistics,
        otherwise started each condition from every event of its time window (~5 ms a
        condition for one profile)."""
        if self._events is None:
            self._events = (
                customers.profile_events(self.profile_ids)
                .cte("profile_events")
                .prefix_with("MATERIALIZED", dialect="postgresql")
            )
        return self._events

    def walk(self) -> Select[Any]:
        """(customer_id, profile_id) of the evaluated profiles' merge walk, built once."""
        if self._walk is None:
            self._walk = customers.live_profile_of(self.profile_ids)
        return self._walk

    def params(self, now: datetime) -> dict[str, Any]:
        """The time-dependent parameters' values at `now`, to run a select again later."""
        return {name: value(now) for name, value in self.timed.items()}

    def _at(self, value: Callable[[datetime], Any], type_: TypeEngine[Any]) -> BindParameter[Any]:
        """A bound parameter computed from the evaluation time (recorded in `timed`)."""
        name = f"t{len(self.timed)}"
        self.timed[name] = value
        return bindparam(name, value(self.now), type_=type_)

    # -------------------------------------------------------------- tree

    def expression(self, node: d.Node, p: Subquery) -> ColumnElement[bool]:
        if isinstance(node, d.Group):
            parts = [self.expression(child, p) for child in node.children]
            if node.combinator == "not":
                return not_(parts[0])
            return and_(*parts) if node.combinator == "all" else or_(*parts)
        compile_condition = getattr(self, f"_{type(node).__name__.lower()}")
        result: ColumnElement[bool] = compile_condition(node, p)
        return result

    # -------------------------------------------------------------- traits

    def _trait(self, c: d.Trait, p: Subquery) -> ColumnElement[bool]:
        if c.field == "age":
            return self._age(c, p.c.birth_date)
        column = p.c.preferred_store_id if c.field == "preferred_store" else p.c[c.field]
        value = c.value
        if c.field == "preferred_store" and c.operator not in ("exists", "not_exists"):
            value = self._store_ids(value if isinstance(value, tuple) else (value,))
            if c.operator in ("eq", "ne"):
                value = value[0] if value else None
        if c.type == "list":
            return self._list(c.operator, column, value)
        return self._compare(c.operator, column, value, c.type)

    def _compare(self, name: str, column: Any, value: Any, kind: str) -> ColumnElement[bool]:
        known = column.is_not(None)
        if name == "exists":
            return known  # type: ignore[no-any-return]
        if name == "not_exists":
            return column.is_(None)  # type: ignore[no-any-return]
        if name in ("eq", "lt", "lte", "gt", "gte") or (name == "ne" and value is None):
            if value is None:  # an unknown store code: nobody
                return false()
            return and_(known, _COMPARE[name](column, value))
        if name == "ne":
            return or_(column.is_(None), column != value)
        if name == "in":
            return and_(known, column.in_(list(value))) if value else false()
        if name == "not_in":
            return or_(column.is_(None), column.not_in(list(value))) if value else true()
        if name in ("before", "after"):
            return and_(known, column < value if name == "before" else column > value)
        if name == "between":
            return and_(known, column >= value[0], column <= value[1])
        if name == "within_last_days":
            return and_(known, column >= self._at(_days_before(value), column.type))
        if name == "more_than_days_ago":
            return and_(known, column < self._at(_days_before(value), column.type))
        if name == "birthday_in_days":
            # one parameter per day (a cached statement's IN list keeps its length)
            size = min(value + 1, 366) + 1
            days = [self._at(_birthday_slot(value, size, i), String()) for i in range(size)]
            return and_(known, self._month_day(column).in_(days))
        if name == "contains":
            return and_(known, self._position(column, value) > 0)
        if name == "starts_with":
            return and_(known, func.substr(column, 1, len(value)) == value)
        raise AssertionError(f"operator {name} of {kind}")  # the parser refuses it

    def _list(self, name: str, column: Any, value: Any) -> ColumnElement[bool]:
        text = cast(column, String)
        if name in ("exists", "not_exists"):
            filled = and_(column.is_not(None), func.length(text) > 2)
            return filled if name == "exists" else not_(filled)
        found = and_(column.is_not(None), self._position(text, json.dumps(value)) > 0)
        return found if name == "contains" else not_(found)

    def _position(self, column: Any, needle: str) -> ColumnElement[int]:
        if self.dialect == "postgresql":
            return func.strpos(column, needle)
        return func.instr(column, needle)

    def _month_day(self, column: Any) -> ColumnElement[str]:
        if self.dialect == "postgresql":
            return func.to_char(column, "MM-DD")
        return func.strftime("%m-%d", column)

    def _age(self, c: d.Trait, birth: Any) -> ColumnElement[bool]:
        """Age in whole years today (UTC) as bounds on the birth date."""
        if c.operator in ("exists", "not_exists"):
            return self._compare(c.operator, birth, None, "date")
        low, high = _age_bounds(c.operator, c.value)
        parts = [birth.is_not(None)]
        if low is not None:  # age >= low: born on or before today - low years
            parts.append(birth <= self._at(_born_years_before(low), birth.type))
        if high is not None:  # age <= high: born after today - (high + 1) years
            parts.append(birth > self._at(_born_years_before(high + 1), birth.type))
        return and_(*parts)

    def _store_ids(self, codes: Sequence[str]) -> list[uuid.UUID]:
        found = stores.store_ids_by_code(self.session, codes)
        return [found[code] for code in codes if code in found]

    # -------------------------------------------------------------- events

    def _event(self, c: d.Event, p: Subquery) -> ColumnElement[bool]:
        events: Any
        if self.scope is not None:
            events = customers.scoped_events(self.scope).subquery("ev")
        elif self.profile_ids is not None:
            events = self._profile_events()
        else:
            events = customers.profile_events(None).subquery("ev")
        filters = [func.coalesce(events.c.event, events.c.type) == c.name]
        if c.within_days is not None:
            since = self._at(_days_before(c.within_days), events.c.timestamp.type)
            filters.append(events.c.timestamp >= since)
        if c.channel is not None:
            filters.append(events.c.channel == c.channel)
        filters.extend(self._property(f, events.c.properties) for f in c.where)
        counted = func.count()
        compare = op.ge if c.operator == "at_least" else op.le
        return self._per_profile(
            p,
            select(events.c.profile_id).where(*filters).group_by(events.c.profile_id),
            counted,
            lambda metric: compare(metric, c.count),
            holds_for_nothing=compare(0, c.count),
        )

    def _per_profile(
        self,
        p: Subquery,
        grouped: Select[Any],
        metric: Any,
        test: Callable[[Any], Any],
        holds_for_nothing: bool,
    ) -> ColumnElement[bool]:
        """`test(metric)` per profile over `grouped`, a profile without rows counting as
        zero: IN the profiles passing it, or NOT IN those failing it when zero passes."""
        if holds_for_nothing:
            return p.c.profile_id.not_in(grouped.having(not_(test(metric))))
        return p.c.profile_id.in_(grouped.having(test(metric)))

    def _property(self, f: d.PropertyFilter, properties: Any) -> ColumnElement[bool]:
        parts = f.property.split(".")
        numeric = isinstance(f.value, int | float) or (
            isinstance(f.value, tuple) and all(isinstance(v, int | float) for v in f.value)
        )
        value = (
            self._json_number(properties, parts) if numeric else self._json_text(properties, parts)
        )
        if f.operator in ("exists", "not_exists"):
            value = self._json_text(properties, parts)
        return self._compare(f.operator, value, f.value, "number" if numeric else "text")

    def _json_text(self, column: Any, parts: list[str]) -> ColumnElement[Any]:
        if self.dialect == "postgresql":
            return func.jsonb_extract_path_text(column, *parts)
        return cast(func.json_extract(column, "$." + ".".join(parts)), String)

    def _json_number(self, column: Any, parts: list[str]) -> ColumnElement[Any]:
        if self.dialect == "postgresql":
            found = func.jsonb_extract_path(column, *parts)
            text = func.jsonb_extract_path_text(column, *parts)
            return case((func.jsonb_typeof(found) == "number", cast(text, Float)))
        path = "$." + ".".join(parts)
        return case(
            (
                func.json_type(column, path).in_(("integer", "real")),
                func.json_extract(column, path),
            )
        )

    # -------------------------------------------------------------- orders

    def _order(self, c: d.Order, p: Subquery) -> ColumnElement[bool]:
        owners: Any = (
            self.scope.owners.alias("owners")
            if self.scope is not None
            else self.walk().subquery("owners")
        )
        if c.category is not None:
            rows = orders.customer_order_lines().subquery("bought")
            amount = rows.c.line_total
        else:
            rows = orders.customer_orders().subquery("bought")
            amount = rows.c.total
        filters: list[ColumnElement[bool]] = []
        if c.category is not None:
            filters.append(rows.c.category == c.category)
        if c.within_days is not None:
            since = self._at(_days_before(c.within_days), rows.c.placed_at.type)
            filters.append(rows.c.placed_at >= since)
        if c.channel is not None:
            filters.append(rows.c.channel == c.channel)
        if c.store is not None:
            filters.append(rows.c.store_id.in_(self._store_ids([c.store])))
        if c.min_amount_cents is not None:
            filters.append(amount >= c.min_amount_cents)
        grouped = (
            select(owners.c.profile_id)
            .join(rows, rows.c.customer_id == owners.c.customer_id)
            .where(*filters)
            .group_by(owners.c.profile_id)
        )
        metric = func.count(rows.c.order_id.distinct()) if c.field == "count" else func.sum(amount)

        def test(value: Any) -> Any:
            if c.operator == "between":
                return and_(value >= c.value[0], value <= c.value[1])
            return _COMPARE[c.operator](value, c.value)

        if c.operator == "between":
            zero = c.value[0] <= 0 <= c.value[1]
        else:
            zero = bool(_COMPARE[c.operator](0, c.value))
        return self._per_profile(p, grouped, metric, test, zero)

    # -------------------------------------------------------------- rfm, geo, consent

    def _rfm(self, c: d.Rfm, p: Subquery) -> ColumnElement[bool]:
        parts = []
        for column, scores in (
            (p.c.recency_score, c.recency),
            (p.c.frequency_score, c.frequency),
            (p.c.monetary_score, c.monetary),
        ):
            if scores and scores != (1, 2, 3, 4, 5):
                parts.append(column.in_(list(scores)))
            else:
                parts.append(column.is_not(None))
        return and_(*parts)

    def _geo(self, c: d.Geo, p: Subquery) -> ColumnElement[bool]:
        center = self._center(c)
        return located_within(p.c.postcode, p.c.city, center, c.radius_km)

    def _center(self, c: d.Geo) -> GeoPoint:
        if c.store is None:
            assert c.lat is not None
            assert c.lon is not None
            return GeoPoint(c.lat, c.lon)
        store = stores.get_store_by_code(self.session, c.store)
        if store.lat is None or store.lon is None:
            raise InvalidInput(f"The store {c.store} has no coordinates: give a point instead.")
        return GeoPoint(store.lat, store.lon)

    def _consent(self, c: d.Consent, p: Subquery) -> ColumnElement[bool]:
        now = self._at(lambda now: now, UTCDateTime())
        granted = customers.granted_consents(
            c.purpose,
            c.channel,
            now,
            self.profile_ids,
            scope=self.scope,
            owners=self.walk() if self.scope is None else None,
        )
        return p.c.profile_id.in_(granted)

    def _segmentref(self, c: d.SegmentRef, p: Subquery) -> ColumnElement[bool]:
        segment_id = self.segment_ids.get(c.key)
        if segment_id is None:
            return false()
        # a primary-key lookup per evaluated profile, however large the used segment
        return exists().where(
            SegmentMember.segment_id == segment_id, SegmentMember.profile_id == p.c.profile_id
        )


# ------------------------------------------------------------------ helpers


def _days_before(days: int) -> Callable[[datetime], datetime]:
    return lambda now: now - timedelta(days=days)


def _born_years_before(years: int) -> Callable[[datetime], date]:
    return lambda now: _years_before(now.date(), years)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def _age_bounds(name: str, value: Any) -> tuple[int | None, int | None]:
    """(min age, max age) in whole years, both included, for an age comparison."""
    if name == "between":
        return int(value[0]), int(value[1])
    n = int(value)
    bounds: dict[str, tuple[int | None, int | None]] = {
        "eq": (n, n),
        "gte": (n, None),
        "gt": (n + 1, None),
        "lte": (None, n),
        "lt": (None, n - 1),
    }
    return bounds[name]


def birthdays(today: date, days: int) -> list[str]:
    """The "MM-DD" of the next `days` days from `today` (included); 29 February birthdays
    fall on the 28th in other years."""
    found = {(today + timedelta(days=i)).strftime("%m-%d") for i in range(days + 1)}
    if "02-28" in found and not _leap(today.year if today.month <= 2 else today.year + 1):
        found.add("02-29")
    return sorted(found)


def _birthday_slot(days: int, size: int, i: int) -> Callable[[datetime], str]:
    return lambda now: _birthday_slots(now.date(), days, size)[i]


@lru_cache(maxsize=64)
def _birthday_slots(today: date, days: int, size: int) -> tuple[str, ...]:
    """`birthdays(today, days)` padded to `size` values (the last one repeated)."""
    found = birthdays(today, days)
    return tuple(found + [found[-1]] * (size - len(found)))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def located_within(
    postcode: Any, city: Any, center: GeoPoint, radius_km: float
) -> ColumnElement[bool]:
    """Profiles whose place lies within `radius_km` of `center`.

    A profile is where its postcode is (the city of that exact postcode, else the largest
    city of its department, as `stores.city_for_postcode` says), else where its city is.
    The few French cities shipped with the package are checked in Python; the answer is
    a portable predicate over postcode and city, so the select stays set-based.
    """
    cities = stores.french_cities()
    near = [c for c in cities if haversine_km(center, c.point) <= radius_km]
    exact = {c.postcode for c in cities}
    largest: dict[str, Any] = {}
    for c in cities:  # largest first
        largest.setdefault(_department(c.postcode), c)
    near_departments = [dep for dep, c in largest.items() if c in near]
    near_names = sorted({variant for c in near for variant in _name_variants(c.name)})
    department = case(
        (func.substr(postcode, 1, 2) == "97", func.substr(postcode, 1, 3)),
        else_=func.substr(postcode, 1, 2),
    )
    valid = and_(postcode.is_not(None), func.length(postcode) == 5)
    by_postcode = or_(
        postcode.in_(_listed(sorted({c.postcode for c in near}) or [""])),
        and_(
            postcode.not_in(_listed(sorted(exact))),
            department.in_(_listed(near_departments or [""])),
        ),
    )
    by_city = and_(city.is_not(None), func.lower(city).in_(_listed(near_names or [""])))
    return or_(and_(valid, by_postcode), and_(not_(valid), by_city))


def _listed(values: Sequence[Any]) -> list[BindParameter[Any]]:
    """An IN list as one bound parameter per value, rendered once when the statement is
    compiled: an expanding parameter is rendered again at every execution (~7 ms for the
    geo lists of a 50-segment statement, every incremental pass)."""
    return [bindparam(None, value, unique=True) for value in values]


def _department(postcode: str) -> str:
    return postcode[:3] if postcode.startswith("97") else postcode[:2]


def _name_variants(name: str) -> set[str]:
    """The spellings `lower(city)` may give for a city: PostgreSQL lowers accented
    capitals, SQLite only ASCII ones; with or without accents and hyphens."""
    folded = " ".join(
        re.sub(
            r"[^a-z0-9]+",
            " ",
            unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower(),
        ).split()
    )
    lower = name.lower()
    ascii_lower = "".join(ch.lower() if ch.isascii() else ch for ch in name)
    spellings = {lower, ascii_lower, folded, folded.replace(" ", "-")}
    return spellings | {s.replace("-", " ") for s in spellings}
