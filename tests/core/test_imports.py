"""What every file import shares: the collector paused for a bulk load."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from parcours.core.imports import collector_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_the_collector_is_paused_during_a_load_and_resumed_after() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_resumed_when_the_load_fails() -> None:
    gc.enable()
    with pytest.raises(ValueError, match="bad file"), collector_paused():
        raise ValueError("bad file")
    assert gc.isenabled()


def test_a_collector_paused_by_the_caller_stays_paused() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
