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
from parcours.customers.models import Consent, Customer

PURPOSES = ("marketing", "personalisation", "analytics")
CHANNELS = ("email", "sms", "push", "phone", "post")
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
    """Insert many customers in one statement (bulk path); all-or-nothing on bad rows."""
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
    return [row["id"] for row in prepared]


def add_consents(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Record consent decisions in bulk (each row: customer_id, purpose, channel,
    granted, at, source, proof)."""
    prepared = []
    for row in rows:
        if row["purpose"] not in PURPOSES or row["channel"] not in CHANNELS:
            raise InvalidInput(f"unknown consent purpose/channel {row['purpose']}/{row['channel']}")
        prepared.append({"id": new_id(), **row})
    if prepared:
        session.execute(bulk_insert(Consent), prepared)
    return len(prepared)


def count_customers(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Customer)) or 0


def list_customers(
    session: Session, now: datetime, actor: Actor, cursor: str | None = None, limit: int = 50
) -> Page[Customer]:
    """A page of customers; the access is audited."""
    page = paginate(session, select(Customer), Customer.id, cursor, limit)
    audit.record(session, now, actor, "customer.listed", "customer", None, count=len(page.items))
    return page


def get_customer(session: Session, now: datetime, actor: Actor, customer_id: uuid.UUID) -> Customer:
    """One customer's profile; the access is audited."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer has the id {customer_id}.")
    audit.record(session, now, actor, "customer.viewed", "customer", str(customer_id))
    return customer


def current_consents(session: Session, customer_id: uuid.UUID) -> dict[tuple[str, str], bool]:
    """The consent in force per (purpose, channel): the latest decision wins."""
    rows = session.execute(
        select(Consent.purpose, Consent.channel, Consent.granted)
        .where(Consent.customer_id == customer_id)
        .order_by(Consent.at)
    )
    return {(purpose, channel): granted for purpose, channel, granted in rows}
