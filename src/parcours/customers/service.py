"""Customer profile use cases. Every read of personal data is written to the audit log."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.db import bulk_insert
from parcours.core.errors import FieldError, InvalidInput, NotFound
from parcours.core.ids import new_id
from parcours.core.pagination import Page, paginate
from parcours.customers import identity
from parcours.customers.models import Customer

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalise_email(value: str) -> str:
    return value.strip().lower()


def validate_customer(row: dict[str, Any]) -> list[FieldError]:
    """Problems with one customer record as pointers into it (empty when valid)."""
    errors = []
    email = row.get("email")
    if email is not None and not _EMAIL.match(email):
        errors.append(FieldError("is not an email address", pointer="#/email"))
    phone = row.get("phone")
    if phone is not None and not _E164.match(phone):
        errors.append(FieldError("must be in E.164 form, e.g. +33612345678", pointer="#/phone"))
    if not (email or phone or row.get("customer_number")):
        errors.append(
            FieldError("a customer needs an email, a phone or a customer number", pointer="#")
        )
    return errors


def add_customers(
    session: Session, now: datetime, rows: Iterable[dict[str, Any]]
) -> list[uuid.UUID]:
    """Insert many customers in one statement (bulk path); all-or-nothing on bad rows.

    Their email, phone and customer number become identity identifiers, and their
    fields traits from the "import" source, in a few bulk statements too.
    """
    prepared = []
    for index, row in enumerate(rows):
        if row.get("email"):
            row = {**row, "email": normalise_email(row["email"])}
        errors = validate_customer(row)
        if errors:
            raise InvalidInput(f"customer #{index} is invalid", errors)
        prepared.append({"id": new_id(), "created_at": now, "updated_at": now, **row})
    if prepared:
        session.execute(bulk_insert(Customer), prepared)
        identity.register_customers(session, now, prepared)
    return [row["id"] for row in prepared]


def customer_ids_by_number(session: Session, numbers: Iterable[str]) -> dict[str, uuid.UUID]:
    """Ids of the customers holding these customer numbers, merged profiles followed to
    their survivor (unknown numbers are absent from the answer)."""
    wanted = sorted(set(numbers))
    found: dict[str, uuid.UUID] = {}
    for start in range(0, len(wanted), 5_000):
        rows = session.execute(
            select(Customer.customer_number, Customer.id, Customer.merged_into_id).where(
                Customer.customer_number.in_(wanted[start : start + 5_000])
            )
        )
        for number, customer_id, merged_into in rows:
            if number is not None:
                found[number] = merged_into or customer_id
    return found


def count_customers(session: Session) -> int:
    """Live profiles: those merged into another are counted once, as the survivor."""
    live = select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None))
    return session.scalar(live) or 0


def list_customers(
    session: Session, now: datetime, actor: Actor, cursor: str | None = None, limit: int = 50
) -> Page[Customer]:
    """A page of live customers (merged profiles appear as their survivor); audited."""
    live = select(Customer).where(Customer.merged_into_id.is_(None))
    page = paginate(session, live, Customer.id, cursor, limit)
    audit.record(session, now, actor, "customer.listed", "customer", None, count=len(page.items))
    return page


def get_customer(session: Session, now: datetime, actor: Actor, customer_id: uuid.UUID) -> Customer:
    """One customer's profile; the access is audited."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer has the id {customer_id}.")
    audit.record(session, now, actor, "customer.viewed", "customer", str(customer_id))
    return customer


def live_profiles(session: Session, profile_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Customer]:
    """The live profile each id stands for, following merges (an unknown id is absent):
    one query per level of merging and one for the profiles, for senders that read many
    profiles at once. Not audited: callers use the profiles to contact people, not to
    show them."""
    live_of, _ = follow_merges(session, list(dict.fromkeys(profile_ids)))
    lives = {live for live in live_of.values() if live is not None}
    rows = session.scalars(select(Customer).where(Customer.id.in_(list(lives)))).all()
    found = {row.id: row for row in rows}
    return {pid: found[live] for pid, live in live_of.items() if live is not None}


def follow_merges(
    session: Session, ids: Iterable[uuid.UUID]
) -> tuple[dict[uuid.UUID, uuid.UUID | None], dict[uuid.UUID, bool]]:
    """The live profile of each id (None if unknown), following merges up, and whether
    each profile seen is erased; one query per level of merging."""
    wanted = list(ids)
    parent: dict[uuid.UUID, uuid.UUID | None] = {}
    erased: dict[uuid.UUID, bool] = {}
    frontier = set(wanted)
    while frontier:
        rows = session.execute(
            select(Customer.id, Customer.merged_into_id, Customer.erased_at).where(
                Customer.id.in_(list(frontier))
            )
        ).all()
        for profile_id, into, erased_at in rows:
            parent[profile_id], erased[profile_id] = into, erased_at is not None
        frontier = {into for _, into, _ in rows if into is not None and into not in parent}
    live_of: dict[uuid.UUID, uuid.UUID | None] = {}
    for profile_id in wanted:
        current: uuid.UUID | None = profile_id if profile_id in parent else None
        for _ in range(64):
            if current is None or parent.get(current) is None:
                break
            current = parent[current]
        live_of[profile_id] = current if current in parent else None
    return live_of, erased
