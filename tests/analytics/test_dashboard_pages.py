"""The insight console pages: KPIs of the hand-built shop by channel, store and category,
drill-down by filters, CSV downloads, and bad filters refused."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from parcours.app import create_app
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.analytics import kpi_data
from tests.conftest import BACKENDS, fresh_database_url, make_settings
from tests.web.test_console import HTML, log_in

pytestmark = pytest.mark.anyio
MARCH = {"start": "2026-03-01", "end": "2026-03-31", "grain": "week"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module-wide, so that the logged-in console below is shared by the tests."""
    return "asyncio"


@pytest.fixture(scope="module", params=BACKENDS)
def shop_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """The hand-built shop of tests/analytics/kpi_data.py and a marketer, built once per
    backend for the tests that only read the pages."""
    folder = tmp_path_factory.mktemp(f"insight-shop-{request.param}")
    db = Database.connect(fresh_database_url(request, request.param, folder))
    kpi_data.build(db)
    builders.user(db, ManualClock(kpi_data.NOW), role="marketer")
    yield db
    db.dispose()


@pytest.fixture(scope="module")
async def marketer(
    shop_db: Database, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The console on the shared shop with the marketer logged in, shared by the tests
    that only read pages."""
    settings = make_settings(tmp_path_factory.mktemp("insight-console"), shop_db)
    app = create_app(settings, shop_db, ManualClock(kpi_data.NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parcours.test") as http:
        await log_in(http)
        yield http


async def test_the_overview_shows_the_shops_kpis_by_channel_and_store(
    marketer: httpx.AsyncClient,
) -> None:
    page = await marketer.get("/console/insight", params=MARCH, headers=HTML)
    assert page.status_code == 200, page.text
    assert 'data-metric="sales"' in page.text
    assert "€230.00" in page.text  # 23,000 cents of merchandise in the month
    assert 'id="trend-chart"' in page.text
    assert "LYO-1" in page.text
    assert "PAR-1" in page.text
    assert "Robes" in page.text
    assert "Accessoires" in page.text


async def test_a_store_link_drills_down_to_that_store(marketer: httpx.AsyncClient) -> None:
    page = await marketer.get("/console/insight", params={**MARCH, "store": "PAR-1"}, headers=HTML)
    assert page.status_code == 200, page.text
    assert (
        "€100.00" in page.text
    )  # PAR-1: the drive order collected there (70) and a till sale (30)
    download = await marketer.get(
        "/console/insight", params={**MARCH, "store": "PAR-1", "download": "stores"}, headers=HTML
    )
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert download.headers["content-type"].startswith("text/csv")
    assert [r["store"] for r in rows] == ["PAR-1"]


async def test_channel_figures_download_as_csv_in_cents(marketer: httpx.AsyncClient) -> None:
    response = await marketer.get(
        "/console/insight", params={**MARCH, "download": "channels"}, headers=HTML
    )
    assert response.status_code == 200
    rows = {r["channel"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert rows["web"]["sales"] == "19000"
    assert rows["store"]["sales"] == "4000"
    assert rows["store"]["orders"] == "2"


async def test_an_empty_period_shows_dashes_not_nan(marketer: httpx.AsyncClient) -> None:
    page = await marketer.get(
        "/console/insight", params={"start": "2020-01-01", "end": "2020-01-31"}, headers=HTML
    )
    assert page.status_code == 200
    assert "NaN" not in page.text
    assert "nan" not in page.text.lower().split("<script")[0]
    assert "No sale in this period." in page.text


async def test_bad_filters_are_refused_with_the_reason(marketer: httpx.AsyncClient) -> None:
    page = await marketer.get("/console/insight", params={"start": "yesterday"}, headers=HTML)
    assert page.status_code == 422
    assert "2026-01-31" in page.text
    reversed_range = await marketer.get(
        "/console/insight", params={"start": "2026-03-10", "end": "2026-03-01"}, headers=HTML
    )
    assert reversed_range.status_code == 422


async def test_store_staff_cannot_open_the_insight_pages(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="staff", store_ids=["LYO-1"])
    await log_in(client)
    page = await client.get("/console/insight", headers=HTML)
    assert page.status_code == 403


async def test_the_funnel_page_counts_visitors_at_each_journey_stage(
    marketer: httpx.AsyncClient,
) -> None:
    page = await marketer.get("/console/insight/funnel", params=MARCH, headers=HTML)
    assert page.status_code == 200, page.text
    assert 'id="funnel-chart"' in page.text
    custom = await marketer.get(
        "/console/insight/funnel",
        params={
            **MARCH,
            "steps": "Product Viewed\nProduct Added\nOrder Completed",
            "by": "channel",
        },
        headers=HTML,
    )
    assert custom.status_code == 200, custom.text
    assert "Product Added" in custom.text
    download = await marketer.get(
        "/console/insight/funnel",
        params={
            **MARCH,
            "steps": "Product Viewed\nOrder Completed",
            "by": "channel",
            "download": "funnel",
        },
        headers=HTML,
    )
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {r["channel"] for r in rows} >= {"web"}


async def test_a_funnel_of_one_step_is_refused(marketer: httpx.AsyncClient) -> None:
    page = await marketer.get(
        "/console/insight/funnel", params={"steps": "Order Completed"}, headers=HTML
    )
    assert page.status_code == 422
    assert "at least two steps" in page.text


async def test_the_paths_page_lists_paths_with_offline_touches(marketer: httpx.AsyncClient) -> None:
    page = await marketer.get("/console/insight/paths", params=MARCH, headers=HTML)
    assert page.status_code == 200, page.text
    assert 'id="paths-chart"' in page.text
    download = await marketer.get(
        "/console/insight/paths", params={**MARCH, "download": "paths"}, headers=HTML
    )
    paths = {r["path"] for r in csv.DictReader(io.StringIO(download.text))}
    assert "web" in paths


async def test_the_attribution_page_credits_channels_under_every_model(
    marketer: httpx.AsyncClient,
) -> None:
    page = await marketer.get(
        "/console/insight/attribution", params={**MARCH, "order": 2}, headers=HTML
    )
    assert page.status_code == 200, page.text
    assert 'id="attribution-chart"' in page.text
    download = await marketer.get(
        "/console/insight/attribution", params={**MARCH, "download": "attribution"}, headers=HTML
    )
    rows = {r["channel"]: r for r in csv.DictReader(io.StringIO(download.text))}
    assert "web" in rows
    total = sum(float(r["last_conversions"]) for r in rows.values())
    assert total == pytest.approx(sum(float(r["markov_conversions"]) for r in rows.values()))
    refused = await marketer.get("/console/insight/attribution", params={"order": 7}, headers=HTML)
    assert refused.status_code == 422


async def test_the_value_page_shows_cohorts_segments_and_explains_a_missing_clv(
    marketer: httpx.AsyncClient,
) -> None:
    page = await marketer.get("/console/insight/value", params=MARCH, headers=HTML)
    assert page.status_code == 200, page.text
    assert 'id="cohort-chart"' in page.text
    assert 'id="rfm-chart"' in page.text
    assert "Lifetime value needs at least" in page.text  # two buyers are too few to fit
    download = await marketer.get(
        "/console/insight/value", params={**MARCH, "download": "rfm"}, headers=HTML
    )
    assert len(list(csv.DictReader(io.StringIO(download.text)))) == 2


async def test_a_filter_with_quotes_is_a_value_not_sql(marketer: httpx.AsyncClient) -> None:
    page = await marketer.get(
        "/console/insight",
        params={**MARCH, "store": "x' OR '1'='1", "download": "stores"},
        headers=HTML,
    )
    assert page.status_code == 200
    assert list(csv.DictReader(io.StringIO(page.text))) == []  # no store has that code
