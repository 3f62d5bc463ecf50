"""The catalogue in the console: search with facets, and a product's detail."""

import httpx
import pytest

from parcours import catalog
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.web.test_console import HTML, log_in

pytestmark = pytest.mark.anyio


async def test_a_user_searches_the_catalogue_and_opens_a_product(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    builders.add_product(db, clock, "NAPPE", name_fr="Nappe brodée", category="maison")
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "web", 8_990, sale_amount=6_990)
        catalog.set_listing(session, clock.now(), "ROBE-LIN", "web", True)
    await log_in(client)
    page = await client.get("/console/commerce/catalog", params={"q": "robe"}, headers=HTML)
    assert page.status_code == 200
    assert "ROBE-LIN" in page.text
    assert "NAPPE" not in page.text
    assert 'data-facet="brand"' in page.text
    filtered = await client.get(
        "/console/commerce/catalog", params={"category": "maison"}, headers=HTML
    )
    assert "NAPPE" in filtered.text
    assert "ROBE-LIN-S" not in filtered.text
    detail = await client.get("/console/commerce/catalog/ROBE-LIN", headers=HTML)
    assert detail.status_code == 200
    assert "ROBE-LIN-M" in detail.text
    assert "€69.90" in detail.text  # the sale price, the regular one struck through
    assert 'data-completeness="web-fr"' in detail.text
    french = await client.get(
        "/console/commerce/catalog/ROBE-LIN", headers={**HTML, "Accept-Language": "fr"}
    )
    assert "Variantes et prix" in french.text


async def test_an_unknown_product_page_is_a_404(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    page = await client.get("/console/commerce/catalog/NOPE", headers=HTML)
    assert page.status_code == 404
