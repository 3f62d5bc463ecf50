"""Console pages of orders: the order list, an order with its fulfilments, routing
reasons and timeline, the store's pickup counter and the returns desk.

Store staff see the orders sold at, or collected from, one of their stores; admins and
marketers see every order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core.deps import DbSession
from parcours.core.errors import ParcoursError, Refused, SaidForbidden, refusal
from parcours.core.money import Money
from parcours.core.pagination import Page
from parcours.orders import lifecycle, pickup, return_requests, returns, service
from parcours.orders.models import (
    ORDER_CHANNELS,
    ORDER_STATUSES,
    PICKUP_MODES,
    RETURN_CONDITIONS,
    RETURN_REASONS,
    Fulfilment,
    Order,
    Return,
)
from parcours.web.console import Console, ConsoleContext, VerifiedConsole, render, require_role

router = APIRouter(prefix="/console/commerce", include_in_schema=False)
PAGE_SIZE = 50
NOT_A_CURSOR = "The page cursor is not one this list gave."
CURSOR = "is not a cursor of this list"
STEP_NOT_OFFERED = "This step is not one the page offers for this fulfilment; reload the page."
TYPE_OR_SCAN = "Type the order number and its pickup code, or scan it."
NO_UNIT = "Choose at least one unit to take back."
NOT_YOUR_ORDER = "This order was neither sold at nor collected from one of your stores."
NOT_YOUR_COUNTER = "You do not run the pickup counter of this store."
NOT_YOUR_DESK = "You do not run the returns desk of this store."
# What the services refuse, shown by these pages with `said(...)` in the reader's language.
SERVICE_MESSAGES = (
    *service.MESSAGES, *lifecycle.MESSAGES, *pickup.MESSAGES, *returns.MESSAGES,
    *return_requests.MESSAGES,
)  # fmt: skip
CONSOLE_MSGIDS = (
    NOT_A_CURSOR, CURSOR, STEP_NOT_OFFERED, TYPE_OR_SCAN, NO_UNIT,
    NOT_YOUR_ORDER, NOT_YOUR_COUNTER, NOT_YOUR_DESK, *SERVICE_MESSAGES,
)  # fmt: skip


def staff_store_ids(session: Session, context: ConsoleContext) -> list[uuid.UUID] | None:
    """The stores a staff user works in (users hold store codes); None for roles that see
    every store."""
    assert context.user is not None
    if context.user.role != "staff":
        return None
    return sorted(stores.store_ids_by_code(session, context.user.store_ids).values())


def _visible(stmt: Select[Any], store_ids: list[uuid.UUID] | None) -> Select[Any]:
    if store_ids is None:
        return stmt
    collected_here = (
        select(Fulfilment.order_id)
        .where(
            or_(Fulfilment.pickup_store_id.in_(store_ids), Fulfilment.location_id.in_(store_ids))
        )
        .scalar_subquery()
    )
    return stmt.where(or_(Order.store_id.in_(store_ids), Order.id.in_(collected_here)))


def check_visible(session: Session, context: ConsoleContext, order: Order) -> None:
    """SaidForbidden unless the viewer may see `order` (staff: one of their stores)."""
    store_ids = staff_store_ids(session, context)
    if store_ids is None:
        return
    stmt = _visible(select(Order.id).where(Order.id == order.id), store_ids)
    if session.scalar(stmt) is None:
        raise SaidForbidden(NOT_YOUR_ORDER)


def _money(context: ConsoleContext) -> Any:
    return lambda cents, currency: Money(cents, currency).format(context.locale)


@router.get("/orders", response_class=HTMLResponse)
def orders_page(
    request: Request,
    context: Console,
    session: DbSession,
    status: str = "",
    channel: str = "",
    q: str = "",
    cursor: str | None = None,
) -> Response:
    stmt = select(Order)
    if status in ORDER_STATUSES:
        stmt = stmt.where(Order.status == status)
    if channel in ORDER_CHANNELS:
        stmt = stmt.where(Order.channel == channel)
    q = q.strip()[:254]
    if q:
        stmt = stmt.where(or_(Order.number == q.upper(), Order.email == q.lower()))
    page = newest_first(session, _visible(stmt, staff_store_ids(session, context)), cursor)
    codes = _store_codes(session, {o.store_id for o in page.items if o.store_id})
    return render(
        request,
        context,
        "orders/list.html",
        page=page,
        codes=codes,
        status=status,
        channel=channel,
        q=q,
        statuses=ORDER_STATUSES,
        channels=ORDER_CHANNELS,
        money=_money(context),
    )


def newest_first(session: Session, stmt: Select[Any], cursor: str | None) -> Page[Order]:
    """One page of orders, the most recently placed first; the cursor is the last order's
    `placed_at` and id."""
    if cursor:
        try:
            at_text, id_text = cursor.split("_", 1)
            at, last_id = datetime.fromisoformat(at_text), uuid.UUID(id_text)
        except ValueError:
            raise Refused(NOT_A_CURSOR, [refusal(CURSOR, parameter="cursor")]) from None
        stmt = stmt.where(
            or_(Order.placed_at < at, and_(Order.placed_at == at, Order.id < last_id))
        )
    rows = list(
        session.scalars(stmt.order_by(Order.placed_at.desc(), Order.id.desc()).limit(PAGE_SIZE + 1))
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    last = rows[-1] if rows and more else None
    return Page(rows, f"{last.placed_at.isoformat()}_{last.id}" if last else None)


def _store_codes(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {i: where.code for i, where in stores.locations(session, ids).items()}


@router.get("/orders/{reference}", response_class=HTMLResponse)
def order_page(request: Request, context: Console, session: DbSession, reference: str) -> Response:
    order = service.find_order(session, reference)
    check_visible(session, context, order)
    return _order_page(request, context, session, order)


def next_steps(fulfilment: Fulfilment) -> tuple[str, ...]:
    """What staff may move a fulfilment to from its page: a pickup is handed over only
    at the pickup counter (with its code), and only the worker expires holds."""
    return tuple(
        status
        for status in lifecycle.allowed_next(fulfilment.mode, fulfilment.status)
        if status != "expired" and not (status == "collected" and fulfilment.mode in PICKUP_MODES)
    )


def _order_page(
    request: Request,
    context: ConsoleContext,
    session: Session,
    order: Order,
    error: ParcoursError | None = None,
) -> Response:
    lines = service.lines_of(session, order.id)
    fulfilments = service.fulfilments_of(session, order.id)
    ids = {f.location_id for f in fulfilments} | {
        f.pickup_store_id for f in fulfilments if f.pickup_store_id
    }
    returns = service.returns_of(session, order.id)
    ids |= {r.location_id for r in returns}
    if order.store_id:
        ids.add(order.store_id)
    return render(
        request,
        context,
        "orders/detail.html",
        order=order,
        lines=lines,
        lines_by_fulfilment={
            f.id: [line for line in lines if line.fulfilment_id == f.id] for f in fulfilments
        },
        fulfilments=fulfilments,
        payments=service.payments_of(session, order.id),
        returns=returns,
        timeline=service.timeline_of(session, order.id),
        codes=_store_codes(session, ids),
        money=_money(context),
        next_steps=next_steps,
        error=error,
        status_code=error.status if error else 200,
    )


def _staff_actor(context: ConsoleContext) -> str:
    actor = require_role(context, "admin", "staff")
    return actor.label


@router.post("/orders/{reference}/fulfilments/{fulfilment_id}/status", response_class=HTMLResponse)
def move_fulfilment(
    request: Request,
    context: VerifiedConsole,
    session: DbSession,
    reference: str,
    fulfilment_id: uuid.UUID,
    to: Annotated[str, Form(max_length=24)],
    carrier: Annotated[str, Form(max_length=64)] = "",
    tracking_number: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    actor = _staff_actor(context)
    order = service.find_order(session, reference)
    check_visible(session, context, order)
    fulfilment = session.get(Fulfilment, fulfilment_id)
    if fulfilment is None or fulfilment.order_id != order.id or to not in next_steps(fulfilment):
        error: ParcoursError = Refused(STEP_NOT_OFFERED)
        return _order_page(request, context, session, order, error)
    try:
        with session.begin_nested():
            lifecycle.transition(
                session, context.now, fulfilment_id, to, actor,
                carrier=carrier.strip() or None, tracking_number=tracking_number.strip() or None,
            )  # fmt: skip
    except ParcoursError as exc:
        return _order_page(request, context, session, order, exc)
    return RedirectResponse(f"/console/commerce/orders/{order.number}", status_code=303)


@router.post("/orders/{reference}/cancel", response_class=HTMLResponse)
def cancel_order(
    request: Request,
    context: VerifiedConsole,
    session: DbSession,
    reference: str,
    reason: Annotated[str, Form(min_length=1, max_length=300)],
) -> Response:
    actor = _staff_actor(context)
    order = service.find_order(session, reference)
    check_visible(session, context, order)
    try:
        with session.begin_nested():
            lifecycle.cancel_order(session, context.now, order.id, actor, reason.strip())
    except ParcoursError as exc:
        return _order_page(request, context, session, order, exc)
    return RedirectResponse(f"/console/commerce/orders/{order.number}", status_code=303)


# ------------------------------------------------------------------ pickup counter


def _counter_stores(session: Session, context: ConsoleContext) -> list[Any]:
    """The stores whose counter this user may run: their own, or every store for admins."""
    ids = staff_store_ids(session, context)
    if ids is None:
        ids = [s.id for s in stores.all_locations(session) if s.kind == "store"]
    rows = stores.locations(session, ids)
    return sorted(rows.values(), key=lambda where: where.code)


def _pickup_page(
    request: Request,
    context: ConsoleContext,
    session: Session,
    store_code: str,
    *,
    error: ParcoursError | None = None,
    collected: Order | None = None,
) -> Response:
    counters = _counter_stores(session, context)
    chosen = next((c for c in counters if c.code == store_code), counters[0] if counters else None)
    waiting: list[tuple[Fulfilment, Order]] = []
    if chosen is not None:
        waiting = [
            (fulfilment, order)
            for fulfilment, order in session.execute(
                select(Fulfilment, Order)
                .join(Order, Order.id == Fulfilment.order_id)
                .where(
                    Fulfilment.pickup_store_id == chosen.id,
                    Fulfilment.status == "ready_for_pickup",
                )
                .order_by(Fulfilment.hold_until)
                .limit(200)
            )
        ]
    return render(
        request,
        context,
        "orders/pickups.html",
        status_code=error.status if error else 200,
        counters=counters,
        chosen=chosen,
        waiting=waiting,
        error=error,
        collected=collected,
    )


@router.get("/pickups", response_class=HTMLResponse)
def pickups_page(
    request: Request, context: Console, session: DbSession, store: str = ""
) -> Response:
    require_role(context, "admin", "staff")
    return _pickup_page(request, context, session, store)


@router.post("/pickups", response_class=HTMLResponse)
def hand_over(
    request: Request,
    context: VerifiedConsole,
    session: DbSession,
    store: Annotated[str, Form(max_length=32)],
    order: Annotated[str, Form(max_length=200)] = "",
    code: Annotated[str, Form(max_length=32)] = "",
    scan: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Hand a pickup over: the order number and code typed, or the QR code scanned."""
    actor = _staff_actor(context)
    counter = next((c for c in _counter_stores(session, context) if c.code == store), None)
    if counter is None:
        raise SaidForbidden(NOT_YOUR_COUNTER)
    scanned = pickup.parse_scan(scan.strip()) if scan.strip() else None
    number, typed = scanned if scanned else (order.strip(), code.strip())
    if not number or not typed:
        error: ParcoursError = Refused(TYPE_OR_SCAN)
        return _pickup_page(request, context, session, store, error=error)
    try:
        fulfilment = pickup.verify_pickup(session, context.now, counter.id, number, typed, actor)
    except ParcoursError as exc:
        return _pickup_page(request, context, session, store, error=exc)
    done = service.get_order(session, fulfilment.order_id)
    return _pickup_page(request, context, session, store, collected=done)


# ------------------------------------------------------------------ returns desk


def _returns_page(
    request: Request,
    context: ConsoleContext,
    session: Session,
    reference: str,
    *,
    error: ParcoursError | None = None,
) -> Response:
    order: Order | None = None
    lines: list[Any] = []
    announced: Return | None = None
    expected: dict[int, Any] = {}
    if reference:
        try:
            # Returns anywhere: any store's desk finds any order by the number the
            # customer brings (the order's own page stays limited to its stores).
            order = service.find_order(session, reference)
            lines = service.lines_of(session, order.id)
            announced = return_requests.open_request(session, order.id)
        except ParcoursError as exc:
            order, error = None, error or exc
    if announced is not None:
        # The customer said what comes back and why: the desk starts from that.
        line_nos = {line.id: line.line_no for line in lines}
        expected = {
            line_nos[row.order_line_id]: row
            for row in return_requests.request_lines(session, announced)
        }
    return render(
        request,
        context,
        "orders/returns_desk.html",
        status_code=error.status if error else 200,
        reference=reference,
        order=order,
        lines=lines,
        announced=announced,
        expected=expected,
        desks=_counter_stores(session, context),
        reasons=RETURN_REASONS,
        conditions=RETURN_CONDITIONS,
        error=error,
        money=_money(context),
    )


@router.get("/returns", response_class=HTMLResponse)
def returns_desk(
    request: Request, context: Console, session: DbSession, order: str = ""
) -> Response:
    require_role(context, "admin", "staff")
    return _returns_page(request, context, session, order.strip()[:200])


@router.post("/returns", response_class=HTMLResponse)
async def take_back(request: Request, context: VerifiedConsole, session: DbSession) -> Response:
    """Take goods back at a store's desk: per line a quantity, a reason and a condition."""
    actor = _staff_actor(context)
    form = await request.form()
    reference = str(form.get("order", "")).strip()[:200]
    order = service.find_order(session, reference)
    desk = next(
        (c for c in _counter_stores(session, context) if c.code == str(form.get("store", ""))),
        None,
    )
    if desk is None:
        raise SaidForbidden(NOT_YOUR_DESK)
    wanted = []
    for line in service.lines_of(session, order.id):
        quantity = str(form.get(f"quantity_{line.line_no}", "0")).strip() or "0"
        if not quantity.isdigit() or int(quantity) == 0:
            continue
        wanted.append(
            returns.ReturnLineInput(
                line.line_no,
                int(quantity),
                str(form.get(f"reason_{line.line_no}", "other")),
                str(form.get(f"condition_{line.line_no}", "resaleable")),
            )
        )
    if not wanted:
        error: ParcoursError = Refused(NO_UNIT)
        return _returns_page(request, context, session, reference, error=error)
    resolution = "exchange" if form.get("resolution") == "exchange" else "refund"
    try:
        with session.begin_nested():
            returns.receive_return(
                session, context.now, order, desk.id, wanted, actor, resolution=resolution
            )
    except ParcoursError as exc:
        return _returns_page(request, context, session, reference, error=exc)
    return RedirectResponse(f"/console/commerce/orders/{order.number}", status_code=303)
