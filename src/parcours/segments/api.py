"""REST API of the segments context."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
