"""Tables of the insight context."""

from __future__ import annotations
