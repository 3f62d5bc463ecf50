"""Console pages of the stock: stock by location for a SKU, and its movement history."""

from __future__ import annotations

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.web.test_console import HTML, log_in

pytestmark = pytest.mark.anyio


async def test_the_stock_page_shows_each_location_and_links_to_the_history(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    lyon = builders.location(db, clock, "LYO-1")
    builders.location(db, clock, "WH-01", kind="warehouse")
    builders.receive(db, clock, "LAV-7", lyon, 6)
    await log_in(client)
    empty = await client.get("/console/commerce/stock", headers=HTML)
    assert empty.status_code == 200
    assert 'name="sku"' in empty.text
    page = await client.get("/console/commerce/stock", params={"sku": "LAV-7"}, headers=HTML)
    assert "LYO-1" in page.text
    assert "WH-01" not in page.text
    assert "<strong>6</strong>" in page.text
    history = await client.get(
        "/console/commerce/stock/movements", params={"sku": "LAV-7"}, headers=HTML
    )
    assert history.status_code == 200
    assert "+6" in history.text
    assert "receipt" in history.text
    none = await client.get("/console/commerce/stock", params={"sku": "NOPE"}, headers=HTML)
    assert "No location holds this SKU." in none.text


async def test_the_stock_page_speaks_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, locale="fr")
    await log_in(client)
    page = await client.get(
        "/console/commerce/stock", params={"sku": "X"}, headers={"Accept": "text/html"}
    )
    assert "Disponible à la vente" in page.text


async def test_a_bad_page_cursor_is_refused_in_the_readers_language(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, locale="fr")
    await log_in(client)
    url, params = "/console/commerce/stock/movements", {"sku": "LAV-7", "cursor": "%%%"}
    french = await client.get(url, params=params, headers=HTML)
    assert french.status_code == 422
    assert "Ce curseur de page n’a pas été donné par cette liste" in french.text
