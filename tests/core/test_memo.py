"""Process-local caches whose entries expire."""

from __future__ import annotations

import pytest

from parcours.core import memo
from parcours.core.db import Database


def test_an_entry_is_forgotten_after_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("parcours.core.memo.time.monotonic", lambda: now[0])
    cache: memo.Expiring[str, int] = memo.Expiring(5.0)
    cache.put("a", 1)
    now[0] = 105.0
    assert cache.get("a") == 1
    now[0] = 105.1
    assert cache.get("a") is None
    assert cache.get("never put") is None


def test_a_full_cache_starts_afresh() -> None:
    cache: memo.Expiring[int, int] = memo.Expiring(60.0, most=3)
    for n in range(3):
        cache.put(n, n)
    cache.put(3, 3)
    assert [cache.get(n) for n in range(4)] == [None, None, None, 3]


def test_each_database_has_its_own_caches() -> None:
    first = Database.connect("sqlite://")
    second = Database.connect("sqlite://")
    first.cache("keys", 5.0).put("k", 1)
    assert first.cache("keys", 5.0).get("k") == 1
    assert second.cache("keys", 5.0).get("k") is None
