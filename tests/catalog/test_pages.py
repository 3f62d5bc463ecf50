"""The catalogue in the console: search with facets, and a product's detail."""

import httpx
import pytest

from parcours import catalog
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.web.test_console import HTML, csrf_in, log_in

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


async def test_the_one_voice_page_lists_differences_and_aligns_a_price(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    with db.transaction() as session:
        for channel in ("web", "store"):
            catalog.set_listing(session, clock.now(), "ROBE-LIN", channel, True)
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "web", 8_990)
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "store", 9_490)
        catalog.set_listing_texts(session, clock.now(), "ROBE-LIN", "store", {"name_fr": "Robe"})
    await log_in(client)
    page = await client.get("/console/commerce/one-voice", headers=HTML)
    assert page.status_code == 200
    assert 'data-finding="ROBE-LIN-price-store"' in page.text
    assert 'data-finding="ROBE-LIN-name-store"' in page.text
    assert "€94.90" in page.text
    forged = await client.post(
        "/console/commerce/one-voice/align-price",
        data={"sku": "ROBE-LIN-S", "channel": "store", "reference": "web", "csrf_token": "x"},
        headers=HTML,
    )
    assert forged.status_code == 403
    aligned = await client.post(
        "/console/commerce/one-voice/align-price",
        data={
            "sku": "ROBE-LIN-S",
            "channel": "store",
            "reference": "web",
            "back": "/console/commerce/one-voice?field=price",
            "csrf_token": csrf_in(page.text),
        },
        headers=HTML,
    )
    assert aligned.status_code == 303
    assert aligned.headers["location"] == "/console/commerce/one-voice?field=price"
    removed = await client.post(
        "/console/commerce/one-voice/remove-text",
        data={
            "product": "ROBE-LIN",
            "channel": "store",
            "field": "name",
            "locale": "fr",
            "back": "https://evil.example/",
            "csrf_token": csrf_in(page.text),
        },
        headers=HTML,
    )
    assert removed.headers["location"] == "/console/commerce/one-voice"
    french = await client.get(
        "/console/commerce/one-voice", headers={**HTML, "Accept-Language": "fr"}
    )
    assert "Tous les canaux parlent d’une seule voix." in french.text
    with db.transaction() as session:
        assert catalog.current_price(session, "ROBE-LIN-S", "store", clock.now()).incl_vat == 8_990


async def test_only_admins_may_fix_from_the_one_voice_page(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer")
    builders.catalog_basics(db, clock)
    await log_in(client)
    page = await client.get("/console/commerce/one-voice", headers=HTML)
    assert page.status_code == 200
    refused = await client.post(
        "/console/commerce/one-voice/align-price",
        data={
            "sku": "ROBE-LIN-S",
            "channel": "store",
            "reference": "web",
            "csrf_token": csrf_in(page.text),
        },
        headers=HTML,
    )
    assert refused.status_code == 403


FRENCH = {**HTML, "Accept-Language": "fr"}


async def test_the_catalogue_pages_say_their_refusals_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    with db.transaction() as session:
        catalog.add_channel(session, clock.now(), {"code": "us", "kind": "web", "currency": "USD"})
        for channel in ("web", "store"):
            catalog.set_listing(session, clock.now(), "ROBE-LIN", channel, True)
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "web", 8_990)
    await log_in(client)
    unknown = await client.get("/console/commerce/catalog/NOPE", headers=FRENCH)
    assert unknown.status_code == 404
    assert "Aucun produit n’a le code &#39;NOPE&#39;." in unknown.text
    page = await client.get("/console/commerce/one-voice?channel=nope", headers=FRENCH)
    assert page.status_code == 404
    assert "Aucun canal n’a le code &#39;nope&#39;." in page.text
    field = await client.get("/console/commerce/one-voice?field=colour", headers=FRENCH)
    assert field.status_code == 422
    assert "Champ inconnu." in field.text
    token = csrf_in((await client.get("/console/commerce/one-voice", headers=FRENCH)).text)
    align = {"sku": "ROBE-LIN-S", "channel": "web", "reference": "store", "csrf_token": token}
    no_price = await client.post(
        "/console/commerce/one-voice/align-price", data=align, headers=FRENCH
    )
    assert no_price.status_code == 404
    assert (
        "La référence &#39;ROBE-LIN-S&#39; n’a pas de prix sur le canal &#39;store&#39; "
        "pour s’y aligner." in no_price.text
    )
    dollars = await client.post(
        "/console/commerce/one-voice/align-price", data={**align, "channel": "us"}, headers=FRENCH
    )
    assert dollars.status_code == 409
    assert (
        "us vend en USD et store en EUR : un prix ne peut pas être copié d’une devise à l’autre."
        in dollars.text
    )
    no_sku = await client.post(
        "/console/commerce/one-voice/align-price",
        data={**align, "sku": "NOPE-S", "reference": "web", "channel": "store"},
        headers=FRENCH,
    )
    assert "Aucune variante n’a la référence &#39;NOPE-S&#39;." in no_sku.text
    remove = {"product": "ROBE-LIN", "channel": "store", "field": "name", "locale": "fr",
              "csrf_token": token}  # fmt: skip
    nothing = await client.post(
        "/console/commerce/one-voice/remove-text", data=remove, headers=FRENCH
    )
    assert nothing.status_code == 409
    assert "Le référencement sur store n’a pas de name propre en fr à supprimer." in nothing.text
    media = await client.post(
        "/console/commerce/one-voice/remove-text", data={**remove, "field": "media"}, headers=FRENCH
    )
    assert media.status_code == 422
    assert (
        "Seuls un nom ou une description en français ou en anglais peuvent être supprimés."
        in media.text
    )
    unlisted = await client.post(
        "/console/commerce/one-voice/remove-text",
        data={**remove, "channel": "marketplace"},
        headers=FRENCH,
    )
    assert (
        "Le produit &#39;ROBE-LIN&#39; n’est pas référencé sur le canal &#39;marketplace&#39;."
        in unlisted.text
    )


async def test_the_catalogue_pages_keep_their_refusals_in_english_for_an_english_reader(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    page = await client.get("/console/commerce/catalog/NOPE", headers=HTML)
    assert "No product has the code &#39;NOPE&#39;." in page.text
