"""REST endpoints (filled by the tracking work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
