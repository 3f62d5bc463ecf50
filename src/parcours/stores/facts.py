"""What the stores context publishes to analytics: each location's human key."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select

from parcours.stores.models import Store


def store_codes() -> Select[uuid.UUID, str, str]:
    """(store_id, code, kind) of every store and warehouse, for fact selects to show the
    store code rather than its id."""
    return select(Store.id.label("store_id"), Store.code.label("code"), Store.kind.label("kind"))
