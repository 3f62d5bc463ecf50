"""The public store locator page and the console's store pages."""

from datetime import date

import httpx
import pytest

from parcours import stores
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio


def lyon_and_paris(db: Database, clock: ManualClock) -> None:
    builders.add_store(
        db,
        clock,
        "LYO-1",
        phone="+33 4 72 00 00 00",
        email="lyon@maison-lavande.example",
        services=["click_and_collect", "drive"],
        opening_hours={"sat": [["09:30", "19:30"]]},  # the clock says Saturday 10:30
    )
    builders.add_store(db, clock, "PAR-1", lat=48.8566, lon=2.3522, city="Paris", postcode="75001")


async def test_anyone_finds_stores_without_logging_in(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon_and_paris(db, clock)
    page = await client.get("/stores?q=lyon", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert page.status_code == 200
    assert "Find a store" in page.text
    assert page.text.index('data-store="LYO-1"') < page.text.index('data-store="PAR-1"')
    assert "lyon@maison-lavande.example" in page.text
    assert "Open now" in page.text
    assert "closes at" in page.text
    assert "csrf_token" not in page.text
    assert "/console/" not in page.text  # no console navigation, no user data


async def test_the_locator_page_speaks_french_by_default_and_switches_language(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon_and_paris(db, clock)
    french = await client.get("/stores?q=75001", headers={"Accept-Language": "fr-FR"})
    assert "Trouver un magasin" in french.text
    assert "Ouvert" in french.text or "Fermé" in french.text
    english = await client.get("/stores?q=75001&lang=en", headers={"Accept-Language": "fr-FR"})
    assert "Find a store" in english.text
    assert 'href="?q=75001&amp;lang=fr"' in english.text


async def test_the_locator_page_filters_by_service_and_shows_stock(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon_and_paris(db, clock)
    app = client._transport.app  # type: ignore[attr-defined]
    app.state.stock_lookup = lambda session, sku, ids: {ids[0]: 2}
    page = await client.get("/stores?q=Paris&service=drive&sku=LAV-001&lang=en")
    assert 'data-store="LYO-1"' in page.text
    assert 'data-store="PAR-1"' not in page.text
    assert "In stock: 2" in page.text


async def test_the_locator_page_explains_a_search_it_cannot_place(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/stores?q=Atlantis&lang=en")
    assert page.status_code == 404
    assert "Atlantis" in page.text
    empty = await client.get("/stores?lang=en")
    assert empty.status_code == 200
    assert "No store matches" not in empty.text


async def test_staff_see_a_store_but_only_admins_edit_it(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon_and_paris(db, clock)
    builders.user(db, clock, "hugo", role="staff", store_ids=["LYO-1"])
    await log_in(client, "hugo")
    page = await client.get("/console/commerce/stores/LYO-1", headers=HTML)
    assert page.status_code == 200
    assert "lyon@maison-lavande.example" in page.text
    assert 'name="hours_mon"' not in page.text
    refused = await client.post(
        "/console/commerce/stores/LYO-1/deactivate",
        data={"csrf_token": csrf_in(await _any_form(client))},
        headers=HTML,
    )
    assert refused.status_code == 403


async def _any_form(client: httpx.AsyncClient) -> str:
    return (await client.get("/console/", headers=HTML)).text


async def test_an_admin_edits_hours_and_adds_a_holiday(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon_and_paris(db, clock)
    builders.user(db, clock)
    await log_in(client)
    page = await client.get("/console/commerce/stores/LYO-1", headers=HTML)
    token = csrf_in(page.text)
    form = {
        "csrf_token": token,
        "name": "Maison Lavande Lyon",
        "address": "1 place Bellecour",
        "phone": "",
        "email": "lyon@maison-lavande.example",
        "services": ["click_and_collect", "returns"],
        "hours_tue": "09:30-12:30, 14:00-19:00",
        "hours_sat": "09:30-19:30",
    }
    saved = await client.post("/console/commerce/stores/LYO-1", data=form, headers=HTML)
    assert saved.status_code == 303
    overlapping = await client.post(
        "/console/commerce/stores/LYO-1",
        data={**form, "hours_tue": "09:30-12:30, 12:00-19:00"},
        headers=HTML,
    )
    assert overlapping.status_code == 422
    assert "#/opening_hours/tue/1" in overlapping.text
    holiday = await client.post(
        "/console/commerce/stores/LYO-1/exceptions",
        data={"csrf_token": token, "day": "2026-05-01", "hours": "", "label": "Fête du Travail"},
        headers=HTML,
    )
    assert holiday.status_code == 303
    bad = await client.post(
        "/console/commerce/stores/LYO-1/exceptions",
        data={"csrf_token": token, "day": "someday", "hours": ""},
        headers=HTML,
    )
    assert bad.status_code == 422
    forged = await client.post(
        "/console/commerce/stores/LYO-1/exceptions",
        data={"csrf_token": "forged", "day": "2026-05-08"},
        headers=HTML,
    )
    assert forged.status_code == 403
    with db.transaction() as session:
        store = stores.get_store_by_code(session, "LYO-1")
        assert store.opening_hours == {
            "tue": [["09:30", "12:30"], ["14:00", "19:00"]],
            "sat": [["09:30", "19:30"]],
        }
        assert store.phone is None
        assert [(e.day, e.label) for e in stores.list_exceptions(session, store.id)] == [
            (date(2026, 5, 1), "Fête du Travail")
        ]
    shown = await client.get("/console/commerce/stores/LYO-1", headers=HTML)
    assert "Fête du Travail" in shown.text
    removed = await client.post(
        "/console/commerce/stores/LYO-1/exceptions/2026-05-01/delete",
        data={"csrf_token": token},
        headers=HTML,
    )
    assert removed.status_code == 303
    off = await client.post(
        "/console/commerce/stores/LYO-1/deactivate", data={"csrf_token": token}, headers=HTML
    )
    assert off.status_code == 303
    with db.transaction() as session:
        assert not stores.get_store_by_code(session, "LYO-1").active


async def test_an_unknown_store_page_is_not_found(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    assert (await client.get("/console/commerce/stores/NOPE", headers=HTML)).status_code == 404


FRENCH = {**HTML, "Accept-Language": "fr"}


async def test_the_locator_page_says_why_it_cannot_place_a_search_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon_and_paris(db, clock)
    french = {"Accept-Language": "fr-FR"}
    city = await client.get("/stores?q=Atlantis", headers=french)
    assert city.status_code == 404
    assert (
        "Aucune ville connue ne s’appelle &#39;Atlantis&#39; ; vérifiez l’orthographe "
        "ou cherchez plutôt par code postal." in city.text
    )
    short = await client.get("/stores?q=690", headers=french)
    assert short.status_code == 422
    assert (
        "&#39;690&#39; n’est pas un code postal français : donnez cinq chiffres, par exemple 69002."
        in short.text
    )
    nowhere = await client.get("/stores?q=00000", headers=french)
    assert "Aucune ville connue n’a le code postal 00000 ni ne se trouve dans son département" in (
        nowhere.text
    )
    service = await client.get("/stores?q=Lyon&service=teleport", headers=french)
    assert "Service inconnu &#39;teleport&#39; ; choisissez parmi click_and_collect" in service.text
    english = await client.get("/stores?q=Atlantis&lang=en", headers=french)
    assert "No known city is called &#39;Atlantis&#39;; check the spelling" in english.text


async def test_the_store_page_says_its_refusals_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lyon_and_paris(db, clock)
    builders.user(db, clock)
    await log_in(client)
    page = await client.get("/console/commerce/stores/LYO-1", headers=FRENCH)
    token = csrf_in(page.text)
    form = {"csrf_token": token, "name": "", "address": "1 place Bellecour", "email": "nowhere",
            "phone": "abc", "services": ["drive", "teleport"], "hours_mon": "9h",
            "hours_tue": "09:30-12:30, 12:00-19:00", "hours_wed": "19:00-09:00",
            "hours_thu": "09:30-25:00"}  # fmt: skip
    edited = await client.post("/console/commerce/stores/LYO-1", data=form, headers=FRENCH)
    assert edited.status_code == 422
    for said in (
        "Les modifications du magasin &#39;LYO-1&#39; ne sont pas valides.",
        "<code>#/name</code> est obligatoire",
        "<code>#/email</code> n’est pas une adresse e-mail",
        "<code>#/phone</code> n’est pas un numéro de téléphone",
        "<code>#/services</code> service inconnu &#39;teleport&#39; ; choisissez parmi",
        "<code>#/opening_hours/mon/0</code> doit être une paire [&#34;HH:MM&#34;, &#34;HH:MM&#34;]",
        "<code>#/opening_hours/tue/1</code> mardi : la plage nº 1 (12:00-19:00) chevauche la "
        "plage nº 0 (09:30-12:30)",
        "<code>#/opening_hours/wed/0</code> ouvre à 19:00 mais ferme à 09:00 : l’ouverture doit "
        "venir en premier",
        "<code>#/opening_hours/thu/0</code> les heures s’écrivent HH:MM (de 00:00 à 23:59) ; "
        "reçu : [&#39;09:30&#39;, &#39;25:00&#39;]",
    ):
        assert said in edited.text
    holiday = {"csrf_token": token, "day": "someday", "hours": "", "label": "x" * 121}
    bad = await client.post(
        "/console/commerce/stores/LYO-1/exceptions", data=holiday, headers=FRENCH
    )
    assert bad.status_code == 422
    assert "L’exception du magasin &#39;LYO-1&#39; n’est pas valide." in bad.text
    assert "<code>#/day</code> doit être une date (AAAA-MM-JJ)" in bad.text
    assert "<code>#/label</code> doit compter 120 caractères au plus" in bad.text
    none = await client.post(
        "/console/commerce/stores/LYO-1/exceptions/2026-05-08/delete",
        data={"csrf_token": token},
        headers=FRENCH,
    )
    assert none.status_code == 404
    assert "Le magasin n’a pas d’exception le 2026-05-08." in none.text
    unknown = await client.get("/console/commerce/stores/NOPE", headers=FRENCH)
    assert unknown.status_code == 404
    assert "Aucun magasin ni entrepôt n’a le code &#39;NOPE&#39;." in unknown.text
