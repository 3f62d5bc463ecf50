"""REST endpoints of outgoing webhooks (`/v1/webhooks`, admin scope): endpoints, their
delivery log, and sending one delivery again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from parcours.core import audit, webhooks
from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, api_caller

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
Admin = Annotated[Actor, Depends(api_caller("admin"))]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=500, examples=["https://erp.example/parcours"])
    event_types: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Event types to receive, e.g. 'Order Completed'; empty: every event.",
    )
    description: str = Field(default="", max_length=200)


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime


class CreatedEndpointOut(EndpointOut):
    secret: str = Field(description="The signing secret: shown this once, keep it safe.")


class EndpointList(BaseModel):
    items: list[EndpointOut]


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str = Field(description="pending, delivered or failed (gave up).")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


@router.post(
    "/endpoints",
    response_model=CreatedEndpointOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add an endpoint; the answer holds its signing secret, once",
)
def create_endpoint(
    body: EndpointIn, session: DbSession, clock: ClockDep, caller: Admin
) -> CreatedEndpointOut:
    now = clock.now()
    created = webhooks.create_endpoint(session, now, body.url, body.event_types, body.description)
    audit.record(
        session, now, caller, "webhooks.create", "webhook_endpoint", str(created.endpoint.id)
    )
    out = EndpointOut.model_validate(created.endpoint).model_dump()
    return CreatedEndpointOut(**out, secret=created.secret)


@router.get("/endpoints", response_model=EndpointList, summary="List the endpoints")
def list_endpoints(session: DbSession, caller: Admin) -> EndpointList:
    return EndpointList(
        items=[EndpointOut.model_validate(e) for e in webhooks.list_endpoints(session)]
    )


@router.post(
    "/endpoints/{endpoint_id}/disable",
    response_model=EndpointOut,
    summary="Stop sending events to an endpoint (its log is kept)",
)
def disable_endpoint(
    endpoint_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Admin
) -> EndpointOut:
    endpoint = webhooks.disable_endpoint(session, endpoint_id)
    audit.record(
        session, clock.now(), caller, "webhooks.disable", "webhook_endpoint", str(endpoint_id)
    )
    return EndpointOut.model_validate(endpoint)


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response_model=DeliveryList,
    summary="The delivery log of an endpoint, newest first",
)
def list_deliveries(
    endpoint_id: uuid.UUID,
    session: DbSession,
    caller: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeliveryList:
    rows = webhooks.list_deliveries(session, endpoint_id, limit)
    return DeliveryList(items=[DeliveryOut.model_validate(d) for d in rows])


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    summary="Send a delivery again at the next run",
)
def redeliver(
    delivery_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Admin
) -> DeliveryOut:
    now = clock.now()
    delivery = webhooks.redeliver(session, now, delivery_id)
    audit.record(session, now, caller, "webhooks.redeliver", "webhook_delivery", str(delivery_id))
    return DeliveryOut.model_validate(delivery)
