"""The table of French cities, now owned by the stores context (re-exported for the demo)."""

from __future__ import annotations

from parcours.stores import City, french_cities

__all__ = ["City", "french_cities"]
