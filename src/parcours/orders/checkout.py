"""Checkout: an order from a cart, in one transaction, or nothing at all.

The cart is re-priced, routed, and every unit reserved (one conditional write per
line and location, in a fixed order so concurrent checkouts never deadlock); the order,
its lines and fulfilments are written, pickup codes issued, the payment started, the
cart marked converted (one conditional write: a cart converts once) and the order
announced (`emit(ORDER_COMPLETED)`). A shortage anywhere raises `Conflict` (409) naming
the SKU, the location and the units available, and the caller's transaction rolls back
whatever was already held.

The hot path (a three-line web cart, home delivery) takes about twenty statements:
see `tests/orders/test_checkout.py::test_a_web_checkout_stays_within_25_statements`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from parcours import inventory, stores
from parcours.core.errors import Conflict, FieldError, InvalidInput
from parcours.core.geo import GeoPoint
from parcours.core.ids import new_id
from parcours.orders import delivery, payments, pickup
from parcours.orders.carts import (
    PricedCart,
    cart_lines,
    open_cart,
    price_cart,
    promotion_hook,
    vat_part,
)
from parcours.orders.models import (
    PICKUP_MODES,
    SHIPPED_MODES,
    Cart,
    Fulfilment,
    Order,
    OrderLine,
    Payment,
)
from parcours.orders.routing import Need, Network, Plan, Site, load_network, route
from parcours.orders.service import ORDER_COMPLETED, add_event, emit, order_number

CHECKOUT_MODES = (*SHIPPED_MODES, *PICKUP_MODES)
RESERVATION_KIND = {
    "home_delivery": "order_allocation",
    "ship_from_store": "order_allocation",
    "click_and_collect": "click_and_collect",
    "drive": "click_and_collect",
    "reserve_in_store": "reserve_in_store",
}
SHIPPED_HOLD = timedelta(days=30)
DELIVERY_VAT_BP = 2000
LOCALES = ("fr", "en")


@dataclass(frozen=True)
class CheckoutRequest:
    """What the customer (or the call-centre agent, `placed_by`) chose at checkout."""

    cart_id: uuid.UUID
    mode: str
    store_id: uuid.UUID | None = None  # pickup store, or the store to ship from
    slot_id: uuid.UUID | None = None  # drive
    address: Mapping[str, Any] | None = None  # shipped modes
    place: GeoPoint | None = None  # where the customer is (routing by distance)
    payment_provider: str = "in_store"
    payment_method: str = "in_store"
    email: str | None = None
    phone: str | None = None
    locale: str = "fr"
    placed_by: str | None = None


@dataclass
class PlacedOrder:
    order: Order
    lines: list[OrderLine]
    fulfilments: list[Fulfilment]
    pickup_codes: dict[uuid.UUID, str] = field(default_factory=dict)  # clear, shown once
    payment: Payment | None = None


def validate(request: CheckoutRequest) -> None:
    errors = []
    if request.mode not in CHECKOUT_MODES:
        errors.append(FieldError(f"must be one of {', '.join(CHECKOUT_MODES)}", "#/mode"))
    if request.mode in PICKUP_MODES and request.store_id is None:
        errors.append(FieldError("a pickup needs the store", "#/store_id"))
    if request.mode == "drive" and request.slot_id is None:
        errors.append(FieldError("a drive order needs a slot", "#/slot_id"))
    if request.mode in SHIPPED_MODES and not (request.address or {}).get("postcode"):
        errors.append(FieldError("a delivery needs an address with a postcode", "#/address"))
    if not (request.email or request.phone):
        errors.append(FieldError("give an email or a phone to reach the customer", "#/email"))
    if request.payment_provider not in payments.PROVIDERS:
        known = ", ".join(sorted(payments.PROVIDERS))
        errors.append(FieldError(f"must be one of {known}", "#/payment_provider"))
    if request.locale not in LOCALES:
        errors.append(FieldError(f"must be one of {', '.join(LOCALES)}", "#/locale"))
    if errors:
        raise InvalidInput("The checkout is invalid; no order was placed.", errors)


def place_order(
    session: Session, now: datetime, request: CheckoutRequest, actor: str
) -> PlacedOrder:
    """Place the order of a cart (see the module docstring); the caller commits."""
    validate(request)
    cart = open_cart(session, request.cart_id)
    priced = _priced(session, now, cart)
    network = load_network(session, [line.sku for line in priced.lines])
    plan, network = _plan(session, now, request, priced, network)
    order = _order(session, now, request, cart, priced, actor)
    fulfilments = _fulfilments(session, now, request, order, plan)
    lines = _lines(order, priced, plan, fulfilments)
    order.number = order_number(session, order.channel, now)
    with session.no_autoflush:  # the reservations are then inserted in one statement
        _reserve(session, now, order, lines, fulfilments, network)
    # No ORM relationships tie these tables: flush parents first for the foreign keys.
    session.add(order)
    session.flush()
    session.add_all(fulfilments)
    session.flush()
    session.add_all(lines)
    codes = _pickup_codes(session, fulfilments)
    payment = _start_payment(session, now, order, request)
    _convert_cart(session, now, cart, order)
    # The cart's codes are used up with the order, or the whole checkout is refused.
    promotion_hook().redeem(session, now, priced, order.number)
    add_event(
        session,
        now,
        order.id,
        "placed",
        actor,
        to_status=order.status,
        note=f"placed on {order.channel} for {request.mode.replace('_', ' ')}",
        data={"fulfilments": len(fulfilments), "mode": request.mode},
    )
    emit(session, now, order, ORDER_COMPLETED, lines=lines)
    return PlacedOrder(order, lines, fulfilments, codes, payment)


# ------------------------------------------------------------------ steps


def _priced(session: Session, now: datetime, cart: Cart) -> PricedCart:
    priced = price_cart(session, now, cart, cart_lines(session, cart.id))
    if priced.unpriced:
        raise Conflict(
            f"No price on the {cart.channel} channel for {', '.join(priced.unpriced)}; "
            "remove it from the cart.",
            skus=priced.unpriced,
        )
    if not priced.lines:
        raise Conflict("The cart is empty: add something before checking out.")
    return priced


def _plan(
    session: Session, now: datetime, request: CheckoutRequest, priced: PricedCart, network: Network
) -> tuple[Plan, Network]:
    needs = [Need(line.sku, line.quantity) for line in priced.lines]
    chosen = network.sites.get(request.store_id) if request.store_id else None
    if request.store_id is not None and (chosen is None or chosen.kind != "store"):
        raise InvalidInput(
            f"No open store has the id {request.store_id}; no order was placed.",
            [FieldError("unknown or closed store", "#/store_id")],
        )
    plan = route(request.mode, needs, network, request.place, request.store_id)
    if request.mode in SHIPPED_MODES and any(s.site.kind == "store" for s in plan.shipments):
        # A store would ship: only now is its parcel capacity worth reading.
        network = _with_capacity(session, now, network)
        plan = route(request.mode, needs, network, request.place, request.store_id)
    if plan.shortages or not plan.shipments:
        raise _shortage(plan, request.mode)
    return plan, network


def _with_capacity(session: Session, now: datetime, network: Network) -> Network:
    shops = [s.id for s in network.sites.values() if s.kind == "store"]
    left = delivery.ship_capacity_left(session, now, delivery.store_settings(session, shops))
    return Network(
        network.stock,
        {
            sid: Site(s.id, s.code, s.name, s.kind, s.lat, s.lon, s.services, left.get(sid))
            for sid, s in network.sites.items()
        },
    )


def _shortage(plan: Plan, mode: str) -> Conflict:
    if not plan.shortages:
        return Conflict(f"No location can serve this cart for {mode.replace('_', ' ')}.")
    first = plan.shortages[0]
    listed = "; ".join(s.message() for s in plan.shortages)
    return Conflict(
        f"Not enough stock to place this order: {listed}. Nothing was reserved.",
        sku=first.sku,
        location=first.location.code if first.location else None,
        requested=first.requested,
        available=first.available,
        shortages=[
            {
                "sku": s.sku,
                "location": s.location.code if s.location else None,
                "requested": s.requested,
                "available": s.available,
            }
            for s in plan.shortages
        ],
    )


def _order(
    session: Session,
    now: datetime,
    request: CheckoutRequest,
    cart: Cart,
    priced: PricedCart,
    actor: str,
) -> Order:
    fee = delivery.home_fee(priced) if request.mode == "home_delivery" else 0
    if request.mode == "ship_from_store":
        fee = delivery.ship_from_store_fee(priced)
    store_id = cart.store_id or (request.store_id if request.mode in PICKUP_MODES else None)
    return Order(
        id=new_id(),
        number="",
        channel=cart.channel,
        source="call_centre" if cart.channel == "call_centre" else "checkout",
        store_id=store_id,
        placed_by=request.placed_by or (actor if cart.channel == "call_centre" else None),
        customer_id=cart.customer_id,
        anonymous_id=cart.anonymous_id,
        email=(request.email or "").strip().lower() or None,
        phone=(request.phone or "").strip() or None,
        locale=request.locale,
        shipping_address=dict(request.address)
        if request.mode in SHIPPED_MODES and request.address
        else None,
        currency=priced.currency,
        subtotal=priced.subtotal,
        discount_total=priced.discount_total,
        delivery_total=fee,
        total=priced.subtotal + fee,
        vat_total=priced.vat_total + vat_part(fee, DELIVERY_VAT_BP),
        promo_codes=list(cart.promo_codes),
        status="placed",
        payment_status="pending",
        cart_id=cart.id,
        placed_at=now,
        updated_at=now,
    )


def _fulfilments(
    session: Session,
    now: datetime,
    request: CheckoutRequest,
    order: Order,
    plan: Plan,
) -> list[Fulfilment]:
    promised, hold, slot_id = _promise(session, now, request, plan)
    out = []
    for index, shipment in enumerate(plan.shipments):
        if request.mode == "ship_from_store" or (
            request.mode == "home_delivery" and shipment.site.kind == "store"
        ):
            capacity = shipment.site.ship_capacity_left
            settings = delivery.store_settings(session, [shipment.site.id])[shipment.site.id]
            if capacity is not None:
                delivery.take_ship_capacity(
                    session, now, shipment.site.id, settings.daily_ship_capacity
                )
        out.append(
            Fulfilment(
                id=new_id(),
                order_id=order.id,
                mode=request.mode,
                location_id=shipment.site.id,
                pickup_store_id=shipment.site.id if request.mode in PICKUP_MODES else None,
                status="allocated",
                delivery_fee=order.delivery_total if index == 0 else 0,
                promised_at=promised,
                slot_id=slot_id,
                hold_until=hold,
                pickup_attempts=0,
                reason=shipment.reason[:500],
                reason_data=shipment.reason_data,
                created_at=now,
                updated_at=now,
            )
        )
    return out


def _promise(
    session: Session, now: datetime, request: CheckoutRequest, plan: Plan
) -> tuple[datetime | None, datetime | None, uuid.UUID | None]:
    """(promised_at, hold_until, slot_id) of the fulfilments of this mode."""
    if request.mode in SHIPPED_MODES:
        return delivery.working_days_later(now, delivery.HOME_DELIVERY_WORKING_DAYS), None, None
    assert request.store_id is not None
    site = plan.shipments[0].site
    if request.mode not in site.services:
        raise Conflict(
            f"{site.name} does not offer {request.mode.replace('_', ' ')}.", store=site.code
        )
    settings = delivery.store_settings(session, [site.id])[site.id]
    schedule = stores.opening_schedule(session, stores.get_store(session, site.id), now)
    ready = delivery.ready_by(schedule, now, settings.preparation_minutes)
    if ready is None:
        raise Conflict(f"{site.name} has no opening hours ahead; choose another store.")
    if request.mode == "drive":
        assert request.slot_id is not None
        slot = delivery.book_slot(session, site.id, request.slot_id)
        if slot.starts_at < ready:
            raise Conflict(
                f"The slot at {slot.starts_at.isoformat()} is before the order can be ready "
                f"({ready.isoformat()}); choose a later slot."
            )
        ready = slot.starts_at
        return ready, ready + timedelta(days=settings.pickup_hold_days), slot.id
    days = (
        settings.reserve_hold_days
        if request.mode == "reserve_in_store"
        else settings.pickup_hold_days
    )
    return ready, ready + timedelta(days=days), None


def _lines(
    order: Order, priced: PricedCart, plan: Plan, fulfilments: list[Fulfilment]
) -> list[OrderLine]:
    """One order line per SKU and fulfilment (a line split over two parcels is two
    lines, each holding its own reservation); the discount follows the units."""
    out: list[OrderLine] = []
    by_sku = {line.sku: line for line in priced.lines}
    for shipment, fulfilment in zip(plan.shipments, fulfilments, strict=True):
        for sku, quantity in shipment.units.items():
            line = by_sku[sku]
            discount = line.discount * quantity // line.quantity
            total = line.unit_price * quantity - discount
            out.append(
                OrderLine(
                    id=new_id(),
                    order_id=order.id,
                    fulfilment_id=fulfilment.id,
                    line_no=len(out) + 1,
                    sku=sku,
                    name=line.name,
                    category=line.category,
                    quantity=quantity,
                    unit_price=line.unit_price,
                    vat_rate_bp=line.vat_rate_bp,
                    discount=discount,
                    total=total,
                    vat=vat_part(total, line.vat_rate_bp),
                    returned_quantity=0,
                )
            )
    return out


def _reserve(
    session: Session,
    now: datetime,
    order: Order,
    lines: list[OrderLine],
    fulfilments: list[Fulfilment],
    network: Network,
) -> None:
    """Hold every line's units, in (sku, location) order so two checkouts lock stock rows
    in the same order; a refusal (someone took the units since routing) is a 409."""
    where = {f.id: f for f in fulfilments}

    def fulfilment_of(line: OrderLine) -> Fulfilment:
        assert line.fulfilment_id is not None
        return where[line.fulfilment_id]

    for line in sorted(lines, key=lambda x: (x.sku, str(fulfilment_of(x).location_id))):
        fulfilment = fulfilment_of(line)
        expires = (
            (fulfilment.hold_until + timedelta(days=1))
            if fulfilment.hold_until
            else now + SHIPPED_HOLD
        )
        try:
            result = inventory.reserve(
                session,
                now,
                line.sku,
                fulfilment.location_id,
                line.quantity,
                RESERVATION_KIND[fulfilment.mode],
                reference=order.number,
                expires_at=expires,
            )
        except Conflict as refused:
            site = network.sites.get(fulfilment.location_id)
            code = site.code if site else str(fulfilment.location_id)
            available = refused.extensions.get("available", 0)
            raise Conflict(
                f"Not enough stock to place this order: {line.sku} at {code}: {available} of "
                f"{line.quantity} available (another order took them meanwhile). "
                "Nothing was reserved.",
                sku=line.sku,
                location=code,
                requested=line.quantity,
                available=available,
            ) from None
        line.reservation_id = result.reservation.id


def _pickup_codes(session: Session, fulfilments: list[Fulfilment]) -> dict[uuid.UUID, str]:
    pickups = [f for f in fulfilments if f.mode in PICKUP_MODES]
    if not pickups:
        return {}
    return {f.id: pickup.issue_code(session, f) for f in pickups}


def _start_payment(
    session: Session, now: datetime, order: Order, request: CheckoutRequest
) -> Payment:
    """Start the payment through the provider's adapter (`in_store` by default: paid at
    the till or at pickup; `simulator`: the test provider)."""
    payment: Payment = payments.start_payment(
        session, now, order, request.payment_provider, request.payment_method
    )
    if payment.status == "captured":
        order.payment_status = "captured"
        order.status = "paid"
    elif payment.status == "authorised":
        order.payment_status = "authorised"
    return payment


def _convert_cart(session: Session, now: datetime, cart: Cart, order: Order) -> None:
    """Mark the cart converted in one conditional write: of two checkouts of one cart,
    the second finds it converted and fails (rolling back its reservations)."""
    done = session.execute(
        update(Cart)
        .where(Cart.id == cart.id, Cart.status == "open")
        .values(status="converted", order_id=order.id, updated_at=now)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"Cart {cart.id} was checked out by another request meanwhile; no second order "
            "was placed.",
            cart_id=str(cart.id),
        )
