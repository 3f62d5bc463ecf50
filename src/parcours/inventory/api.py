"""REST endpoints of the stock ledger, reservations and availability (`/v1/inventory`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.deps import (
    ClockDep,
    DbSession,
    IdempotencyKey,
    api_caller,
    respond_once,
)
from parcours.inventory import service
from parcours.inventory.schemas import (
    ChannelAvailability,
    ChannelRuleIn,
    ChannelRuleOut,
    ConsumeIn,
    MovementBatch,
    MovementList,
    MovementOut,
    MovementPage,
    ReservationIn,
    ReservationOut,
    SkuAvailability,
    SkuStock,
    StockLevelOut,
    StockLevelPage,
    TransferIn,
)

router = APIRouter(prefix="/v1/inventory", tags=["inventory"])
Reader = Annotated[Actor, Depends(api_caller("commerce:read"))]
Writer = Annotated[Actor, Depends(api_caller("commerce:write"))]
Limit = Annotated[int, Query(ge=1, le=500)]


def _movements_body(movements: list[Any]) -> dict[str, Any]:
    out = MovementList(movements=[MovementOut.model_validate(m) for m in movements])
    return out.model_dump(mode="json")


@router.post(
    "/movements",
    response_model=MovementList,
    status_code=status.HTTP_201_CREATED,
    summary="Record stock movements (all or nothing)",
)
def record_movements(
    body: MovementBatch,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()
    moves = [service.MovementInput(**m.model_dump()) for m in body.movements]
    return respond_once(
        request,
        session,
        now,
        caller,
        idempotency_key,
        body,
        lambda: _movements_body(service.record_movements(session, now, moves)),
    )


@router.post(
    "/transfers",
    response_model=MovementList,
    status_code=status.HTTP_201_CREATED,
    summary="Move units between two locations (a transfer out and a transfer in)",
)
def transfer(
    body: TransferIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def act() -> dict[str, Any]:
        moved = service.transfer(
            session,
            now,
            body.sku,
            body.from_location_id,
            body.to_location_id,
            body.quantity,
            body.reference,
        )
        return _movements_body(moved)

    return respond_once(request, session, now, caller, idempotency_key, body, act)


@router.get("/stock", response_model=SkuStock, summary="Stock of one SKU at every location")
def sku_stock(
    session: DbSession, _caller: Reader, sku: Annotated[str, Query(min_length=1, max_length=64)]
) -> SkuStock:
    levels = service.stock_for_sku(session, sku)
    return SkuStock(sku=sku, locations=[StockLevelOut.model_validate(lvl) for lvl in levels])


@router.get(
    "/locations/{location_id}/stock",
    response_model=StockLevelPage,
    summary="Stock held at one location",
)
def location_stock(
    location_id: uuid.UUID,
    session: DbSession,
    _caller: Reader,
    cursor: str | None = None,
    limit: Limit = 100,
) -> StockLevelPage:
    service.require_location(session, location_id)
    page = service.stock_at_location(session, location_id, cursor, limit)
    return StockLevelPage(
        items=[StockLevelOut.model_validate(lvl) for lvl in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/movements", response_model=MovementPage, summary="Movement history of one SKU")
def movement_history(
    session: DbSession,
    _caller: Reader,
    sku: Annotated[str, Query(min_length=1, max_length=64)],
    location_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> MovementPage:
    page = service.movement_history(session, sku, cursor, limit, location_id)
    return MovementPage(
        items=[MovementOut.model_validate(m) for m in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/reservations",
    response_model=ReservationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Reserve units (201; 200 when this reservation id already exists)",
    responses={409: {"description": "Not enough available: the problem holds `available`."}},
)
def create_reservation(
    body: ReservationIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def act() -> dict[str, Any]:
        result = service.reserve(
            session,
            now,
            body.sku,
            body.location_id,
            body.quantity,
            body.kind,
            reservation_id=body.id,
            reference=body.reference,
            expires_at=body.expires_at,
        )
        return ReservationOut.model_validate(result.reservation).model_dump(mode="json")

    existing = service.find_reservation(session, body.id) if body.id else None
    if existing is not None:
        return JSONResponse(act(), status_code=status.HTTP_200_OK)
    return respond_once(request, session, now, caller, idempotency_key, body, act)


@router.get(
    "/reservations/{reservation_id}", response_model=ReservationOut, summary="One reservation"
)
def get_reservation(
    reservation_id: uuid.UUID, session: DbSession, _caller: Reader
) -> ReservationOut:
    return ReservationOut.model_validate(service.get_reservation(session, reservation_id))


@router.post(
    "/reservations/{reservation_id}/release",
    response_model=ReservationOut,
    summary="Release a reservation (harmless when already released)",
)
def release_reservation(
    reservation_id: uuid.UUID, session: DbSession, clock: ClockDep, _caller: Writer
) -> ReservationOut:
    return ReservationOut.model_validate(service.release(session, clock.now(), reservation_id))


@router.post(
    "/reservations/{reservation_id}/consume",
    response_model=ReservationOut,
    summary="Turn a reservation into a sale (harmless when already consumed)",
)
def consume_reservation(
    reservation_id: uuid.UUID,
    session: DbSession,
    clock: ClockDep,
    _caller: Writer,
    body: ConsumeIn | None = None,
) -> ReservationOut:
    reference = body.reference if body else None
    consumed = service.consume(session, clock.now(), reservation_id, reference)
    return ReservationOut.model_validate(consumed)


@router.get(
    "/availability",
    response_model=ChannelAvailability,
    summary="Units each SKU may be promised on a channel",
)
def availability(
    session: DbSession,
    _caller: Reader,
    channel: Annotated[str, Query(min_length=1, max_length=32)],
    sku: Annotated[list[str], Query(min_length=1, max_length=500)],
) -> ChannelAvailability:
    found = service.available_to_promise(session, sku, channel)
    return ChannelAvailability(
        channel=channel,
        items=[SkuAvailability(sku=s, available=n) for s, n in found.items()],
    )


@router.get(
    "/channel-rules", response_model=list[ChannelRuleOut], summary="Channel allocation rules"
)
def channel_rules(session: DbSession, _caller: Reader) -> list[ChannelRuleOut]:
    return [ChannelRuleOut(**vars(rule)) for rule in service.list_channel_rules(session)]


@router.put(
    "/channel-rules/{channel}",
    response_model=ChannelRuleOut,
    summary="Set which locations a channel may promise from",
)
def set_channel_rule(
    channel: str, body: ChannelRuleIn, session: DbSession, clock: ClockDep, caller: Writer
) -> ChannelRuleOut:
    now = clock.now()
    rule = service.set_channel_rule(session, now, service.ChannelRule(channel, **body.model_dump()))
    audit.record(
        session, now, caller, "inventory.channel_rule.set", "channel", channel, **body.model_dump()
    )
    return ChannelRuleOut(**vars(rule))
