"""Segment definitions: the JSON a marketer writes, checked into a tree of conditions.

A definition is a node: `{"all": [node, ...]}`, `{"any": [node, ...]}`, `{"not": node}`
or a condition `{"kind": ..., ...}` (trait, event, order, rfm, geo, consent, segment;
docs/segments.md lists their keys). Every mistake is reported at once, each with the
JSON pointer of the part at fault and, for a name that is not known, the valid ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from parcours.core.errors import FieldError, Refused, refusal

# Trait fields and their types: profile fields first, then computed traits.
PROFILE_TRAITS: dict[str, str] = {
    "email": "text",
    "phone": "text",
    "postcode": "text",
    "city": "text",
    "country": "text",
    "locale": "text",
    "birth_date": "date",
    "age": "number",
    "created_at": "time",
}
COMPUTED_TRAITS: dict[str, str] = {
    "first_seen_at": "time",
    "last_seen_at": "time",
    "channels": "list",
    "events_count": "number",
    "orders_count": "number",
    "currency": "text",
    "revenue_cents": "number",
    "average_basket_cents": "number",
    "favourite_category": "text",
    "preferred_store": "text",
    "last_purchase_at": "time",
    "recency_score": "number",
    "frequency_score": "number",
    "monetary_score": "number",
}
TRAITS: dict[str, str] = {**PROFILE_TRAITS, **COMPUTED_TRAITS}

_PRESENCE = ("exists", "not_exists")
OPERATORS: dict[str, tuple[str, ...]] = {
    "text": ("eq", "ne", "in", "not_in", "contains", "starts_with", *_PRESENCE),
    "number": ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", *_PRESENCE),
    "time": ("before", "after", "between", "within_last_days", "more_than_days_ago", *_PRESENCE),
    "date": ("before", "after", "between", "birthday_in_days", *_PRESENCE),
    "list": ("contains", "not_contains", *_PRESENCE),
}
# Traits narrower than their type: a store is named by its code, an age in whole years.
TRAIT_OPERATORS: dict[str, tuple[str, ...]] = {
    "preferred_store": ("eq", "ne", "in", "not_in", *_PRESENCE),
    "age": ("eq", "lt", "lte", "gt", "gte", "between", *_PRESENCE),
}
PROPERTY_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "exists", "not_exists")
EVENT_OPERATORS = ("at_least", "at_most", "did", "did_not")
ORDER_FIELDS = ("count", "total_cents")
ORDER_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "between")

# Named RFM segments on the recency (R) and frequency (F) quintiles: the classic R x F
# grid, every cell in exactly one segment.
RFM_SEGMENTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "champions": ((4, 5), (4, 5)),
    "loyal": ((3,), (4, 5)),
    "potential_loyalists": ((4, 5), (2, 3)),
    "new_customers": ((5,), (1,)),
    "promising": ((4,), (1,)),
    "need_attention": ((3,), (3,)),
    "about_to_sleep": ((3,), (1, 2)),
    "at_risk": ((1, 2), (3, 4)),
    "cant_lose_them": ((1, 2), (5,)),
    "hibernating": ((1, 2), (1, 2)),
}
KINDS = ("trait", "event", "order", "rfm", "geo", "consent", "segment")
COMBINATORS = ("all", "any", "not")
MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_DAYS = 3660
MAX_RADIUS_KM = 1000.0
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PROPERTY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}(\.[A-Za-z_$][A-Za-z0-9_$]{0,63}){0,3}$")
CONSENT_PURPOSES = ("marketing", "analytics", "personalisation", "profiling")
CONSENT_CHANNELS = ("email", "sms", "push", "phone", "post")

# The mistakes a definition can hold: English msgids with `%(name)s` values, so the API
# says them in English and the console in the reader's language (docs/segments.md).
NOT_VALID = "The segment definition is not valid; each mistake is listed with its place."
NOT_AN_OBJECT = "must be an object: a condition with a `kind`, or all/any/not"
TOO_DEEP = "nests too deep: at most %(max)s levels"
NEEDS_KIND = "needs `kind` (one of %(kinds)s) or one of all, any, not; found %(found)s"
TOO_MANY = "too many conditions: at most %(max)s"
ONE_COMBINATOR = "a group holds exactly one of all, any, not; found %(found)s"
EMPTY_GROUP = "must be a non-empty list of conditions"
UNKNOWN_KEY = "unknown key %(key)s for a %(kind)s condition; valid keys: %(valid)s"
MISSING_CHOICE = "missing: use one of %(valid)s"
BAD_CHOICE = "%(value)s is not valid; use one of %(valid)s"
NOT_WHOLE = "must be a whole number from %(low)s to %(high)s"
NOT_TEXT = "must be a non-empty text of at most 200 characters"
UNKNOWN_KIND = "unknown kind %(kind)s; use one of %(valid)s"
UNKNOWN_TRAIT = "unknown trait %(name)s; profile traits: %(profile)s; computed traits: %(computed)s"
WRONG_OPERATOR = "operator %(operator)s does not apply to %(name)s (%(type)s); use one of %(valid)s"
NOT_BOUNDS = "between takes a list of two bounds, [low, high] (both included)"
BOUNDS_REVERSED = "the low bound is above the high one"
NOT_A_LIST = "%(operator)s takes a non-empty list (at most 1000 values)"
NOT_DAYS = "must be a number of days from 0 to %(max)s"
NOT_A_NUMBER = "must be a number"
NOT_A_DATE = "must be an ISO 8601 date, such as 2026-03-01"
NOT_A_TIME = "must be an ISO 8601 time, such as 2026-03-01T00:00:00Z"
TAKES_NO_VALUE = "%(operator)s takes no value"
NOT_FILTERS = "must be a list of property filters (at most 20)"
NOT_A_FILTER = "must be an object {property, operator, value}"
NOT_A_PROPERTY = "must be a property name such as category"
MIXED_LIST = "the list holds texts only or numbers only"
NOT_TEXT_OR_NUMBER = "must be a text or a number"
RFM_EMPTY = "give a named `segment` or at least one of recency, frequency, monetary"
NOT_SCORES = "must be a score range [low, high] within 1-5, such as [4, 5]"
NOT_RADIUS = "must be a distance in km above 0, at most %(max)s"
STORE_AND_POINT = "give either a store code or a point (lat, lon), not both"
NOT_LATITUDE = "must be a latitude from -90 to 90 (or give a store code)"
NOT_LONGITUDE = "must be a longitude from -180 to 180 (or give a store code)"
NOT_A_SEGMENT_KEY = "must be the key of another segment"
NOT_A_DEFINITION = "is not a valid definition"
NOT_A_KEY = "must be 1-64 lower-case letters, digits, - or _, starting with a letter or digit"
MESSAGES = (
    NOT_VALID, NOT_AN_OBJECT, TOO_DEEP, NEEDS_KIND, TOO_MANY, ONE_COMBINATOR, EMPTY_GROUP,
    UNKNOWN_KEY, MISSING_CHOICE, BAD_CHOICE, NOT_WHOLE, NOT_TEXT, UNKNOWN_KIND, UNKNOWN_TRAIT,
    WRONG_OPERATOR, NOT_BOUNDS, BOUNDS_REVERSED, NOT_A_LIST, NOT_DAYS, NOT_A_NUMBER, NOT_A_DATE,
    NOT_A_TIME, TAKES_NO_VALUE, NOT_FILTERS, NOT_A_FILTER, NOT_A_PROPERTY, MIXED_LIST,
    NOT_TEXT_OR_NUMBER, RFM_EMPTY, NOT_SCORES, NOT_RADIUS, STORE_AND_POINT, NOT_LATITUDE,
    NOT_LONGITUDE, NOT_A_SEGMENT_KEY, NOT_A_DEFINITION, NOT_A_KEY,
)  # fmt: skip


# ------------------------------------------------------------------ the tree


@dataclass(frozen=True)
class Trait:
    field: str
    type: str
    operator: str
    value: Any = None


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    operator: str
    value: Any = None


@dataclass(frozen=True)
class Event:
    name: str
    operator: str
    count: int
    within_days: int | None = None
    channel: str | None = None
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class Order:
    field: str
    operator: str
    value: Any
    within_days: int | None = None
    channel: str | None = None
    category: str | None = None
    store: str | None = None
    min_amount_cents: int | None = None


@dataclass(frozen=True)
class Rfm:
    recency: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary: tuple[int, ...]


@dataclass(frozen=True)
class Geo:
    radius_km: float
    store: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Consent:
    purpose: str
    channel: str


@dataclass(frozen=True)
class SegmentRef:
    key: str


@dataclass(frozen=True)
class Group:
    """`all` (AND), `any` (OR) of its children, or `not` of its only child."""

    combinator: str
    children: tuple[Node, ...] = field(default_factory=tuple)


Condition = Trait | Event | Order | Rfm | Geo | Consent | SegmentRef
Node = Group | Condition


def walk(node: Node) -> Iterator[Condition]:
    """Every condition of a tree, depth first."""
    if isinstance(node, Group):
        for child in node.children:
            yield from walk(child)
    else:
        yield node


@dataclass(frozen=True)
class Dependencies:
    """What a segment's membership depends on, for the incremental refresh: event names
    (None: any event), whether orders, profile fields/traits/consents or time do, and the
    segments it uses."""

    event_names: frozenset[str] | None
    orders: bool
    profile: bool
    windowed: bool
    segments: frozenset[str]

    def touched_by_events(self, names: set[str]) -> bool:
        if self.orders and names:
            return True
        if self.event_names is None:
            return bool(names)
        return bool(self.event_names & names)


def dependencies(node: Node) -> Dependencies:
    conditions = list(walk(node))
    names = frozenset(c.name for c in conditions if isinstance(c, Event))
    windowed = any(
        (isinstance(c, Event | Order) and c.within_days is not None)
        or (isinstance(c, Trait) and c.operator in ("within_last_days", "more_than_days_ago"))
        or (isinstance(c, Trait) and c.field in ("age", "birth_date"))
        for c in conditions
    )
    return Dependencies(
        event_names=names,
        orders=any(isinstance(c, Order) for c in conditions),
        profile=any(isinstance(c, Trait | Rfm | Geo | Consent) for c in conditions),
        windowed=windowed,
        segments=frozenset(c.key for c in conditions if isinstance(c, SegmentRef)),
    )


# ------------------------------------------------------------------ parsing


class _Checker:
    """Collects every error of a definition with its pointer."""

    def __init__(self, base: str) -> None:
        self.errors: list[FieldError] = []
        self.count = 0
        self.base = base

    def fail(self, pointer: str, message: str, **values: Any) -> None:
        self.errors.append(refusal(message, pointer=self.base + pointer or "/", **values))

    def node(self, raw: Any, at: str, depth: int) -> Node | None:
        if not isinstance(raw, Mapping):
            self.fail(at, NOT_AN_OBJECT)
            return None
        if depth > MAX_DEPTH:
            self.fail(at, TOO_DEEP, max=MAX_DEPTH)
            return None
        combinators = [k for k in COMBINATORS if k in raw]
        if combinators:
            return self.group(raw, combinators, at, depth)
        if "kind" not in raw:
            found = ", ".join(sorted(map(str, raw))) or "{}"
            self.fail(at, NEEDS_KIND, kinds=", ".join(KINDS), found=found)
            return None
        self.count += 1
        if self.count > MAX_CONDITIONS:
            if self.count == MAX_CONDITIONS + 1:
                self.fail(at, TOO_MANY, max=MAX_CONDITIONS)
            return None
        return self.condition(raw, at)

    def group(self, raw: Mapping[str, Any], found: list[str], at: str, depth: int) -> Node | None:
        extra = sorted(set(map(str, raw)) - set(found))
        if len(found) > 1 or extra:
            self.fail(at, ONE_COMBINATOR, found=sorted(raw))
            return None
        combinator = found[0]
        value = raw[combinator]
        if combinator == "not":
            child = self.node(value, f"{at}/not", depth + 1)
            return Group("not", (child,)) if child is not None else None
        if not isinstance(value, list) or not value:
            self.fail(f"{at}/{combinator}", EMPTY_GROUP)
            return None
        children = [self.node(v, f"{at}/{combinator}/{i}", depth + 1) for i, v in enumerate(value)]
        if any(c is None for c in children):
            return None
        return Group(combinator, tuple(c for c in children if c is not None))

    def keys(self, raw: Mapping[str, Any], at: str, allowed: tuple[str, ...]) -> bool:
        ok = True
        for name in raw:
            if name not in allowed:
                self.fail(
                    f"{at}/{name}", UNKNOWN_KEY, key=repr(name), kind=raw.get("kind"),
                    valid=", ".join(allowed),
                )  # fmt: skip
                ok = False
        return ok

    def choice(self, raw: Mapping[str, Any], at: str, key: str, valid: tuple[str, ...]) -> Any:
        value = raw.get(key)
        if value not in valid:
            if value is None:
                self.fail(f"{at}/{key}", MISSING_CHOICE, valid=", ".join(valid))
            else:
                self.fail(f"{at}/{key}", BAD_CHOICE, value=repr(value), valid=", ".join(valid))
            return None
        return value

    def whole(
        self, raw: Mapping[str, Any], at: str, key: str, low: int, high: int, need: bool = False
    ) -> int | None:
        value = raw.get(key)
        if value is None and not need:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(f"{at}/{key}", NOT_WHOLE, low=low, high=high)
            return None
        return value

    def text(self, raw: Mapping[str, Any], at: str, key: str, need: bool = False) -> str | None:
        value = raw.get(key)
        if value is None and not need:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            self.fail(f"{at}/{key}", NOT_TEXT)
            return None
        return value.strip()

    def condition(self, raw: Mapping[str, Any], at: str) -> Condition | None:
        kind = raw["kind"]
        parsers = {
            "trait": self.trait,
            "event": self.event,
            "order": self.order,
            "rfm": self.rfm,
            "geo": self.geo,
            "consent": self.consent,
            "segment": self.segment,
        }
        if kind not in parsers:
            self.fail(f"{at}/kind", UNKNOWN_KIND, kind=repr(kind), valid=", ".join(KINDS))
            return None
        return parsers[kind](raw, at)

    # -------------------------------------------------------------- kinds

    def trait(self, raw: Mapping[str, Any], at: str) -> Trait | None:
        if not self.keys(raw, at, ("kind", "field", "operator", "value")):
            return None
        name = raw.get("field")
        if name not in TRAITS:
            self.fail(
                f"{at}/field", UNKNOWN_TRAIT, name=repr(name), profile=", ".join(PROFILE_TRAITS),
                computed=", ".join(COMPUTED_TRAITS),
            )  # fmt: skip
            return None
        kind = TRAITS[name]
        operator = raw.get("operator")
        valid = TRAIT_OPERATORS.get(name, OPERATORS[kind])
        if operator not in valid:
            self.fail(
                f"{at}/operator", WRONG_OPERATOR, operator=repr(operator), name=name, type=kind,
                valid=", ".join(valid),
            )  # fmt: skip
            return None
        value = self.operand(kind, operator, raw.get("value"), f"{at}/value")
        return Trait(name, kind, operator, value) if value is not _BAD else None

    def operand(self, kind: str, operator: str, value: Any, at: str) -> Any:
        if operator in _PRESENCE:
            return None
        if operator in ("within_last_days", "more_than_days_ago", "birthday_in_days"):
            return self.days_value(value, at)
        if operator == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.fail(at, NOT_BOUNDS)
                return _BAD
            low, high = (self.scalar(kind, v, f"{at}/{i}") for i, v in enumerate(value))
            if _BAD in (low, high):
                return _BAD
            if low > high:
                self.fail(at, BOUNDS_REVERSED)
                return _BAD
            return (low, high)
        if operator in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > 1000:
                self.fail(at, NOT_A_LIST, operator=operator)
                return _BAD
            items = tuple(self.scalar(kind, v, f"{at}/{i}") for i, v in enumerate(value))
            return _BAD if _BAD in items else items
        if kind == "list":
            return self.scalar("text", value, at)
        return self.scalar(kind, value, at)

    def days_value(self, value: Any, at: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
            self.fail(at, NOT_DAYS, max=MAX_DAYS)
            return _BAD
        return value

    def scalar(self, kind: str, value: Any, at: str) -> Any:
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(at, NOT_A_NUMBER)
                return _BAD
            return value
        if kind in ("time", "date"):
            parsed = _parse_when(value, kind)
            if parsed is None:
                self.fail(at, NOT_A_DATE if kind == "date" else NOT_A_TIME)
                return _BAD
            return parsed
        if not isinstance(value, str) or not value or len(value) > 200:
            self.fail(at, NOT_TEXT)
            return _BAD
        return value

    def event(self, raw: Mapping[str, Any], at: str) -> Event | None:
        allowed = ("kind", "name", "operator", "value", "within_days", "channel", "where")
        if not self.keys(raw, at, allowed):
            return None
        name = self.text(raw, at, "name", need=True)
        operator = self.choice(raw, at, "operator", EVENT_OPERATORS)
        count = 1 if operator == "did" else 0 if operator == "did_not" else None
        if operator in ("at_least", "at_most"):
            count = self.whole(raw, at, "value", 0, 1_000_000, need=True)
        elif "value" in raw and operator is not None:
            self.fail(f"{at}/value", TAKES_NO_VALUE, operator=operator)
            return None
        days = self.whole(raw, at, "within_days", 1, MAX_DAYS)
        channel = self.text(raw, at, "channel")
        where = self.filters(raw.get("where"), f"{at}/where")
        if name is None or operator is None or count is None or where is None:
            return None
        at_most = operator in ("at_most", "did_not")
        return Event(name, "at_most" if at_most else "at_least", count, days, channel, where)

    def filters(self, raw: Any, at: str) -> tuple[PropertyFilter, ...] | None:
        if raw is None:
            return ()
        if not isinstance(raw, list) or len(raw) > 20:
            self.fail(at, NOT_FILTERS)
            return None
        found: list[PropertyFilter] = []
        ok = True
        for index, item in enumerate(raw):
            here = f"{at}/{index}"
            if not isinstance(item, Mapping) or not self.keys(
                {"kind": "property filter", **item}, here, ("kind", "property", "operator", "value")
            ):
                ok = ok and isinstance(item, Mapping)
                if not isinstance(item, Mapping):
                    self.fail(here, NOT_A_FILTER)
                ok = False
                continue
            name = item.get("property")
            if not isinstance(name, str) or not PROPERTY.match(name):
                self.fail(f"{here}/property", NOT_A_PROPERTY)
                ok = False
                continue
            operator = self.choice(item, here, "operator", PROPERTY_OPERATORS)
            if operator is None:
                ok = False
                continue
            value = self.property_value(operator, item.get("value"), f"{here}/value")
            if value is _BAD:
                ok = False
                continue
            found.append(PropertyFilter(name, operator, value))
        return tuple(found) if ok else None

    def property_value(self, operator: str, value: Any, at: str) -> Any:
        if operator in _PRESENCE:
            return None
        if operator in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > 1000:
                self.fail(at, NOT_A_LIST, operator=operator)
                return _BAD
            if not all(isinstance(v, str) for v in value) and not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value
            ):
                self.fail(at, MIXED_LIST)
                return _BAD
            return tuple(value)
        if operator in ("lt", "lte", "gt", "gte"):
            return self.scalar("number", value, at)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(at, NOT_TEXT_OR_NUMBER)
            return _BAD
        return value

    def order(self, raw: Mapping[str, Any], at: str) -> Order | None:
        allowed = (
            "kind", "field", "operator", "value", "within_days", "channel", "category",
            "store", "min_amount_cents",
        )  # fmt: skip
        if not self.keys(raw, at, allowed):
            return None
        name = self.choice(raw, at, "field", ORDER_FIELDS)
        operator = self.choice(raw, at, "operator", ORDER_OPERATORS)
        value = _BAD
        if operator is not None:
            value = self.operand("number", operator, raw.get("value"), f"{at}/value")
        days = self.whole(raw, at, "within_days", 1, MAX_DAYS)
        channel = self.text(raw, at, "channel")
        category = self.text(raw, at, "category")
        store = self.text(raw, at, "store")
        least = self.whole(raw, at, "min_amount_cents", 0, 10**12)
        if name is None or operator is None or value is _BAD:
            return None
        return Order(name, operator, value, days, channel, category, store, least)

    def rfm(self, raw: Mapping[str, Any], at: str) -> Rfm | None:
        if not self.keys(raw, at, ("kind", "segment", "recency", "frequency", "monetary")):
            return None
        if "segment" in raw:
            name = self.choice(raw, at, "segment", tuple(RFM_SEGMENTS))
            if name is None:
                return None
            recency, frequency = RFM_SEGMENTS[name]
            return Rfm(recency, frequency, (1, 2, 3, 4, 5))
        scores = [
            self.scores(raw.get(k), f"{at}/{k}") for k in ("recency", "frequency", "monetary")
        ]
        if any(s is None for s in scores):
            return None
        if all(s == (1, 2, 3, 4, 5) for s in scores):
            self.fail(at, RFM_EMPTY)
            return None
        recency, frequency, monetary = (s or () for s in scores)
        return Rfm(recency, frequency, monetary)

    def scores(self, value: Any, at: str) -> tuple[int, ...] | None:
        if value is None:
            return (1, 2, 3, 4, 5)
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 1 <= value[0] <= value[1] <= 5
        ):
            self.fail(at, NOT_SCORES)
            return None
        return tuple(range(value[0], value[1] + 1))

    def geo(self, raw: Mapping[str, Any], at: str) -> Geo | None:
        if not self.keys(raw, at, ("kind", "store", "lat", "lon", "radius_km")):
            return None
        radius = raw.get("radius_km")
        if (
            isinstance(radius, bool)
            or not isinstance(radius, int | float)
            or not 0 < radius <= MAX_RADIUS_KM
        ):
            self.fail(f"{at}/radius_km", NOT_RADIUS, max=f"{MAX_RADIUS_KM:g}")
            return None
        if "store" in raw:
            if "lat" in raw or "lon" in raw:
                self.fail(at, STORE_AND_POINT)
                return None
            store = self.text(raw, at, "store", need=True)
            return Geo(float(radius), store=store) if store else None
        lat, lon = raw.get("lat"), raw.get("lon")
        good_lat = isinstance(lat, int | float) and not isinstance(lat, bool) and -90 <= lat <= 90
        good_lon = isinstance(lon, int | float) and not isinstance(lon, bool) and -180 <= lon <= 180
        if not good_lat:
            self.fail(f"{at}/lat", NOT_LATITUDE)
        if not good_lon:
            self.fail(f"{at}/lon", NOT_LONGITUDE)
        if not (good_lat and good_lon):
            return None
        return Geo(float(radius), lat=float(lat), lon=float(lon))  # type: ignore[arg-type]

    def consent(self, raw: Mapping[str, Any], at: str) -> Consent | None:
        if not self.keys(raw, at, ("kind", "purpose", "channel")):
            return None
        purpose = self.choice(raw, at, "purpose", CONSENT_PURPOSES)
        channel = self.choice(raw, at, "channel", CONSENT_CHANNELS)
        return Consent(purpose, channel) if purpose and channel else None

    def segment(self, raw: Mapping[str, Any], at: str) -> SegmentRef | None:
        if not self.keys(raw, at, ("kind", "segment")):
            return None
        key = raw.get("segment")
        if not isinstance(key, str) or not KEY.match(key):
            self.fail(f"{at}/segment", NOT_A_SEGMENT_KEY)
            return None
        return SegmentRef(key)


_BAD: Any = object()


def _parse_when(value: Any, kind: str) -> date | datetime | None:
    if not isinstance(value, str):
        return None
    try:
        if kind == "date":
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    from datetime import UTC

    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse(raw: Any, base: str = "") -> Node:
    """The condition tree of a JSON definition, or InvalidInput listing every mistake
    with its JSON pointer (`/all/2/operator`, after `base`, e.g. "#/definition")."""
    checker = _Checker(base)
    node = checker.node(raw, "", 0)
    if checker.errors or node is None:
        errors = checker.errors or [refusal(NOT_A_DEFINITION, pointer=base or "/")]
        first = errors[0]
        raise Refused(
            f"The segment definition is not valid: {first.pointer} {first.detail}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            list(errors),
            NOT_VALID,
        )
    return node


def check_key(key: str) -> list[FieldError]:
    if not isinstance(key, str) or not KEY.match(key):
        return [refusal(NOT_A_KEY, parameter="key")]
    return []
