"""The order lifecycle: which fulfilment status may follow which, what each step does to
stock and payments, and the order status that follows from its fulfilments.

Pickup modes (click & collect, reserve in store, drive):
    allocated → picking → ready_for_pickup → collected, and ready_for_pickup → expired
Shipped modes (home delivery, ship from store):
    allocated → picking → shipped → delivered
Any mode: allocated, picking or ready_for_pickup → cancelled. A carry-out (POS) is born
collected and never moves.

Handing goods over (shipped, collected) consumes the lines' reservations; cancelled and
expired release them. Each change is one conditional write on the fulfilment's current
status, so two members of staff moving the same parcel cannot both succeed.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from parcours import inventory
from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    SaidConflict,
    Term,
)
from parcours.core.events import PeriodicJob
from parcours.orders import payments
from parcours.orders.models import (
    FULFILMENT_STATUSES,
    HANDED_OVER,
    PICKUP_MODES,
    SHIPPED_MODES,
    Fulfilment,
    FulfilmentSettings,
    Order,
    OrderLine,
)
from parcours.orders.service import (
    FULFILMENT_COLLECTED,
    FULFILMENT_DELIVERED,
    FULFILMENT_READY,
    FULFILMENT_SHIPPED,
    ORDER_CANCELLED,
    ORDER_UPDATED,
    PICKUP_EXPIRED,
    add_event,
    emit,
    fulfilments_of,
    get_order,
    payments_of,
)

OPEN = ("allocated", "picking", "ready_for_pickup")
DEAD = ("cancelled", "expired")
PICKUP_FLOW: dict[str, tuple[str, ...]] = {
    "allocated": ("picking", "cancelled"),
    "picking": ("ready_for_pickup", "cancelled"),
    "ready_for_pickup": ("collected", "expired", "cancelled"),
}
SHIPPED_FLOW: dict[str, tuple[str, ...]] = {
    "allocated": ("picking", "cancelled"),
    "picking": ("shipped", "cancelled"),
    "shipped": ("delivered",),
}
# The event each new status announces (steps the Segment spec has no name for are updates).
EVENTS = {
    "picking": ORDER_UPDATED,
    "ready_for_pickup": FULFILMENT_READY,
    "shipped": FULFILMENT_SHIPPED,
    "delivered": FULFILMENT_DELIVERED,
    "collected": FULFILMENT_COLLECTED,
    "expired": PICKUP_EXPIRED,
    "cancelled": ORDER_UPDATED,
}
DEFAULT_PICKUP_HOLD_DAYS = 10
DEFAULT_RESERVE_HOLD_DAYS = 3
EXPIRY_BATCH = 200
EXPIRE_PICKUPS_JOB = "orders.expire_pickups"
SYSTEM = "system"


def allowed_next(mode: str, status: str) -> tuple[str, ...]:
    """The statuses a fulfilment of `mode` may move to from `status`."""
    if mode in PICKUP_MODES:
        return PICKUP_FLOW.get(status, ())
    if mode in SHIPPED_MODES:
        return SHIPPED_FLOW.get(status, ())
    return ()


def get_fulfilment(session: Session, fulfilment_id: uuid.UUID) -> Fulfilment:
    fulfilment = session.get(Fulfilment, fulfilment_id, populate_existing=True)
    if fulfilment is None:
        raise NotFound(f"No fulfilment has the id {fulfilment_id}.")
    return fulfilment


def lines_of_fulfilment(session: Session, fulfilment: Fulfilment) -> list[OrderLine]:
    """The fulfilment's lines, read through its order (lines have no index by
    fulfilment)."""
    return list(
        session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id == fulfilment.order_id)
            .where(OrderLine.fulfilment_id == fulfilment.id)
            .order_by(OrderLine.line_no)
        )
    )


# What moving and cancelling refuse, as `message % values` for the console.
CANNOT_GO = (
    "A %(mode)s fulfilment cannot go from %(current)s to %(requested)s; allowed next: %(allowed)s."
)
CLOSED = (
    "A %(mode)s fulfilment cannot go from %(current)s to %(requested)s; "
    "allowed next: none: this fulfilment is closed."
)
NOT_CANCELLABLE = (
    "Order %(number)s cannot be cancelled: %(count)s fulfilment(s) already %(statuses)s. "
    "Take the goods back as a return."
)
MESSAGES = (CANNOT_GO, CLOSED, NOT_CANCELLABLE)


def _refuse(fulfilment: Fulfilment, to_status: str) -> Conflict:
    allowed = list(allowed_next(fulfilment.mode, fulfilment.status))
    return SaidConflict(
        CANNOT_GO if allowed else CLOSED,
        extensions={"current": fulfilment.status, "requested": to_status, "allowed": allowed},
        mode=Term(fulfilment.mode),
        current=Term(fulfilment.status),
        requested=Term(to_status),
        allowed=Term(*allowed),
    )


def transition(
    session: Session,
    now: datetime,
    fulfilment_id: uuid.UUID,
    to_status: str,
    actor: str,
    note: str = "",
    carrier: str | None = None,
    tracking_number: str | None = None,
) -> Fulfilment:
    """Move a fulfilment to `to_status` with its side effects; 409 (with `allowed`) when
    the lifecycle does not allow it. The order's status is derived again afterwards."""
    if to_status not in FULFILMENT_STATUSES:
        raise InvalidInput(
            f"{to_status!r} is not a fulfilment status.",
            [FieldError(f"must be one of {', '.join(FULFILMENT_STATUSES)}", pointer="#/to")],
        )
    fulfilment = get_fulfilment(session, fulfilment_id)
    if to_status not in allowed_next(fulfilment.mode, fulfilment.status):
        raise _refuse(fulfilment, to_status)
    before = fulfilment.status
    _move(session, now, fulfilment, to_status)
    order = get_order(session, fulfilment.order_id)
    lines = lines_of_fulfilment(session, fulfilment)
    data = _apply_effects(session, now, order, fulfilment, lines, to_status)
    if carrier is not None:
        fulfilment.carrier = carrier
    if tracking_number is not None:
        fulfilment.tracking_number = tracking_number
    add_event(
        session, now, order.id, "status", actor, fulfilment_id=fulfilment.id,
        from_status=before, to_status=to_status, note=note, data=data,
    )  # fmt: skip
    step = (
        str(fulfilment.id) if EVENTS[to_status] != ORDER_UPDATED else f"{fulfilment.id}-{to_status}"
    )
    emit(
        session, now, order, EVENTS[to_status], lines=lines, step=step,
        properties=_fulfilment_properties(fulfilment),
    )  # fmt: skip
    refresh_order_status(session, now, order)
    return fulfilment


def _move(session: Session, now: datetime, fulfilment: Fulfilment, to_status: str) -> None:
    """One conditional write: only from the status we read (a concurrent move loses)."""
    moved = session.execute(
        update(Fulfilment)
        .where(Fulfilment.id == fulfilment.id, Fulfilment.status == fulfilment.status)
        .values(status=to_status, updated_at=now)
        .returning(Fulfilment.id)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None:
        raise _refuse(get_fulfilment(session, fulfilment.id), to_status)
    set_committed_value(fulfilment, "status", to_status)
    set_committed_value(fulfilment, "updated_at", now)


def _apply_effects(
    session: Session,
    now: datetime,
    order: Order,
    fulfilment: Fulfilment,
    lines: list[OrderLine],
    to_status: str,
) -> dict[str, Any]:
    if to_status in ("shipped", "collected"):
        for line in lines:
            _consume(session, now, order, fulfilment, line)
        return {"consumed_units": sum(line.quantity for line in lines)}
    if to_status in DEAD:
        for line in lines:
            _release(session, now, line)
        return {"released_units": sum(line.quantity for line in lines)}
    if to_status == "ready_for_pickup":
        fulfilment.hold_until = now + timedelta(days=hold_days(session, fulfilment))
        return {"hold_until": fulfilment.hold_until.isoformat()}
    return {}


def hold_days(session: Session, fulfilment: Fulfilment) -> int:
    """How long the store keeps a ready pickup (its settings, else the defaults)."""
    store_id = fulfilment.pickup_store_id or fulfilment.location_id
    settings = session.get(FulfilmentSettings, store_id)
    if fulfilment.mode == "reserve_in_store":
        return settings.reserve_hold_days if settings else DEFAULT_RESERVE_HOLD_DAYS
    return settings.pickup_hold_days if settings else DEFAULT_PICKUP_HOLD_DAYS


def _consume(
    session: Session, now: datetime, order: Order, fulfilment: Fulfilment, line: OrderLine
) -> None:
    """The goods left: the reservation becomes a sale. A reservation that lapsed (the
    inventory expiry ran first) already gave its units back, so the sale is recorded
    directly instead."""
    if line.reservation_id is not None:
        try:
            inventory.consume(session, now, line.reservation_id, reference=order.number)
            return
        except Conflict as refused:
            if refused.extensions.get("reservation_status") not in ("expired", "released"):
                raise
    sale = inventory.MovementInput(
        line.sku, fulfilment.location_id, "sale", line.quantity, reference=order.number
    )
    inventory.record_movements(session, now, [sale], skus_checked=True)


def _release(session: Session, now: datetime, line: OrderLine) -> None:
    """Give the line's units back; one whose reservation already lapsed is back already."""
    if line.reservation_id is None:
        return
    try:
        inventory.release(session, now, line.reservation_id)
    except Conflict as refused:
        if refused.extensions.get("reservation_status") != "expired":
            raise


def _fulfilment_properties(fulfilment: Fulfilment) -> dict[str, Any]:
    return {
        "fulfilment_id": str(fulfilment.id),
        "fulfilment_mode": fulfilment.mode,
        "fulfilment_status": fulfilment.status,
        "location_id": str(fulfilment.location_id),
        "pickup_store_id": str(fulfilment.pickup_store_id) if fulfilment.pickup_store_id else None,
        "hold_until": fulfilment.hold_until.isoformat() if fulfilment.hold_until else None,
        "carrier": fulfilment.carrier,
        "tracking_number": fulfilment.tracking_number,
    }


# ------------------------------------------------------------------ order status


def derive_status(statuses: list[str], modes: list[str], payment_status: str) -> str:
    """The order status that follows from its fulfilments (see ORDER_STATUSES):

    nothing left to hand over → cancelled; everything handed over → collected (all
    pickups), delivered (all parcels) or completed (a mix, or a till sale); otherwise
    the most advanced work in progress: picking, then ready_for_pickup, then shipped
    (once nothing waits to be picked). Untouched orders are placed or paid; an order
    partly handed over with other fulfilments still waiting is allocated.
    """
    live = [(s, m) for s, m in zip(statuses, modes, strict=True) if s not in DEAD]
    if not live:
        return "cancelled"
    if all(s in ("collected", "delivered") for s, _ in live):
        if any(m == "carry_out" for _, m in live) or len({s for s, _ in live}) > 1:
            return "completed"
        return live[0][0]
    present = {s for s, _ in live}
    for status in ("picking", "ready_for_pickup"):
        if status in present:
            return status
    if "allocated" not in present:
        return "shipped"
    if present == {"allocated"}:
        return "paid" if payment_status == "captured" else "placed"
    return "allocated"


def refresh_order_status(session: Session, now: datetime, order: Order) -> str:
    """Derive the order's status again from its fulfilments and payment; a change is
    written with a timeline entry."""
    rows = fulfilments_of(session, order.id)
    if not rows:
        return order.status
    status = derive_status([f.status for f in rows], [f.mode for f in rows], order.payment_status)
    if status != order.status:
        add_event(
            session, now, order.id, "order_status", SYSTEM,
            from_status=order.status, to_status=status,
        )  # fmt: skip
        order.status = status
        order.updated_at = now
    return status


# ------------------------------------------------------------------ cancelling


def cancel_order(
    session: Session, now: datetime, order_id: uuid.UUID, actor: str, reason: str
) -> Order:
    """Cancel every open fulfilment (stock released), refund what was captured, close
    pending payments and emit `Order Cancelled`. 409 once anything was handed over
    (start a return instead); cancelling a cancelled order changes nothing."""
    order = get_order(session, order_id)
    if order.status == "cancelled":
        return order
    rows = fulfilments_of(session, order.id)
    gone = [f for f in rows if f.status in HANDED_OVER]
    if gone:
        raise SaidConflict(
            NOT_CANCELLABLE,
            extensions={"handed_over": [str(f.id) for f in gone]},
            number=order.number,
            count=len(gone),
            statuses=Term(*sorted({f.status for f in gone})),
        )
    for fulfilment in rows:
        if fulfilment.status in OPEN:
            transition(session, now, fulfilment.id, "cancelled", actor, note=reason)
    _settle_payments(session, now, order, actor, reason)
    add_event(session, now, order.id, "cancelled", actor, note=reason)
    emit(session, now, order, ORDER_CANCELLED, properties={"reason": reason})
    refresh_order_status(session, now, order)
    return order


def _settle_payments(session: Session, now: datetime, order: Order, actor: str, why: str) -> None:
    """Nothing will be handed over: give back what was captured, close what is pending."""
    left = payments.refundable(session, order)
    if left > 0:
        payments.refund(session, now, order, left, why, actor)
    for payment in payments_of(session, order.id):
        if payment.status in ("pending", "authorised"):
            payment.status = "cancelled"
            payment.updated_at = now
            order.payment_status = "cancelled"


# ------------------------------------------------------------------ pickup expiry


def expire_pickups(session: Session, now: datetime, limit: int = EXPIRY_BATCH) -> int:
    """Expire up to `limit` ready pickups nobody collected before `hold_until`: stock
    back on the shelf, `Pickup Expired` emitted, and an order left with nothing to hand
    over is settled like a cancellation. How many expired."""
    due = (
        select(Fulfilment.id)
        .where(Fulfilment.status == "ready_for_pickup", Fulfilment.hold_until <= now)
        .order_by(Fulfilment.hold_until)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    for fulfilment_id in ids:
        fulfilment = transition(
            session, now, fulfilment_id, "expired", SYSTEM, note="not collected"
        )
        order = get_order(session, fulfilment.order_id)
        if order.status == "cancelled":
            _settle_payments(session, now, order, SYSTEM, "pickup not collected")
    return len(ids)


def expire_pickups_every_batch(db: Database, clock: Clock) -> int:
    """Expire every overdue pickup, one batch per transaction; how many."""
    total = 0
    while True:
        with db.transaction() as session:
            done = expire_pickups(session, clock.now(), EXPIRY_BATCH)
        total += done
        if done < EXPIRY_BATCH:
            return total


def expire_pickups_job() -> PeriodicJob:
    """A fresh job (each worker keeps its own `next_due`), every minute."""
    return PeriodicJob(EXPIRE_PICKUPS_JOB, 60.0, expire_pickups_every_batch)
