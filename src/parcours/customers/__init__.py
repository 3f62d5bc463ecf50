"""Customers context: tracking, identity, profiles, consent and privacy (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.customers.audiences import (
    AudienceScope,
    audience_profiles,
    changed_profiles,
    contact_rows,
    event_log_head,
    granted_consents,
    live_profile_of,
    log_readers,
    logged_event_names,
    materialise_audience,
    profile_events,
    scoped_events,
)
from parcours.customers.consent import (
    CHANNELS,
    PURPOSES,
    Decision,
    add_consents,
    can_contact,
    can_contact_many,
    current_consents,
    unsubscribe_url,
)
from parcours.customers.facts import customer_facts, event_facts, profile_keys
from parcours.customers.identity import (
    IDENTIFIER_KINDS,
    Identifier,
    MergeRecord,
    Observation,
    Trait,
    canonical_profile_id,
    devices_of,
    erase_identity,
    export_identity,
    identifiers_of,
    merge_history,
    merge_profiles,
    merged_profile_ids,
    normalise,
    observe,
    resolve,
    traits_of,
    unmerge,
)
from parcours.customers.identity_log import pending_events, resolve_logged_events
from parcours.customers.matching import RunRequest as MatchRunRequest
from parcours.customers.matching import count_pending as count_pending_matches
from parcours.customers.matching import run_matching
from parcours.customers.privacy import PersonalDataHandler
from parcours.customers.profile_timeline import (
    TimelineEntry,
    TimelinePosition,
    TimelineQuery,
    TimelineSource,
)
from parcours.customers.profile_traits import (
    ProfileScope,
    PurchaseFeed,
    computed_traits,
    refresh_everyone,
    refresh_profiles,
    touched_profiles,
)
from parcours.customers.service import (
    add_customers,
    count_customers,
    customer_ids_by_number,
    get_customer,
    list_customers,
    live_profiles,
    normalise_email,
    validate_customer,
)
from parcours.customers.tracking import IngestResult, ingest_messages
from parcours.customers.tracking_messages import EVENT_CHANNELS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import typer

    from parcours.core.events import PeriodicJob


def cli_app(
    personal_data_handlers: Callable[[], Sequence[PersonalDataHandler]] = tuple,
) -> typer.Typer:
    """The `parcours customers` command group; `personal_data_handlers` gives the other
    contexts' part of exports and erasures (the registry's)."""
    from parcours.customers.cli import app, use_personal_data_handlers

    use_personal_data_handlers(personal_data_handlers)
    return app


def periodic_jobs(handlers: Sequence[PersonalDataHandler] = ()) -> list[PeriodicJob]:
    """Time-driven jobs of this context, run by the worker: identity reading the
    tracking log (every second, first: the other readers stop where it is), the
    retention rules (which erase inactive profiles, so they take the contexts'
    personal data handlers) and the computed traits."""
    from parcours.customers.identity_log import periodic_job as identity_job
    from parcours.customers.privacy import retention_job
    from parcours.customers.profile_traits import periodic_jobs as profile_jobs

    return [identity_job(), retention_job(handlers), *profile_jobs()]


def console_msgids() -> set[str]:
    """Refusals this context's pages say in the reader's language (for the translation
    tests)."""
    from parcours.customers.consent import MESSAGES
    from parcours.customers.profiles import STAFF_SEARCH_FIRST

    return {*MESSAGES, STAFF_SEARCH_FIRST}


__all__ = [
    "CHANNELS",
    "EVENT_CHANNELS",
    "IDENTIFIER_KINDS",
    "PURPOSES",
    "AudienceScope",
    "Decision",
    "Identifier",
    "IngestResult",
    "MatchRunRequest",
    "MergeRecord",
    "Observation",
    "PersonalDataHandler",
    "ProfileScope",
    "PurchaseFeed",
    "TimelineEntry",
    "TimelinePosition",
    "TimelineQuery",
    "TimelineSource",
    "Trait",
    "add_consents",
    "add_customers",
    "audience_profiles",
    "can_contact",
    "can_contact_many",
    "canonical_profile_id",
    "changed_profiles",
    "cli_app",
    "computed_traits",
    "console_msgids",
    "contact_rows",
    "count_customers",
    "count_pending_matches",
    "current_consents",
    "customer_facts",
    "customer_ids_by_number",
    "devices_of",
    "erase_identity",
    "event_facts",
    "event_log_head",
    "export_identity",
    "get_customer",
    "granted_consents",
    "identifiers_of",
    "ingest_messages",
    "list_customers",
    "live_profile_of",
    "live_profiles",
    "log_readers",
    "logged_event_names",
    "materialise_audience",
    "merge_history",
    "merge_profiles",
    "merged_profile_ids",
    "normalise",
    "normalise_email",
    "observe",
    "pending_events",
    "periodic_jobs",
    "profile_events",
    "profile_keys",
    "refresh_everyone",
    "refresh_profiles",
    "resolve",
    "resolve_logged_events",
    "run_matching",
    "scoped_events",
    "touched_profiles",
    "traits_of",
    "unmerge",
    "unsubscribe_url",
    "validate_customer",
]
