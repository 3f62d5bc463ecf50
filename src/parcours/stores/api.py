"""REST endpoints of the store network and the store locator."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from parcours.core.audit import Actor
from parcours.core.deps import (
    ClockDep,
    DbSession,
    IdempotencyKey,
    api_caller,
    respond_once,
)
from parcours.stores import locator, service
from parcours.stores.schemas import (
    ExceptionIn,
    ExceptionOut,
    NearbyStoreOut,
    NearbyStores,
    StoreChanges,
    StoreIn,
    StoreOut,
    StorePage,
)

router = APIRouter(prefix="/v1/stores", tags=["stores"])
Reader = Annotated[Actor, Depends(api_caller("commerce:read"))]
Writer = Annotated[Actor, Depends(api_caller("commerce:write"))]


@router.get("", response_model=StorePage, summary="List stores and warehouses")
def list_stores(
    session: DbSession,
    _caller: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> StorePage:
    page = service.list_stores(session, cursor, limit)
    return StorePage(
        items=[StoreOut.model_validate(s) for s in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "",
    response_model=StoreOut,
    status_code=status.HTTP_201_CREATED,
    summary="Open a store or warehouse (send an Idempotency-Key to retry safely)",
)
def create_store(
    body: StoreIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    payload = body.model_dump()
    now = clock.now()

    def act() -> object:
        store = service.create_store(session, now, caller, payload)
        return StoreOut.model_validate(store).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, act)


def local_iso(value: datetime | None, timezone: str) -> str | None:
    return value.astimezone(ZoneInfo(timezone)).isoformat() if value else None


def nearby_out(found: locator.NearbyStore) -> NearbyStoreOut:
    out = NearbyStoreOut.model_validate(found)
    out.closes_at_local = local_iso(found.closes_at, found.timezone)
    out.next_opening_local = local_iso(found.next_opening, found.timezone)
    return out


@router.get("/nearest", response_model=NearbyStores, summary="Store locator: the nearest stores")
def nearest_stores(
    request: Request,
    session: DbSession,
    clock: ClockDep,
    _caller: Reader,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    postcode: Annotated[str | None, Query(max_length=10)] = None,
    city: Annotated[str | None, Query(max_length=120)] = None,
    service_code: Annotated[str | None, Query(alias="service")] = None,
    sku: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=locator.MAX_LIMIT)] = 5,
) -> NearbyStores:
    """Search around coordinates, a French postcode (exact, else its department) or a city.

    `sku` adds the units available to promise in each store.
    """
    centre = locator.resolve_place(lat, lon, postcode, city)
    found = locator.nearest_stores(
        session,
        centre,
        clock.now(),
        limit,
        service_code or None,
        sku or None,
        request.app.state.stock_lookup,
    )
    return NearbyStores(lat=centre.lat, lon=centre.lon, items=[nearby_out(f) for f in found])


@router.get("/{store_id}", response_model=StoreOut, summary="One store")
def get_store(store_id: uuid.UUID, session: DbSession, _caller: Reader) -> StoreOut:
    return StoreOut.model_validate(service.get_store(session, store_id))


@router.patch("/{store_id}", response_model=StoreOut, summary="Change a store's details")
def update_store(
    store_id: uuid.UUID, body: StoreChanges, session: DbSession, clock: ClockDep, caller: Writer
) -> StoreOut:
    changes = body.model_dump(exclude_unset=True)
    return StoreOut.model_validate(
        service.update_store(session, clock.now(), caller, store_id, changes)
    )


@router.post(
    "/{store_id}/deactivate", response_model=StoreOut, summary="Take a store out of the network"
)
def deactivate_store(
    store_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Writer
) -> StoreOut:
    return StoreOut.model_validate(service.deactivate_store(session, clock.now(), caller, store_id))


@router.get(
    "/{store_id}/exceptions",
    response_model=list[ExceptionOut],
    summary="A store's holidays and special openings",
)
def list_exceptions(
    store_id: uuid.UUID, session: DbSession, _caller: Reader, since: date | None = None
) -> list[ExceptionOut]:
    service.get_store(session, store_id)
    return [
        ExceptionOut.model_validate(e) for e in service.list_exceptions(session, store_id, since)
    ]


@router.put(
    "/{store_id}/exceptions/{day}",
    response_model=ExceptionOut,
    summary="Close a store on a date or give it special hours",
)
def set_exception(
    store_id: uuid.UUID,
    day: date,
    body: ExceptionIn,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
) -> ExceptionOut:
    row = {"day": day, **body.model_dump(exclude_none=True)}
    exception = service.set_exception(session, clock.now(), caller, store_id, row)
    return ExceptionOut.model_validate(exception)


@router.delete(
    "/{store_id}/exceptions/{day}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop a date's exception (weekly hours apply again)",
)
def remove_exception(
    store_id: uuid.UUID, day: date, session: DbSession, clock: ClockDep, caller: Writer
) -> Response:
    service.remove_exception(session, clock.now(), caller, store_id, day)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
