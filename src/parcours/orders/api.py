"""REST endpoints of orders: list and detail, fulfilment transitions, cancellation,
returns (`/v1/orders`), pickup verification at a store (`/v1/stores/{id}/pickups`) and
payment providers' webhooks (`/v1/payments/{provider}/webhooks`, authenticated by their
signature, not by an API key)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, IdempotencyKey, api_caller, respond_once
from parcours.core.errors import NotFound
from parcours.core.http import problem_response
from parcours.core.pagination import paginate
from parcours.orders import lifecycle, payments, pickup, returns, service
from parcours.orders.models import Fulfilment, Order, Return, ReturnLine
from parcours.orders.schemas import (
    CancelIn,
    FulfilmentOut,
    OrderDetail,
    OrderLineOut,
    OrderPage,
    OrderSummary,
    PaymentOut,
    PickupOut,
    PickupVerifyIn,
    ReturnIn,
    ReturnLineOut,
    ReturnOut,
    TimelineEntry,
    TransitionIn,
    WebhookAck,
)

router = APIRouter(tags=["orders"])
orders = APIRouter(prefix="/v1/orders", tags=["orders"])
Reader = Annotated[Actor, Depends(api_caller("commerce:read"))]
Writer = Annotated[Actor, Depends(api_caller("commerce:write"))]
Limit = Annotated[int, Query(ge=1, le=500)]


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def fulfilment_out(fulfilment: Fulfilment) -> FulfilmentOut:
    allowed = list(lifecycle.allowed_next(fulfilment.mode, fulfilment.status))
    return FulfilmentOut.model_validate(
        {**{k: getattr(fulfilment, k) for k in FulfilmentOut.model_fields if k != "allowed_next"},
         "allowed_next": allowed}
    )  # fmt: skip


def return_out(session: Session, record: Return) -> ReturnOut:
    lines = session.scalars(select(ReturnLine).where(ReturnLine.return_id == record.id))
    out = ReturnOut.model_validate(record)
    out.lines = [ReturnLineOut.model_validate(line) for line in lines]
    return out


def order_detail(session: Session, order: Order) -> OrderDetail:
    """Everything staff and customer service see about one order."""
    summary = OrderSummary.model_validate(order).model_dump()
    return OrderDetail(
        **summary,
        subtotal=order.subtotal,
        discount_total=order.discount_total,
        delivery_total=order.delivery_total,
        vat_total=order.vat_total,
        promo_codes=list(order.promo_codes),
        lines=[OrderLineOut.model_validate(x) for x in service.lines_of(session, order.id)],
        fulfilments=[fulfilment_out(f) for f in service.fulfilments_of(session, order.id)],
        payments=[PaymentOut.model_validate(p) for p in service.payments_of(session, order.id)],
        returns=[return_out(session, r) for r in service.returns_of(session, order.id)],
        timeline=[TimelineEntry.model_validate(e) for e in service.timeline_of(session, order.id)],
    )


@orders.get("", response_model=OrderPage, summary="Orders, newest last, filtered")
def list_orders(
    session: DbSession,
    _caller: Reader,
    order_status: Annotated[str | None, Query(alias="status", max_length=24)] = None,
    channel: Annotated[str | None, Query(max_length=24)] = None,
    store: uuid.UUID | None = None,
    customer: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> OrderPage:
    stmt = select(Order)
    if order_status:
        stmt = stmt.where(Order.status == order_status)
    if channel:
        stmt = stmt.where(Order.channel == channel)
    if store:
        stmt = stmt.where(Order.store_id == store)
    if customer:
        stmt = stmt.where(Order.customer_id == customer)
    page = paginate(session, stmt, Order.id, cursor, limit)
    return OrderPage(
        items=[OrderSummary.model_validate(o) for o in page.items], next_cursor=page.next_cursor
    )


@orders.get("/{reference}", response_model=OrderDetail, summary="One order by id or number")
def get_order(reference: str, session: DbSession, _caller: Reader) -> OrderDetail:
    return order_detail(session, service.find_order(session, reference))


@orders.post(
    "/{reference}/fulfilments/{fulfilment_id}/transitions",
    response_model=FulfilmentOut,
    summary="Move a fulfilment to its next status (409 lists the allowed ones)",
)
def transition(
    reference: str,
    fulfilment_id: uuid.UUID,
    body: TransitionIn,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
) -> FulfilmentOut:
    order = service.find_order(session, reference)
    fulfilment = session.get(Fulfilment, fulfilment_id)
    if fulfilment is None or fulfilment.order_id != order.id:
        raise NotFound(f"Order {order.number} has no fulfilment {fulfilment_id}.")
    moved = lifecycle.transition(
        session, clock.now(), fulfilment_id, body.to, caller.label, body.note,
        carrier=body.carrier, tracking_number=body.tracking_number,
    )  # fmt: skip
    return fulfilment_out(moved)


@orders.post("/{reference}/cancel", response_model=OrderDetail, summary="Cancel an order")
def cancel(
    reference: str, body: CancelIn, session: DbSession, clock: ClockDep, caller: Writer
) -> OrderDetail:
    order = service.find_order(session, reference)
    lifecycle.cancel_order(session, clock.now(), order.id, caller.label, body.reason)
    return order_detail(session, service.get_order(session, order.id))


@orders.post(
    "/{reference}/returns",
    response_model=ReturnOut,
    status_code=status.HTTP_201_CREATED,
    summary="Take goods back (any store offering returns, or a warehouse by post)",
)
def create_return(
    reference: str,
    body: ReturnIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def act() -> dict[str, Any]:
        order = service.find_order(session, reference)
        lines = [
            returns.ReturnLineInput(x.line_no, x.quantity, x.reason, x.condition)
            for x in body.lines
        ]
        record = returns.receive_return(
            session, now, order, body.location_id, lines, caller.label, channel=body.channel,
            resolution=body.resolution, exchange_order_id=body.exchange_order_id,
        )  # fmt: skip
        session.flush()
        return return_out(session, record).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, act)


stores_pickups = APIRouter(prefix="/v1/stores", tags=["orders"])


@stores_pickups.post(
    "/{store_id}/pickups/verify",
    response_model=PickupOut,
    summary="Hand over a pickup when the customer's code is right",
)
def verify_pickup(
    request: Request,
    store_id: uuid.UUID,
    body: PickupVerifyIn,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
) -> PickupOut | JSONResponse:
    try:
        fulfilment = pickup.verify_pickup(
            session, clock.now(), store_id, body.order, body.code, caller.label
        )
    except pickup.WrongCode as exc:
        return problem_response(exc, request)  # answered, so the counted attempt commits
    order = service.get_order(session, fulfilment.order_id)
    return PickupOut(
        order_id=order.id,
        number=order.number,
        fulfilment=fulfilment_out(fulfilment),
        payment_status=order.payment_status,
    )


provider_webhooks = APIRouter(prefix="/v1/payments", tags=["orders"])


@provider_webhooks.post(
    "/{provider}/webhooks",
    response_model=WebhookAck,
    summary="A payment provider's signed notification (no API key: the signature is it)",
)
def payment_webhook(
    provider: str,
    raw: RawBody,
    session: DbSession,
    clock: ClockDep,
    signature: Annotated[str | None, Header(alias=payments.SIGNATURE_HEADER)] = None,
) -> WebhookAck:
    outcome = payments.handle_webhook(session, clock.now(), provider, raw, signature)
    return WebhookAck(replayed=outcome.replayed, event_id=outcome.event_id, type=outcome.kind)


router.include_router(orders)
router.include_router(stores_pickups)
router.include_router(provider_webhooks)
