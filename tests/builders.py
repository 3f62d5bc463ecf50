"""Builders for test data: each returns what a test needs, in one call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from parcours import customers, stores
from parcours.core import auth
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database

PASSWORD = "correct horse battery"


def api_key(db: Database, clock: ManualClock, *scopes: str, kind: str = "secret") -> str:
    with db.transaction() as session:
        return auth.create_api_key(
            session, clock.now(), CLI_ACTOR, "test", kind, list(scopes)
        ).secret


def user(
    db: Database, clock: ManualClock, username: str = "camille", role: str = "admin", **extra: Any
) -> str:
    if role == "staff":
        extra.setdefault("store_ids", ["PAR-1"])
    with db.transaction() as session:
        auth.create_user(session, clock.now(), CLI_ACTOR, username, PASSWORD, role, **extra)
    return username


def store_row(code: str = "LYO-1", **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "code": code,
        "name": f"Store {code}",
        "address": "1 place Bellecour",
        "postcode": "69002",
        "city": "Lyon",
        "lat": 45.7578,
        "lon": 4.832,
        "timezone": "Europe/Paris",
        "opening_hours": {"mon": [["10:00", "19:00"]]},
        "services": ["click_and_collect"],
    }
    row.update(overrides)
    return row


def add_store(db: Database, clock: ManualClock, code: str = "LYO-1", **overrides: Any) -> None:
    with db.transaction() as session:
        stores.add_stores(session, clock.now(), [store_row(code, **overrides)])


def add_customer(db: Database, clock: ManualClock, email: str = "Lea.Martin@Example.com") -> Any:
    with db.transaction() as session:
        return customers.add_customers(
            session,
            clock.now(),
            [{"email": email, "phone": "+33612345678", "first_name": "Léa", "last_name": "Martin"}],
        )[0]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
