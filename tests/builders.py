"""Builders for test data: each returns what a test needs, in one call."""

from __future__ import annotations

import itertools
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


def location(db: Database, clock: ManualClock, code: str = "LYO-1", kind: str = "store") -> Any:
    """A store (or a warehouse) and its id, for stock tests."""
    add_store(db, clock, code, kind=kind)
    with db.transaction() as session:
        return stores.get_store_by_code(session, code).id


def track(db: Database, clock: ManualClock, *skus: str) -> None:
    """Make SKUs stockable, as the catalogue does for each SKU it creates."""
    from parcours import inventory

    with db.transaction() as session:
        inventory.track_skus(session, clock.now(), skus)


def receive(db: Database, clock: ManualClock, sku: str, location_id: Any, units: int) -> None:
    """Record a receipt of `units` of `sku` at a location (declaring the SKU first)."""
    from parcours import inventory

    with db.transaction() as session:
        inventory.track_skus(session, clock.now(), [sku])
        inventory.record_movements(
            session, clock.now(), [inventory.MovementInput(sku, location_id, "receipt", units)]
        )


# ------------------------------------------------------------------ catalog


def gtin13(n: int) -> str:
    """A valid GTIN-13 in the French 300-379 prefix range, numbered `n`."""
    from parcours import catalog

    return catalog.make_gtin13(f"3760{n:08d}")


def catalog_basics(db: Database, clock: ManualClock) -> None:
    """A brand, a two-level category tree and web/marketplace/store channels."""
    from parcours import catalog

    with db.transaction() as session:
        catalog.add_brand(session, "lavande", "Maison Lavande")
        catalog.add_brand(session, "atelier", "Atelier Garance")
        catalog.add_category(session, "mode", "Mode", "Fashion")
        catalog.add_category(session, "robes", "Robes", "Dresses", parent_code="mode")
        catalog.add_category(session, "maison", "Maison", "Home")
        catalog.add_channel(
            session,
            clock.now(),
            {"code": "web", "name": "Web shop", "kind": "web", "locales": ["fr", "en"]},
        )
        catalog.add_channel(
            session,
            clock.now(),
            {
                "code": "marketplace",
                "kind": "marketplace",
                "locales": ["fr"],
                "prices_include_vat": False,
            },
        )
        catalog.add_channel(session, clock.now(), {"code": "store", "kind": "store"})


def _number(code: str, index: int) -> int:
    import zlib

    return zlib.crc32(code.encode()) % 1_000_000 * 10 + index


def product_data(code: str = "ROBE-LIN", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": code,
        "brand": "lavande",
        "category": "robes",
        "vat_rate": "20",
        "name_fr": "Robe en lin lavande",
        "name_en": "Lavender linen dress",
        "description_fr": "Une robe légère en lin lavé.",
        "description_en": "A light washed-linen dress.",
        "variants": [
            {"sku": f"{code}-S", "gtin": gtin13(_number(code, 1)), "options": {"size": "S"}},
            {"sku": f"{code}-M", "gtin": gtin13(_number(code, 2)), "options": {"size": "M"}},
        ],
    }
    data.update(overrides)
    return data


def add_product(db: Database, clock: ManualClock, code: str = "ROBE-LIN", **overrides: Any) -> None:
    from parcours import catalog

    with db.transaction() as session:
        catalog.create_product(session, clock.now(), product_data(code, **overrides))


def store_exception(db: Database, code: str, day: Any, hours: Any = (), label: str = "") -> None:
    """Close a store on a date (no hours) or give it special hours."""
    with db.transaction() as session:
        store = stores.get_store_by_code(session, code)
        stores.add_exceptions(
            session, [{"store_id": store.id, "day": day, "hours": list(hours), "label": label}]
        )


# ------------------------------------------------------------------ profiles (events, people)
_event_numbers = itertools.count(1)


def event_row(
    at: datetime,
    *,
    type: str = "track",
    event: str | None = "Product Viewed",
    user_id: str | None = None,
    anonymous_id: str | None = None,
    channel: str = "web",
    store_id: Any = None,
    properties: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """One row of the `events` log as tracking stores it (for direct, bulk insertion)."""
    return {
        "message_id": message_id or f"test-{next(_event_numbers)}",
        "type": type,
        "event": event,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "previous_id": None,
        "group_id": None,
        "channel": channel,
        "store_id": store_id,
        "source_id": None,
        "timestamp": at,
        "received_at": at,
        "sent_at": None,
        "original_timestamp": None,
        "properties": properties or {},
        "traits": None,
        "context": {"channel": channel},
    }


def order_row(
    at: datetime,
    revenue: Any,
    *products: tuple[str, str],
    currency: str | None = "EUR",
    **ids: Any,
) -> dict[str, Any]:
    """An `Order Completed` event; `products` are (sku, category) pairs."""
    properties: dict[str, Any] = {"order_id": f"o-{next(_event_numbers)}", "revenue": revenue}
    if currency is not None:
        properties["currency"] = currency
    properties["products"] = [
        {"sku": sku, "name": f"Article {sku}", "category": category} for sku, category in products
    ]
    return event_row(at, event="Order Completed", properties=properties, **ids)


def log_events(db: Database, *rows: dict[str, Any], read: bool = True) -> None:
    """Write events straight into the log, as tracking's bulk path does; then (unless
    `read` is False) let the log's identity reader pass over them, as the worker does a
    moment later (it files them by sender and feeds the identity graph)."""
    from parcours.core.db import bulk_insert
    from parcours.customers import identity_log
    from parcours.customers.models import TrackedEvent

    if not rows:
        return
    with db.transaction() as session:
        session.execute(bulk_insert(TrackedEvent), list(rows))
    if read:
        with db.transaction() as session:
            identity_log.resolve_logged_events(session, max(r["received_at"] for r in rows))


def known_person(
    db: Database,
    clock: ManualClock,
    source: str = "web",
    traits: dict[str, Any] | None = None,
    **identifiers: str,
) -> Any:
    """A profile as the identity graph makes it from one observation; its id."""
    from parcours.customers import identity

    with db.transaction() as session:
        observation = identity.Observation(
            identifiers=identifiers,
            source=source,
            observed_at=clock.now(),
            traits=traits or {},
            reference="builder",
        )
        return identity.observe(session, clock.now(), [observation])[0]
