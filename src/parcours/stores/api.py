"""REST endpoints of the store network."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from parcours.core.audit import Actor
from parcours.core.deps import DbSession, api_caller
from parcours.stores import service
from parcours.stores.schemas import StoreOut, StorePage

router = APIRouter(prefix="/v1/stores", tags=["stores"])
Reader = Annotated[Actor, Depends(api_caller("commerce:read"))]


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


@router.get("/{store_id}", response_model=StoreOut, summary="One store")
def get_store(store_id: uuid.UUID, session: DbSession, _caller: Reader) -> StoreOut:
    return StoreOut.model_validate(service.get_store(session, store_id))
