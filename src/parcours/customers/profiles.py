"""Profiles 360: one person as every team sees them, whatever channel they used.

The profile page gathers the identity card, the traits in force with their source, the
identifiers the graph links, the computed traits (`profile_traits`) and the timeline
(`profile_timeline`). Search finds profiles by exact identifier or by name prefix. The
clienteling view is what store staff see of the customer in front of them: history,
preferences, sizes and last purchases, never consents' proofs, addresses or raw events.

Every read is audited; audit entries carry ids and the kinds searched, never the values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.errors import NotFound, SaidForbidden
from parcours.core.models import AuditEntry
from parcours.core.money import Money
from parcours.core.pagination import MAX_LIMIT, Page, check_limit, decode_cursor, encode_cursor
from parcours.customers import identity, identity_log
from parcours.customers.models import ComputedTraits, Customer
from parcours.customers.profile_timeline import (
    TimelineEntry,
    TimelinePage,
    TimelineSource,
    timeline,
)
from parcours.customers.profile_traits import (
    order_amount_of,
    purchase_lines,
    purchases,
    refresh_profiles,
    scope_of,
)

# Identifiers a person can tell at a till or on the phone: the exact search of staff.
EXACT_KINDS = ("email", "phone", "customer_number", "loyalty_card")
NAME_PREFIX_MIN = 2
# How long a staff member may come back to a customer they found by exact identifier.
CLIENTELING_PASS = timedelta(hours=4)
FOUND_BY_IDENTIFIER = "customer.found_by_identifier"
STAFF_SEARCH_FIRST = (
    "Store staff open a customer by searching their exact email, phone, loyalty card or "
    "customer number, or when their preferred store is yours."
)
# Roles that see every profile in full; store staff get the clienteling view only.
HEAD_OFFICE = ("admin", "marketer")
LAST_PURCHASES = 5
STAFF_HISTORY = 20
# Timeline kinds store staff see (no identify/alias/group plumbing, merges or consents).
STAFF_KINDS = frozenset({"track", "page", "screen", "order", "return", "message", "case"})
_ROW_COLUMNS: dict[str, Any] = {
    "email": Customer.email,
    "phone": Customer.phone,
    "customer_number": Customer.customer_number,
}


# ------------------------------------------------------------------ search


@dataclass(frozen=True)
class ProfileSummary:
    """One line of a customer list: the profile and its computed traits (if refreshed)."""

    customer: Customer
    computed: ComputedTraits | None
    matched: tuple[str, ...] = ()  # the identifier kinds the search matched exactly


def exact_matches(session: Session, q: str) -> dict[uuid.UUID, set[str]]:
    """Profiles owning `q` as an email, phone, customer number or loyalty card (values
    normalised as the identity graph stores them), with the kinds that matched."""
    text = q.strip()
    kinds = ("email",) if "@" in text else tuple(k for k in EXACT_KINDS if k != "email")
    normalised = {kind: identity.normalise(kind, text) for kind in kinds}
    wanted = {kind: value for kind, value in normalised.items() if value is not None}
    found: dict[uuid.UUID, set[str]] = {}
    for kind, value in wanted.items():
        profile_id = identity.resolve(session, kind, value)
        if profile_id is not None:
            found.setdefault(profile_id, set()).add(kind)
    # Profiles written in bulk before the graph knew them carry these on their row.
    columns = {k: _ROW_COLUMNS[k] for k in wanted if k in _ROW_COLUMNS}
    if columns:
        rows = session.execute(
            select(Customer.id, *columns.values()).where(
                or_(*(column == wanted[k] for k, column in columns.items()))
            )
        )
        for profile_id, *values in rows:
            for kind, value in zip(columns, values, strict=True):
                if value == wanted[kind]:
                    found.setdefault(profile_id, set()).add(kind)
    return found


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _starts(column: Any, word: str) -> ColumnElement[bool]:
    """Case-insensitive prefix match on both databases (SQLite lowers ASCII only, so the
    capitalised form catches accented initials such as "Élodie")."""
    return or_(
        func.lower(column).like(_like_prefix(word.lower()), escape="\\"),
        column.like(_like_prefix(word[:1].upper() + word[1:].lower()), escape="\\"),
    )


def name_condition(q: str) -> ColumnElement[bool] | None:
    """Last or first name starting with `q`; "léa mar" matches Léa Martin either way round."""
    words = q.split()
    if not words or len(q.strip()) < NAME_PREFIX_MIN or any(ch.isdigit() or ch == "@" for ch in q):
        return None
    if len(words) == 1:
        return or_(_starts(Customer.last_name, words[0]), _starts(Customer.first_name, words[0]))
    first, rest = words[0], " ".join(words[1:])
    return or_(
        and_(_starts(Customer.first_name, first), _starts(Customer.last_name, rest)),
        and_(_starts(Customer.last_name, first), _starts(Customer.first_name, rest)),
    )


def _summaries(
    session: Session,
    condition: ColumnElement[bool] | None,
    cursor: str | None,
    limit: int,
    matched: dict[uuid.UUID, set[str]],
) -> Page[ProfileSummary]:
    stmt = select(Customer, ComputedTraits).outerjoin(
        ComputedTraits, ComputedTraits.profile_id == Customer.id
    )
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.where(Customer.merged_into_id.is_(None))
    if cursor:
        stmt = stmt.where(Customer.id > decode_cursor(cursor))
    rows = session.execute(stmt.order_by(Customer.id).limit(limit + 1)).all()
    items = [ProfileSummary(c, t, tuple(sorted(matched.get(c.id, ())))) for c, t in rows[:limit]]
    more = len(rows) > limit and items
    return Page(items, encode_cursor(items[-1].customer.id) if more else None)


def search_profiles(
    session: Session,
    now: datetime,
    actor: Actor,
    q: str = "",
    cursor: str | None = None,
    limit: int = 50,
) -> Page[ProfileSummary]:
    """Profiles matching `q` exactly (email, phone, customer number, loyalty card) or by
    name prefix, a page at a time (every profile when `q` is empty); audited."""
    check_limit(limit)
    q = q.strip()
    matched = exact_matches(session, q) if q else {}
    condition: ColumnElement[bool] | None = None
    if q:
        by_name = name_condition(q)
        by_id = Customer.id.in_(list(matched)) if matched else None
        parts = [c for c in (by_id, by_name) if c is not None]
        condition = or_(*parts) if parts else Customer.id.is_(None)
    page = _summaries(session, condition, cursor, limit, matched)
    kinds = sorted({k for found in matched.values() for k in found})
    audit.record(
        session,
        now,
        actor,
        "customer.searched" if q else "customer.listed",
        "customer",
        None,
        count=len(page.items),
        matched=kinds,
        by_name=bool(q) and name_condition(q) is not None,
    )
    return page


def find_by_identifier(
    session: Session, now: datetime, actor: Actor, q: str
) -> list[ProfileSummary]:
    """The profiles owning `q` as an exact identifier: what store staff may search. Each
    find is audited per profile, and lets the staff member open it for a while."""
    matched = exact_matches(session, q) if q.strip() else {}
    if not matched:
        audit.record(session, now, actor, "customer.searched", "customer", None, count=0)
        return []
    page = _summaries(session, Customer.id.in_(list(matched)), None, MAX_LIMIT, matched)
    for item in page.items:
        audit.record(
            session,
            now,
            actor,
            FOUND_BY_IDENTIFIER,
            "customer",
            str(item.customer.id),
            matched=list(item.matched),
        )
    return page.items


# ------------------------------------------------------------------ the profile


@dataclass(frozen=True)
class Profile:
    """Everything the profile page shows. `requested_id` differs from `customer.id` when
    the id asked for was merged into this profile."""

    customer: Customer
    requested_id: uuid.UUID
    identifiers: list[identity.Identifier]
    traits: dict[str, identity.Trait]
    computed: ComputedTraits | None
    store_locations: dict[uuid.UUID, stores.Location] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return self.customer.id

    @property
    def merged_from(self) -> uuid.UUID | None:
        return self.requested_id if self.requested_id != self.customer.id else None

    def event_identifiers(self) -> list[tuple[str, str]]:
        return _sender_ids(self.identifiers)

    def store_name(self, store_id: uuid.UUID | None) -> str | None:
        location = self.store_locations.get(store_id) if store_id else None
        return location.name if location else None


def live_customer(session: Session, profile_id: uuid.UUID) -> Customer:
    """The profile for `profile_id`, following merges to the surviving profile."""
    live = identity.canonical_profile_id(session, profile_id)
    customer = session.get(Customer, live) if live else None
    if customer is None:
        raise NotFound(f"No customer has the id {profile_id}.")
    return customer


def load_profile(session: Session, now: datetime, profile_id: uuid.UUID) -> Profile:
    """The profile without auditing (callers audit); computes its traits when missing."""
    customer = live_customer(session, profile_id)
    computed = session.get(ComputedTraits, customer.id)
    if computed is None:
        refresh_profiles(session, now, [customer.id])
        computed = session.get(ComputedTraits, customer.id)
    wanted = {customer.preferred_store_id}
    if computed is not None:
        wanted |= {computed.preferred_store_id, computed.last_purchase_store_id}
    return Profile(
        customer=customer,
        requested_id=profile_id,
        identifiers=identity.identifiers_of(session, customer.id),
        traits=identity.traits_of(session, customer.id),
        computed=computed,
        store_locations=stores.locations(session, {s for s in wanted if s is not None}),
    )


def get_profile(session: Session, now: datetime, actor: Actor, profile_id: uuid.UUID) -> Profile:
    """The whole profile (following merges); the access is audited."""
    profile = load_profile(session, now, profile_id)
    audit.record(session, now, actor, "customer.viewed", "customer", str(profile.id))
    return profile


def profile_timeline(
    session: Session,
    now: datetime,
    actor: Actor,
    profile_id: uuid.UUID,
    cursor: str | None = None,
    limit: int = 50,
    sources: Sequence[TimelineSource] = (),
) -> TimelinePage:
    """A page of the profile's timeline, newest first (following merges); audited."""
    customer = live_customer(session, profile_id)
    page = timeline(session, customer.id, _event_ids(session, customer.id), cursor, limit, sources)
    audit.record(session, now, actor, "customer.timeline_viewed", "customer", str(customer.id))
    return page


def _event_ids(session: Session, profile_id: uuid.UUID) -> list[tuple[str, str]]:
    return _sender_ids(identity.identifiers_of(session, profile_id))


def _sender_ids(identifiers: Iterable[identity.Identifier]) -> list[tuple[str, str]]:
    """(kind, value) of the identifiers events carry (user and anonymous ids)."""
    return [(i.kind, i.value) for i in identifiers if i.kind in identity_log.SENDER_KINDS]


# ------------------------------------------------------------------ clienteling

# Traits a seller may see: sizes and preferences. Anything that locates or reaches the
# person (address, birth date, email, phone) stays on the head-office page.
_HIDDEN_TRAIT_WORDS = (
    "address",
    "street",
    "postcode",
    "postal",
    "zip",
    "city",
    "birth",
    "email",
    "phone",
)
_PREFERENCE_PREFIXES = ("preferred_", "favourite_", "favorite_", "pref_")
_PREFERENCE_NAMES = frozenset({"style", "colours", "colors", "interests", "loyalty_tier"})


def trait_group(name: str) -> str | None:
    """ "size", "preference" or None (not for the shop floor)."""
    lowered = name.lower()
    if any(word in lowered for word in _HIDDEN_TRAIT_WORDS):
        return None
    if "size" in lowered:
        return "size"
    if lowered.startswith(_PREFERENCE_PREFIXES) or lowered in _PREFERENCE_NAMES:
        return "preference"
    return None


@dataclass(frozen=True)
class PurchaseLine:
    sku: str | None
    name: str | None
    category: str | None


@dataclass(frozen=True)
class Purchase:
    """One purchase in any channel, as store staff see it."""

    ref: str
    at: datetime
    amount: Money | None
    channel: str
    store_name: str | None
    lines: list[PurchaseLine]


@dataclass(frozen=True)
class Clienteling:
    """The customer in front of a seller: no address, no consent proof, no raw event."""

    profile_id: uuid.UUID
    first_name: str | None
    last_name: str | None
    customer_number: str | None
    sizes: list[identity.Trait]
    preferences: list[identity.Trait]
    computed: ComputedTraits | None
    preferred_store: str | None
    last_purchases: list[Purchase]
    history: list[TimelineEntry]
    history_cursor: str | None
    access: str  # "head_office" | "preferred_store" | "identifier"


def _staff_store_ids(session: Session, actor: Actor) -> set[uuid.UUID]:
    return set(stores.store_ids_by_code(session, actor.store_ids).values())


def clienteling_access(
    session: Session,
    now: datetime,
    actor: Actor,
    customer: Customer,
    computed: ComputedTraits | None,
) -> str:
    """Why `actor` may see this customer on the shop floor, or `Forbidden`.

    Head office sees everyone. Store staff see a customer whose preferred store is one
    of theirs, or one they found by an exact identifier in the last few hours.
    """
    if actor.role in HEAD_OFFICE:
        return "head_office"
    own = _staff_store_ids(session, actor)
    preferred = {customer.preferred_store_id, computed.preferred_store_id if computed else None}
    if own & preferred:
        return "preferred_store"
    found = session.scalar(
        select(AuditEntry.id)
        .where(
            AuditEntry.target_type == "customer",
            AuditEntry.target_id == str(customer.id),
            AuditEntry.action == FOUND_BY_IDENTIFIER,
            AuditEntry.actor == actor.label,
            AuditEntry.at >= now - CLIENTELING_PASS,
        )
        .limit(1)
    )
    if found is not None:
        return "identifier"
    raise SaidForbidden(STAFF_SEARCH_FIRST)


def last_purchases(
    session: Session, profile_id: uuid.UUID, limit: int = LAST_PURCHASES
) -> list[Purchase]:
    """The profile's latest purchases in any channel, with their product lines (two queries)."""
    dialect = session.get_bind().dialect.name
    scope = scope_of([profile_id])
    bought = purchases(dialect, scope)
    orders = session.execute(
        select(bought).order_by(bought.c.at.desc(), bought.c.ref.desc()).limit(limit)
    ).all()
    if not orders:
        return []
    refs = [o.ref for o in orders]
    lines_of: dict[str, list[PurchaseLine]] = {ref: [] for ref in refs}
    lines = purchase_lines(dialect, scope)
    for ref, sku, name, category in session.execute(
        select(lines.c.ref, lines.c.sku, lines.c.name, lines.c.category).where(
            lines.c.ref.in_(refs)
        )
    ):
        lines_of[ref].append(PurchaseLine(sku, name, category))
    names = stores.locations(session, {o.store_id for o in orders if o.store_id})
    return [
        Purchase(
            ref=o.ref,
            at=o.at,
            amount=order_amount_of(o.amount_minor, o.currency),
            channel=o.channel,
            store_name=names[o.store_id].name if o.store_id in names else None,
            lines=lines_of[o.ref],
        )
        for o in orders
    ]


def staff_history(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    """Timeline entries fit for the shop floor: what happened, where, never the raw data."""
    return [replace(e, detail={}) for e in entries if e.kind in STAFF_KINDS]


def clienteling_view(
    session: Session,
    now: datetime,
    actor: Actor,
    profile_id: uuid.UUID,
    cursor: str | None = None,
    sources: Sequence[TimelineSource] = (),
) -> Clienteling:
    """The clienteling view of one customer, if `actor` may see it; audited."""
    customer = live_customer(session, profile_id)
    computed = session.get(ComputedTraits, customer.id)
    if computed is None:  # the preferred store decides access: know it
        refresh_profiles(session, now, [customer.id])
        computed = session.get(ComputedTraits, customer.id)
    access = clienteling_access(session, now, actor, customer, computed)
    traits = identity.traits_of(session, customer.id)
    groups: dict[str, list[identity.Trait]] = {"size": [], "preference": []}
    for name in sorted(traits):
        group = trait_group(name)
        if group is not None:
            groups[group].append(traits[name])
    history = timeline(
        session, customer.id, _event_ids(session, customer.id), cursor, STAFF_HISTORY, sources
    )
    preferred = computed.preferred_store_id if computed else None
    preferred = preferred or customer.preferred_store_id
    preferred_names = stores.locations(session, {preferred} if preferred else set())
    audit.record(
        session,
        now,
        actor,
        "customer.clienteling_viewed",
        "customer",
        str(customer.id),
        access=access,
    )
    return Clienteling(
        profile_id=customer.id,
        first_name=customer.first_name,
        last_name=customer.last_name,
        customer_number=customer.customer_number,
        sizes=groups["size"],
        preferences=groups["preference"],
        computed=computed,
        preferred_store=preferred_names[preferred].name if preferred in preferred_names else None,
        last_purchases=last_purchases(session, customer.id),
        history=staff_history(history.items),
        history_cursor=history.next_cursor,
        access=access,
    )
