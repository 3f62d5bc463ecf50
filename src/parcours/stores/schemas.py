"""API shapes of the store network."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict


class StoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    kind: str
    address: str
    postcode: str
    city: str
    country: str
    lat: float
    lon: float
    timezone: str
    phone: str | None
    opening_hours: dict[str, Any]
    services: list[str]


class StorePage(BaseModel):
    items: list[StoreOut]
    next_cursor: str | None
