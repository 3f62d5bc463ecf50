"""Console pages of the engagement context."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
