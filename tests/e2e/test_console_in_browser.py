"""A person logs in to the console in Chromium, switches language and sees the home page."""

from __future__ import annotations

from typing import Any

import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders

pytestmark = pytest.mark.e2e


def test_log_in_switch_language_and_see_home(
    live_server: str, browser: Any, sqlite_db: Database, clock: ManualClock, tmp_path: Any
) -> None:
    builders.user(sqlite_db, clock, "camille", display_name="Camille Dupont")
    builders.add_store(sqlite_db, clock)
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors include Content-Security-Policy violations.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{live_server}/console/")
    assert "/console/login" in page.url
    assert page.locator("html").get_attribute("lang") == "fr"
    page.fill("input[name=username]", "camille")
    page.fill("input[name=password]", builders.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/console/")

    assert page.locator("h1").inner_text().endswith("Camille Dupont")
    assert page.locator('[data-counter="Stores"] .value').inner_text() == "1"
    assert page.get_by_role("button", name="Se déconnecter").is_visible()
    page.wait_for_selector("#counts-chart[data-rendered='1'] canvas")  # ECharts drew

    page.click("button[data-lang=en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("button", name="Log out").is_visible()
    assert page.get_by_role("link", name="Stores").first.is_visible()

    page.screenshot(path=str(tmp_path / "home.png"), full_page=True)
    assert errors == []
    context.close()
