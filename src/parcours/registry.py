"""The wiring of contexts: their tables, routers, console pages, consumers and counters.

Adding a context means adding it here once; `app.py`, the worker and migrations read
this module instead of knowing each context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module; FastAPI loads only when serving
    import uuid
    from collections.abc import Sequence

    from fastapi import APIRouter
    from sqlalchemy import MetaData
    from sqlalchemy.orm import Session

    from parcours.core.events import Consumer, PeriodicJob
    from parcours.customers import PersonalDataHandler, TimelineSource
    from parcours.stores import StockLookup
    from parcours.web.console import Counter


def metadata() -> MetaData:
    """Every table, for Alembic."""
    # Importing the model modules registers their tables on Base.metadata.
    from parcours.analytics import models as analytics_models
    from parcours.catalog import models as catalog_models
    from parcours.core import models as core_models
    from parcours.core.db import Base
    from parcours.customers import models as customers_models
    from parcours.engagement import models as engagement_models
    from parcours.inventory import models as inventory_models
    from parcours.journeys import models as journeys_models
    from parcours.loyalty import models as loyalty_models
    from parcours.orders import models as orders_models
    from parcours.segments import models as segments_models
    from parcours.stores import models as stores_models

    assert analytics_models
    assert catalog_models
    assert core_models
    assert customers_models
    assert engagement_models
    assert inventory_models
    assert journeys_models
    assert loyalty_models
    assert orders_models
    assert segments_models
    assert stores_models
    return Base.metadata


def api_routers() -> list[APIRouter]:
    from parcours.analytics.api import router as analytics_router
    from parcours.analytics.attribution_api import router as attribution_router
    from parcours.analytics.value_api import router as value_router
    from parcours.catalog.api import router as catalog_router
    from parcours.core.api import router as admin_router
    from parcours.core.webhooks_api import router as webhooks_router
    from parcours.customers.api import router as customers_router
    from parcours.customers.identity_api import router as identity_router
    from parcours.customers.matching_api import router as matching_router
    from parcours.customers.privacy_api import router as privacy_router
    from parcours.customers.tracking_api import router as tracking_router
    from parcours.engagement.api import router as engagement_router
    from parcours.inventory.api import router as inventory_router
    from parcours.journeys.api import router as journeys_router
    from parcours.loyalty.api import router as loyalty_router
    from parcours.orders.api import router as orders_router
    from parcours.orders.cart_api import router as carts_router
    from parcours.orders.pos_api import router as pos_router
    from parcours.segments.api import router as segments_router
    from parcours.stores.api import router as stores_router

    # Routes are matched in order: tracking, the busiest by far (a store's tills and a
    # web shop send events all day), comes first.
    return [
        tracking_router,
        admin_router,
        webhooks_router,
        carts_router,
        orders_router,
        pos_router,
        stores_router,
        customers_router,
        identity_router,
        privacy_router,
        matching_router,
        inventory_router,
        catalog_router,
        analytics_router,
        attribution_router,
        value_router,
        segments_router,
        engagement_router,
        journeys_router,
        loyalty_router,
    ]


def page_routers() -> list[APIRouter]:
    from parcours.analytics.pages import router as analytics_pages
    from parcours.catalog.pages import router as catalog_pages
    from parcours.customers.matching_pages import router as matching_pages
    from parcours.customers.pages import router as customers_pages
    from parcours.customers.privacy_pages import router as privacy_pages
    from parcours.engagement.pages import router as engagement_pages
    from parcours.inventory.pages import router as inventory_pages
    from parcours.journeys.pages import router as journeys_pages
    from parcours.loyalty.pages import router as loyalty_pages
    from parcours.orders.account_pages import router as my_orders_page
    from parcours.orders.pages import router as orders_pages
    from parcours.segments.pages import router as segments_pages
    from parcours.stores.pages import public_router as store_locator_page
    from parcours.stores.pages import router as stores_pages

    return [
        orders_pages,
        my_orders_page,
        stores_pages,
        customers_pages,
        privacy_pages,
        matching_pages,
        store_locator_page,
        inventory_pages,
        catalog_pages,
        analytics_pages,
        segments_pages,
        engagement_pages,
        journeys_pages,
        loyalty_pages,
    ]


def consumers() -> list[Consumer]:
    """Event consumers run by `parcours worker` (and in-process by `parcours serve`)."""
    from parcours import engagement, journeys, loyalty, segments
    from parcours.core.webhooks import webhook_consumer
    from parcours.orders import notification_consumer, tracking_consumer

    return [
        tracking_consumer(),
        notification_consumer(),
        webhook_consumer(),
        *loyalty.consumers(),
        *segments.consumers(),
        *engagement.consumers(),
        *journeys.consumers(),
    ]


def periodic_jobs() -> list[PeriodicJob]:
    """Time-driven jobs run by the worker alongside the consumers."""
    from parcours import analytics, customers, engagement, journeys, loyalty, orders, segments
    from parcours.core.webhooks import webhook_delivery_job
    from parcours.inventory import expire_reservations_job

    return [
        expire_reservations_job(),
        orders.expire_pickups_job(),
        webhook_delivery_job(),
        *customers.periodic_jobs(personal_data_handlers()),
        *analytics.periodic_jobs(),
        *loyalty.periodic_jobs(),
        *segments.periodic_jobs(),
        *engagement.periodic_jobs(),
        *journeys.periodic_jobs(),
    ]


def personal_data_handlers() -> list[PersonalDataHandler]:
    """What the contexts above customers hold about a person, for subject access exports
    and erasures (customers handles its own data itself). Orders keep the amounts for
    accounting and drop the person."""
    from parcours import engagement, journeys, loyalty, orders, segments

    return [
        orders.personal_data_handler(),
        *loyalty.personal_data_handlers(),
        *segments.personal_data_handlers(),
        *engagement.personal_data_handlers(),
        *journeys.personal_data_handlers(),
    ]


def timeline_sources() -> list[TimelineSource]:
    """What the contexts above customers add to a customer's timeline (orders, returns,
    messages, cases as they land), injected into the customer pages through `app.state`.
    Each source answers a `TimelineQuery` with `TimelineEntry`s, newest first."""
    from parcours import engagement, journeys, loyalty

    return [
        *engagement.timeline_sources(),
        *journeys.timeline_sources(),
        *loyalty.timeline_sources(),
    ]


def stock_lookup() -> StockLookup:
    """Live stock per store for the store locator: the inventory context's answer.

    Injected into the stores context (which sits below inventory) through `app.state`.
    """
    from parcours import inventory
    from parcours.core.errors import ParcoursError

    lookup: StockLookup | None = getattr(inventory, "available_by_location", None)
    if lookup is not None:
        return lookup

    def unavailable(
        session: Session, sku: str, location_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        raise ParcoursError("Stock by location is not available: the inventory context lacks it.")

    return unavailable


def home_counters() -> list[Counter]:
    from parcours import catalog, customers, inventory, journeys, loyalty, segments, stores
    from parcours.core import counts
    from parcours.web.console import Counter

    here = "/console/activation"

    return [
        Counter("Stores", "Commerce", stores.count_stores, "/console/commerce/stores"),
        Counter("Products", "Commerce", catalog.count_products, "/console/commerce/catalog"),
        Counter("Stock lines", "Commerce", inventory.count_stock_levels, "/console/commerce/stock"),
        Counter("Customers", "Customers", customers.count_customers, "/console/customers"),
        Counter("Segments", "Activation", segments.count_segments, f"{here}/segments"),
        Counter("Journeys on", "Activation", journeys.count_active_journeys, f"{here}/journeys"),
        Counter("Loyalty members", "Activation", loyalty.count_members, f"{here}/loyalty"),
        Counter("Domain events", "Insight", counts.count_events),
        Counter("Console users", "Settings", counts.count_users, "/console/settings/users"),
        Counter("API keys", "Settings", counts.count_active_keys, "/console/settings/keys"),
    ]
