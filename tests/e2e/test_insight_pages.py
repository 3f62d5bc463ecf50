"""A marketer reads the insight dashboards in a real Chromium: the charts draw (ECharts
renders a canvas from each chart's JSON), a store link drills down, and no script error
or Content-Security-Policy violation happens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.analytics import kpi_data
from tests.e2e.test_customer_pages import log_in, watch_errors

pytestmark = pytest.mark.e2e
MARCH = "start=2026-03-01&end=2026-03-31&grain=week"


def test_a_marketer_reads_the_dashboards_and_drills_down_to_a_store(
    live_server: str, browser: Any, sqlite_db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    kpi_data.build(sqlite_db)
    builders.user(sqlite_db, clock, "ines", role="marketer")
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    errors = watch_errors(page)
    log_in(page, live_server, "ines")

    page.goto(f"{live_server}/console/insight?{MARCH}")
    page.locator("#trend-chart canvas").wait_for()
    page.locator("#store-chart canvas").wait_for()
    assert "€230.00" in page.locator("#kpi-tiles").inner_text()
    page.locator("table[data-table=stores]").get_by_role("link", name="PAR-1").click()
    page.wait_for_url(lambda url: "store=PAR-1" in url)
    assert "€100.00" in page.locator("#kpi-tiles").inner_text()
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    for path, chart in (
        ("funnel", "#funnel-chart"),
        ("paths", "#paths-chart"),
        ("attribution", "#attribution-chart"),
        ("value", "#cohort-chart"),
    ):
        page.goto(f"{live_server}/console/insight/{path}?{MARCH}")
        page.locator(f"{chart} canvas").wait_for()
    assert errors == []
    context.close()
