"""API shapes of the store network."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    email: str | None = None
    opening_hours: dict[str, Any]
    services: list[str]
    active: bool = True


class StorePage(BaseModel):
    items: list[StoreOut]
    next_cursor: str | None


class StoreIn(BaseModel):
    """A new store or warehouse. Hours are local times: {"mon": [["09:30", "19:00"]]}."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=32)
    name: str = Field(max_length=200)
    kind: str = "store"
    address: str = Field(max_length=300)
    postcode: str = Field(max_length=12)
    city: str = Field(max_length=120)
    country: str = Field(default="FR", min_length=2, max_length=2)
    lat: float
    lon: float
    timezone: str = "Europe/Paris"
    phone: str | None = None
    email: str | None = Field(default=None, max_length=200)
    opening_hours: dict[str, Any] = Field(default_factory=dict)
    services: list[str] = Field(default_factory=list)


class StoreChanges(BaseModel):
    """Fields to change; the ones left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=200)
    kind: str | None = None
    address: str | None = Field(default=None, max_length=300)
    postcode: str | None = Field(default=None, max_length=12)
    city: str | None = Field(default=None, max_length=120)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    lat: float | None = None
    lon: float | None = None
    timezone: str | None = None
    phone: str | None = None
    email: str | None = Field(default=None, max_length=200)
    opening_hours: dict[str, Any] | None = None
    services: list[str] | None = None


class ExceptionIn(BaseModel):
    """A dated exception: closed all day, or special hours [["10:00", "13:00"]]."""

    model_config = ConfigDict(extra="forbid")

    closed: bool | None = None
    hours: list[Any] = Field(default_factory=list)
    label: str = Field(default="", max_length=120)


class ExceptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date
    closed: bool
    hours: list[list[str]]
    label: str


class NearbyStoreOut(BaseModel):
    """A locator answer; `*_local` fields are ISO times in the store's own zone."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    address: str
    postcode: str
    city: str
    lat: float
    lon: float
    timezone: str
    phone: str | None
    email: str | None
    services: list[str]
    opening_hours: dict[str, Any]
    distance_km: float
    open_now: bool
    closes_at: datetime | None
    closes_at_local: str | None = None
    next_opening: datetime | None
    next_opening_local: str | None = None
    stock: int | None = None


class NearbyStores(BaseModel):
    lat: float
    lon: float
    items: list[NearbyStoreOut]
