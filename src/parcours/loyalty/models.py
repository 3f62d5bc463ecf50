"""Tables of the loyalty context."""

from __future__ import annotations
