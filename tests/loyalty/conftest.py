"""The orders test shop with the promotions engine installed (and removed after)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from parcours import loyalty, orders
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.loyalty import promotions
from tests.orders.conftest import Shop, build_shop


@pytest.fixture(autouse=True)
def engine_installed() -> Iterator[None]:
    previous = orders.set_promotion_hook(loyalty.promotion_engine())
    yield
    orders.set_promotion_hook(previous)


@pytest.fixture
def shop(db: Database, clock: ManualClock) -> Shop:
    return build_shop(db, clock)


@pytest.fixture
def sqlite_shop(sqlite_db: Database, clock: ManualClock) -> Shop:
    return build_shop(sqlite_db, clock)


def add_promotion(shop: Shop, key: str = "spring-10", **data: Any) -> None:
    values: dict[str, Any] = {
        "key": key, "name_fr": "Printemps", "name_en": "Spring", "kind": "percent_off",
        "percent_bp": 1000,
    }  # fmt: skip
    values.update(data)
    with shop.db.transaction() as session:
        promotions.add_promotion(session, shop.clock.now(), values)


def when(shop: Shop) -> datetime:
    return shop.clock.now()
