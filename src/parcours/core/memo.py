"""Small process-local caches whose entries expire, held by a `Database`.

For reads that hot paths repeat on every request and that change rarely (a write key's
id, a store code's id): each server process keeps what it read for a few seconds, so
a change made elsewhere shows within that time. Entries are bounded; when full, the
cache starts afresh.
"""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Expiring(Generic[K, V]):
    """A map whose entries are forgotten `seconds` after they were put (monotonic clock).

    Safe to share between threads: a race at worst reads the database twice."""

    def __init__(self, seconds: float, most: int = 10_000) -> None:
        self.seconds = seconds
        self.most = most
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, until = entry
        if until < time.monotonic():
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self.most:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + self.seconds)

    def clear(self) -> None:
        self._entries.clear()
