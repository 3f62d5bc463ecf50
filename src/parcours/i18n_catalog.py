"""The console's dynamic msgids: English words that reach `_()` from Python data.

Templates translate literals (found by `pybabel extract -F babel.cfg`) and also
values such as a user's role or a store's services. Those values are gathered here
from the objects that define them, so the translation tests notice a new role,
service or error type that the French catalogue does not cover yet.

This module sits above the contexts because it reads the registry and the stores
facade, which `parcours.web` may not import.
"""

from __future__ import annotations

from parcours import (
    analytics,
    catalog,
    customers,
    engagement,
    journeys,
    loyalty,
    orders,
    registry,
    segments,
    stores,
)
from parcours.core import pagination, signing
from parcours.core.auth import KEY_KINDS, ROLES
from parcours.core.errors import PROBLEM_TYPES
from parcours.core.http import _STATUS_TITLES
from parcours.inventory import MOVEMENT_KINDS
from parcours.orders import (
    FULFILMENT_MODES,
    FULFILMENT_STATUSES,
    ORDER_CHANNELS,
    ORDER_STATUSES,
    PAYMENT_STATUSES,
    RETURN_CONDITIONS,
    RETURN_REASONS,
)
from parcours.stores import SERVICES
from parcours.web.console import NAVIGATION, REFUSALS

# `Store.kind` values (the column comment in parcours.stores.models): store | warehouse.
STORE_KINDS = ("store", "warehouse")

# Title of an HTTP error whose status has no entry in `_STATUS_TITLES`
# (the fallback in `parcours.core.http`).
FALLBACK_ERROR_TITLE = "Error"

# Details of the failed logins, shown on the login page with `_(error.detail)`:
# `parcours.core.auth.WRONG_CREDENTIALS` and the `TooManyRequests` raised by
# `parcours.core.auth.authenticate`.
LOGIN_ERROR_DETAILS = (
    "Wrong user name or password.",
    "Too many failed logins for this user; try again later.",
)


def navigation_msgids() -> set[str]:
    """Section names and page labels of the console's sidebar."""
    labels = {item.label for items in NAVIGATION.values() for item in items}
    return set(NAVIGATION) | labels


def home_counter_msgids() -> set[str]:
    """Labels and section names of the live counters on the home page."""
    return {
        text for counter in registry.home_counters() for text in (counter.label, counter.section)
    }


def error_title_msgids() -> set[str]:
    """Titles of every error page: problem types and plain HTTP errors."""
    titles = {problem_type.title for problem_type in PROBLEM_TYPES}
    return titles | set(_STATUS_TITLES.values()) | {FALLBACK_ERROR_TITLE}


def dynamic_msgids() -> set[str]:
    """Every msgid that templates pass to `_()` as a variable rather than a literal."""
    return (
        navigation_msgids()
        | home_counter_msgids()
        | set(ROLES)
        | set(KEY_KINDS)
        | set(STORE_KINDS)
        | set(SERVICES)
        | error_title_msgids()
        | set(LOGIN_ERROR_DETAILS)
        | set(REFUSALS)
        | set(signing.MESSAGES)
        | set(pagination.MESSAGES)
        | set(MOVEMENT_KINDS)
        | set(ORDER_CHANNELS)
        | set(ORDER_STATUSES)
        | set(FULFILMENT_MODES)
        | set(FULFILMENT_STATUSES)
        | set(PAYMENT_STATUSES)
        | set(RETURN_REASONS)
        | set(RETURN_CONDITIONS)
        | analytics.console_msgids()
        | segments.console_msgids()
        | engagement.console_msgids()
        | journeys.console_msgids()
        | loyalty.console_msgids()
        | orders.console_msgids()
        | catalog.console_msgids()
        | stores.console_msgids()
        | customers.console_msgids()
    )
