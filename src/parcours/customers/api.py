"""REST endpoints of customer profiles (reads are audited)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, api_caller
from parcours.core.money import Money
from parcours.customers import profiles
from parcours.customers.models import ComputedTraits
from parcours.customers.profile_timeline import TimelineEntry, TimelineSource
from parcours.customers.schemas import (
    AmountOut,
    ComputedTraitsOut,
    CustomerOut,
    CustomerPage,
    IdentifierOut,
    LastPurchaseOut,
    ProfileOut,
    RfmOut,
    StoreRef,
    TimelineEntryOut,
    TimelinePageOut,
    TraitOut,
)

router = APIRouter(prefix="/v1/customers", tags=["customers"])
Reader = Annotated[Actor, Depends(api_caller("customers:read"))]


def timeline_sources(request: Request) -> Sequence[TimelineSource]:
    """Sources later contexts add to the timeline (orders, returns, messages, cases),
    wired by the registry into `app.state`."""
    sources: Sequence[TimelineSource] = getattr(request.app.state, "timeline_sources", ())
    return sources


@router.get("", response_model=CustomerPage, summary="List or search customer profiles")
def list_customers(
    session: DbSession,
    clock: ClockDep,
    caller: Reader,
    q: Annotated[
        str,
        Query(
            max_length=200,
            description="exact email, phone, customer number or loyalty card, or a name prefix",
        ),
    ] = "",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CustomerPage:
    page = profiles.search_profiles(session, clock.now(), caller, q, cursor, limit)
    return CustomerPage(
        items=[CustomerOut.model_validate(s.customer) for s in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{customer_id}",
    response_model=ProfileOut,
    summary="One customer profile: traits, identifiers and computed traits",
)
def get_customer(
    customer_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Reader
) -> ProfileOut:
    """A merged id answers with the surviving profile (`merged_from` names the id asked)."""
    profile = profiles.get_profile(session, clock.now(), caller, customer_id)
    base = CustomerOut.model_validate(profile.customer).model_dump()
    return ProfileOut(
        **base,
        address=profile.customer.address,
        merged_from=profile.merged_from,
        traits={
            name: TraitOut(value=t.value, source=t.source, observed_at=t.observed_at)
            for name, t in sorted(profile.traits.items())
        },
        identifiers=[
            IdentifierOut(
                kind=i.kind,
                value=i.value,
                source=i.source,
                first_seen=i.first_seen,
                last_seen=i.last_seen,
            )
            for i in profile.identifiers
        ],
        computed=_computed(profile.computed, profile) if profile.computed else None,
    )


@router.get(
    "/{customer_id}/timeline",
    response_model=TimelinePageOut,
    summary="A customer's timeline across channels, newest first",
)
def get_timeline(
    customer_id: uuid.UUID,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TimelinePageOut:
    page = profiles.profile_timeline(
        session, clock.now(), caller, customer_id, cursor, limit, timeline_sources(request)
    )
    return TimelinePageOut(items=[_entry(e) for e in page.items], next_cursor=page.next_cursor)


def _amount(money: Money | None) -> AmountOut | None:
    return AmountOut(amount=money.amount, currency=money.currency) if money else None


def _computed(traits: ComputedTraits, profile: profiles.Profile) -> ComputedTraitsOut:
    def store(store_id: uuid.UUID | None) -> StoreRef | None:
        return StoreRef(id=store_id, name=profile.store_name(store_id)) if store_id else None

    currency = traits.currency
    last = None
    if traits.last_purchase_at is not None:
        paid = None
        if traits.last_purchase_cents is not None and traits.last_purchase_currency:
            paid = AmountOut(
                amount=traits.last_purchase_cents, currency=traits.last_purchase_currency
            )
        last = LastPurchaseOut(
            at=traits.last_purchase_at,
            amount=paid,
            channel=traits.last_purchase_channel,
            store=store(traits.last_purchase_store_id),
        )
    rfm = None
    if traits.recency_score and traits.frequency_score and traits.monetary_score:
        rfm = RfmOut(
            recency=traits.recency_score,
            frequency=traits.frequency_score,
            monetary=traits.monetary_score,
        )
    return ComputedTraitsOut(
        first_seen_at=traits.first_seen_at,
        last_seen_at=traits.last_seen_at,
        channels=list(traits.channels),
        events_count=traits.events_count,
        orders_count=traits.orders_count,
        revenue=AmountOut(amount=traits.revenue_cents, currency=currency) if currency else None,
        average_basket=(
            AmountOut(amount=traits.average_basket_cents, currency=currency)
            if currency and traits.average_basket_cents is not None
            else None
        ),
        favourite_category=traits.favourite_category,
        preferred_store=store(traits.preferred_store_id),
        last_purchase=last,
        rfm=rfm,
        computed_at=traits.computed_at,
    )


def _entry(entry: TimelineEntry) -> TimelineEntryOut:
    return TimelineEntryOut(
        at=entry.at,
        key=entry.key,
        kind=entry.kind,
        title=entry.title,
        channel=entry.channel,
        store=StoreRef(id=entry.store_id, name=entry.store_name) if entry.store_id else None,
        amount=_amount(entry.amount),
        detail=dict(entry.detail),
    )
