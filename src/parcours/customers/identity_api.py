"""REST endpoints (filled by the identity work)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
