"""Tables of the engagement context."""

from __future__ import annotations
