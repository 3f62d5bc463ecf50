"""REST API of the loyalty context."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
