"""Tables of the segments context."""

from __future__ import annotations
