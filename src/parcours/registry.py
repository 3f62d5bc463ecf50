"""The wiring of contexts: their tables, routers, console pages, consumers and counters.

Adding a context means adding it here once; `app.py`, the worker and migrations read
this module instead of knowing each context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module; FastAPI loads only when serving
    from fastapi import APIRouter
    from sqlalchemy import MetaData

    from parcours.core.events import Consumer, PeriodicJob
    from parcours.web.console import Counter


def metadata() -> MetaData:
    """Every table, for Alembic."""
    # Importing the model modules registers their tables on Base.metadata.
    from parcours.core import models as core_models
    from parcours.core.db import Base
    from parcours.customers import models as customers_models
    from parcours.stores import models as stores_models

    assert core_models
    assert customers_models
    assert stores_models
    return Base.metadata


def api_routers() -> list[APIRouter]:
    from parcours.core.api import router as admin_router
    from parcours.customers.api import router as customers_router
    from parcours.stores.api import router as stores_router

    return [admin_router, stores_router, customers_router]


def page_routers() -> list[APIRouter]:
    from parcours.customers.pages import router as customers_pages
    from parcours.stores.pages import router as stores_pages

    return [stores_pages, customers_pages]


def consumers() -> list[Consumer]:
    """Event consumers run by `parcours worker` (and in-process by `parcours serve`)."""
    return []


def periodic_jobs() -> list[PeriodicJob]:
    """Time-driven jobs run by the worker alongside the consumers."""
    return []


def home_counters() -> list[Counter]:
    from parcours import customers, stores
    from parcours.core import counts
    from parcours.web.console import Counter

    return [
        Counter("Stores", "Commerce", stores.count_stores, "/console/commerce/stores"),
        Counter("Customers", "Customers", customers.count_customers, "/console/customers"),
        Counter("Domain events", "Insight", counts.count_events),
        Counter("Console users", "Settings", counts.count_users, "/console/settings/users"),
        Counter("API keys", "Settings", counts.count_active_keys, "/console/settings/keys"),
    ]
