"""A seller prepares a click & collect order and hands it over at the pickup counter,
in a real Chromium (no script error, no Content-Security-Policy violation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.e2e.test_customer_pages import log_in, watch_errors
from tests.orders.conftest import build_shop
from tests.orders.order_builders import place_order

pytestmark = pytest.mark.e2e


def test_a_seller_prepares_a_pickup_and_hands_it_over_with_the_code(
    live_server: str, browser: Any, sqlite_db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    shop = build_shop(sqlite_db, clock)
    placed = place_order(shop, [("ROBE-LIN-S", 1)], at="LYO-1")
    assert placed.code is not None
    builders.user(sqlite_db, clock, "hugo", role="staff", store_ids=["LYO-1"])
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    errors = watch_errors(page)
    log_in(page, live_server, "hugo")

    page.get_by_role("navigation").get_by_role("link", name="Orders", exact=True).click()
    page.get_by_role("link", name=placed.number).click()
    assert "stock at LYO-1" in page.locator("main").inner_text()  # why routing chose it
    page.get_by_role("button", name="Mark as picking").click()
    page.get_by_role("button", name="Mark as ready for pickup").click()
    page.get_by_role("link", name="Hand over at the pickup counter").click()
    assert placed.number in page.locator("main table").inner_text()  # waiting here
    page.fill("input[name=order]", placed.number)
    page.fill("input[name=code]", placed.code.lower())  # as the customer reads it out
    page.get_by_role("button", name="Hand over").click()
    assert f"Order {placed.number} handed over." in page.locator("[role=status]").inner_text()
    assert "Nothing waits to be collected." in page.locator("main table").inner_text()
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2
    page.screenshot(path=str(tmp_path / "pickup.png"), full_page=True)
    assert errors == []
    context.close()
