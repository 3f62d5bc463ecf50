"""REST endpoints of carts, delivery options and checkout (`/v1/carts`, `/v1/checkout`).

Thin: parse, call `carts` / `delivery` / `checkout`, shape the answer. Checkout takes an
`Idempotency-Key`: a replay answers the first order and never places a second one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, IdempotencyKey, api_caller, respond_once
from parcours.core.errors import ParcoursError
from parcours.core.geo import GeoPoint
from parcours.orders import carts, checkout, delivery, pickup
from parcours.orders.cart_schemas import (
    AttachIn,
    CartIn,
    CartOut,
    CheckoutIn,
    DeliveryOptionOut,
    DeliveryOptionsOut,
    FulfilmentOut,
    PaymentOut,
    PlacedOrderOut,
    PricedLineOut,
    QuantityIn,
)
from parcours.orders.routing import load_network

router = APIRouter(prefix="/v1", tags=["carts and checkout"])
Reader = Annotated[Actor, Depends(api_caller("commerce:read"))]
Writer = Annotated[Actor, Depends(api_caller("commerce:write"))]


def cart_out(session: Session, now: datetime, cart_id: uuid.UUID) -> CartOut:
    cart = carts.get_cart(session, cart_id)
    priced = carts.price_cart(session, now, cart)
    return CartOut(
        id=cart.id,
        channel=cart.channel,
        status=cart.status,
        currency=cart.currency,
        customer_id=cart.customer_id,
        anonymous_id=cart.anonymous_id,
        store_id=cart.store_id,
        order_id=cart.order_id,
        promo_codes=list(cart.promo_codes),
        lines=[PricedLineOut.model_validate(line) for line in priced.lines],
        subtotal=priced.subtotal,
        discount_total=priced.discount_total,
        vat_total=priced.vat_total,
        total=priced.total,
        unpriced=priced.unpriced,
        promo_messages=priced.promo_messages,
    )


@router.post(
    "/carts", response_model=CartOut, status_code=status.HTTP_201_CREATED, summary="Open a cart"
)
def create_cart(
    body: CartIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def act() -> dict[str, Any]:
        cart = carts.create_cart(
            session,
            now,
            body.channel,
            customer_id=body.customer_id,
            anonymous_id=body.anonymous_id,
            store_id=body.store_id,
        )
        session.flush()
        for line in body.lines:
            carts.add_line(session, now, cart.id, line.sku, line.quantity)
        if body.promo_codes:
            carts.set_promo_codes(session, now, cart.id, body.promo_codes)
        session.flush()
        return cart_out(session, now, cart.id).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, act)


@router.get("/carts/{cart_id}", response_model=CartOut, summary="A cart, priced now")
def get_cart(cart_id: uuid.UUID, session: DbSession, clock: ClockDep, _caller: Reader) -> CartOut:
    return cart_out(session, clock.now(), cart_id)


@router.put(
    "/carts/{cart_id}/lines/{sku}",
    response_model=CartOut,
    summary="Set how many of a SKU the cart holds (0 removes it)",
)
def set_line(
    cart_id: uuid.UUID,
    sku: str,
    body: QuantityIn,
    session: DbSession,
    clock: ClockDep,
    _caller: Writer,
) -> CartOut:
    now = clock.now()
    carts.set_line(session, now, cart_id, sku, body.quantity)
    session.flush()
    return cart_out(session, now, cart_id)


@router.post(
    "/carts/{cart_id}/customer",
    response_model=CartOut,
    summary="The visitor logged in: attach the cart (merged into their open cart if any)",
)
def attach_customer(
    cart_id: uuid.UUID, body: AttachIn, session: DbSession, clock: ClockDep, caller: Writer
) -> CartOut:
    now = clock.now()
    kept = carts.attach_customer(session, now, cart_id, body.customer_id, caller)
    session.flush()
    return cart_out(session, now, kept.id)


def _place(lat: float | None, lon: float | None, postcode: str | None) -> GeoPoint | None:
    """Where the customer is, when they said; an unknown postcode just means 'unknown'."""
    if lat is None and lon is None and not postcode:
        return None
    try:
        return stores.resolve_place(lat=lat, lon=lon, postcode=postcode)
    except ParcoursError:
        if lat is not None or lon is not None:
            raise
        return None


@router.get(
    "/carts/{cart_id}/delivery-options",
    response_model=DeliveryOptionsOut,
    summary="Home delivery, click & collect, reserve in store, drive and ship from store",
    description="Asking for them is the delivery step of a checkout: the cart's "
    "`Checkout Started` event is recorded in the tracking log (once per cart).",
)
def delivery_options(
    cart_id: uuid.UUID,
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    postcode: Annotated[str | None, Query(max_length=10)] = None,
    store_id: uuid.UUID | None = None,
) -> DeliveryOptionsOut:
    now = clock.now()
    cart = carts.open_cart(session, cart_id)
    priced = carts.price_cart(session, now, cart)
    network = load_network(session, [line.sku for line in priced.lines])
    place = _place(lat, lon, postcode)
    options = delivery.delivery_options(
        session, now, priced, network, place, store_id or cart.store_id
    )
    if priced.lines:
        carts.checkout_started(session, now, priced)
    return DeliveryOptionsOut(
        cart_id=cart.id,
        subtotal=priced.subtotal,
        options=[DeliveryOptionOut.model_validate(o) for o in options],
    )


def placed_out(placed: checkout.PlacedOrder) -> PlacedOrderOut:
    order = placed.order
    skus: dict[uuid.UUID, dict[str, int]] = {f.id: {} for f in placed.fulfilments}
    for line in placed.lines:
        if line.fulfilment_id is not None:
            skus[line.fulfilment_id][line.sku] = line.quantity
    return PlacedOrderOut(
        id=order.id,
        number=order.number,
        status=order.status,
        channel=order.channel,
        currency=order.currency,
        subtotal=order.subtotal,
        discount_total=order.discount_total,
        delivery_total=order.delivery_total,
        vat_total=order.vat_total,
        total=order.total,
        placed_at=order.placed_at,
        lines=[PricedLineOut.model_validate(line) for line in placed.lines],
        fulfilments=[
            FulfilmentOut(
                id=f.id,
                mode=f.mode,
                status=f.status,
                location_id=f.location_id,
                pickup_store_id=f.pickup_store_id,
                delivery_fee=f.delivery_fee,
                promised_at=f.promised_at,
                hold_until=f.hold_until,
                slot_id=f.slot_id,
                reason=f.reason,
                reason_data=f.reason_data,
                pickup_code=placed.pickup_codes.get(f.id),
                pickup_qr_svg=(
                    pickup.qr_svg(order.number, placed.pickup_codes[f.id])
                    if f.id in placed.pickup_codes
                    else None
                ),
                skus=skus[f.id],
            )
            for f in placed.fulfilments
        ],
        payment=PaymentOut.model_validate(placed.payment) if placed.payment else None,
    )


@router.post(
    "/checkout",
    response_model=PlacedOrderOut,
    status_code=status.HTTP_201_CREATED,
    summary="Place the order of a cart (send an Idempotency-Key: a replay never places twice)",
    responses={
        409: {
            "description": "Not enough stock (the problem names sku, location, available), "
            "a full drive slot, or a cart already checked out"
        },
    },
)
def place_order(
    body: CheckoutIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()
    postcode = body.address.postcode if body.address else None
    checkout_request = checkout.CheckoutRequest(
        cart_id=body.cart_id,
        mode=body.mode,
        store_id=body.store_id,
        slot_id=body.slot_id,
        address=body.address.model_dump() if body.address else None,
        place=_place(body.lat, body.lon, None if body.lat is not None else postcode),
        payment_provider=body.payment_provider,
        payment_method=body.payment_method,
        email=body.email,
        phone=body.phone,
        locale=body.locale,
        placed_by=body.placed_by,
    )

    def act() -> dict[str, Any]:
        placed = checkout.place_order(session, now, checkout_request, caller.label)
        session.flush()
        return placed_out(placed).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, act)
