"""REST endpoints of customer profiles (reads are audited)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, api_caller
from parcours.customers import service
from parcours.customers.schemas import CustomerOut, CustomerPage

router = APIRouter(prefix="/v1/customers", tags=["customers"])
Reader = Annotated[Actor, Depends(api_caller("customers:read"))]


@router.get("", response_model=CustomerPage, summary="List customer profiles")
def list_customers(
    session: DbSession,
    clock: ClockDep,
    caller: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CustomerPage:
    page = service.list_customers(session, clock.now(), caller, cursor, limit)
    return CustomerPage(
        items=[CustomerOut.model_validate(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get("/{customer_id}", response_model=CustomerOut, summary="One customer profile")
def get_customer(
    customer_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Reader
) -> CustomerOut:
    return CustomerOut.model_validate(
        service.get_customer(session, clock.now(), caller, customer_id)
    )
