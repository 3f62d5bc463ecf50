"""The console pages: offers (create, generate codes, download the CSV) and loyalty
(settings, a member's points, a reward given by store staff), in English and French."""

from __future__ import annotations

import httpx
import pytest

from parcours.loyalty import programme
from tests import builders
from tests.loyalty.conftest import add_promotion
from tests.orders.conftest import Shop
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio
OFFERS = "/console/activation/offers"
LOYALTY = "/console/activation/loyalty"
FRENCH = {**HTML, "Accept-Language": "fr"}


async def test_a_marketer_creates_a_promotion_generates_codes_and_downloads_them(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    builders.user(shop.db, shop.clock, "mia", role="marketer")
    await log_in(client, "mia")
    page = await client.get(OFFERS, headers=HTML)
    assert page.status_code == 200
    token = csrf_in(page.text)
    bad = await client.post(OFFERS, data={"csrf_token": token, "key": "x"}, headers=HTML)
    assert bad.status_code == 422
    assert "#/key" in bad.text
    form = {"csrf_token": token, "key": "spring-10", "name_fr": "Printemps", "name_en": "Spring",
            "kind": "percent_off", "value": "10"}  # fmt: skip
    created = await client.post(OFFERS, data=form, headers=HTML)
    assert created.status_code == 303
    listed = await client.get(OFFERS, headers=HTML)
    assert 'data-promotion="spring-10"' in listed.text
    generated = await client.post(
        f"{OFFERS}/spring-10/codes", data={"csrf_token": token, "count": "25", "prefix": "SP"},
        headers=HTML,
    )  # fmt: skip
    generated = await client.get(generated.headers["location"], headers=HTML)
    assert "data-batch" in generated.text
    link = generated.text.split('href="/console/activation/offers/spring-10/codes.csv?batch=')[1]
    batch = link.split('"')[0]
    csv_text = (await client.get(f"{OFFERS}/spring-10/codes.csv?batch={batch}")).text
    lines = csv_text.strip().splitlines()
    assert lines[0] == "code"
    assert len(lines) == 26
    assert all(c.startswith("SP") for c in lines[1:])


def _member_with_a_reward(shop: Shop, points: int) -> None:
    """A 100-point reward ("five": 5 € off) and the shop's customer holding `points`."""
    assert shop.customer_id is not None
    with shop.db.transaction() as session:
        programme.add_reward(session, shop.clock.now(), {
            "key": "five", "name_fr": "5 € offerts", "name_en": "5 € off", "points_cost": 100,
            "kind": "discount", "amount_off": 500,
        })  # fmt: skip
        programme.award_points(session, shop.clock.now(), shop.customer_id, points, "gift", "g")


async def test_store_staff_look_up_a_member_and_give_a_reward_in_french(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    _member_with_a_reward(shop, points=120)
    builders.user(shop.db, shop.clock, "sam", role="staff")
    await log_in(client, "sam")
    french = {**HTML, "Accept-Language": "fr"}
    page = await client.get(LOYALTY, params={"q": "lea.martin@example.com"}, headers=french)
    assert page.status_code == 200
    assert "data-balance>120<" in page.text
    assert "Palier" in page.text
    assert "points_per_euro" not in page.text  # staff do not edit the settings
    given = await client.post(
        f"{LOYALTY}/{shop.customer_id}/redemptions",
        data={"csrf_token": csrf_in(page.text), "reward": "five"}, headers=french,
    )  # fmt: skip
    assert "data-given" in given.text
    assert "data-balance>20<" in given.text


async def test_the_offers_page_says_the_refusals_in_french(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    add_promotion(shop, "spring-10")
    builders.user(shop.db, shop.clock, "mia", role="marketer")
    await log_in(client, "mia")
    page = await client.get(OFFERS, headers=FRENCH)
    token = csrf_in(page.text)
    form = {"csrf_token": token, "key": "spring-10", "name_fr": "Printemps", "name_en": "Spring",
            "kind": "percent_off", "value": "10"}  # fmt: skip
    taken = await client.post(OFFERS, data=form, headers=FRENCH)
    assert taken.status_code == 422
    assert (
        "Une promotion a déjà la clé &#39;spring-10&#39; ; choisissez-en une autre." in taken.text
    )
    bad = await client.post(OFFERS, data={**form, "key": "x", "kind": "fax"}, headers=FRENCH)
    assert "La promotion n’est pas valide ; rien n’a été créé." in bad.text
    assert "<code>#/key</code> de 2 à 64 caractères parmi a-z, 0-9, _ et -, par exemple" in bad.text
    assert "doit être l’une des valeurs percent_off, amount_off" in bad.text
    codes = {"csrf_token": token, "count": "0", "prefix": "NOEL"}
    refused = await client.post(f"{OFFERS}/spring-10/codes", data=codes, headers=FRENCH)
    assert refused.status_code == 422
    assert "Les codes ne peuvent pas être générés comme demandé ; aucun n’a été créé." in (
        refused.text
    )
    assert "<code>#/count</code> de 1 à 2\u202f000\u202f000" in refused.text
    assert "<code>#/prefix</code> utilisez 0-9 et A-Z sans I, L, O, U (pas LO)" in refused.text


async def test_the_offers_page_keeps_the_refusals_in_english_for_an_english_reader(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    add_promotion(shop, "spring-10")
    builders.user(shop.db, shop.clock, "mia", role="marketer")
    await log_in(client, "mia")
    page = await client.get(OFFERS, headers=HTML)
    form = {"csrf_token": csrf_in(page.text), "key": "spring-10", "name_fr": "Printemps",
            "name_en": "Spring", "kind": "percent_off", "value": "10"}  # fmt: skip
    taken = await client.post(OFFERS, data=form, headers=HTML)
    assert "A promotion already has the key &#39;spring-10&#39;; choose another key." in taken.text


async def test_the_loyalty_page_says_a_taken_key_a_bad_kind_and_short_points_in_french(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    _member_with_a_reward(shop, points=20)
    builders.user(shop.db, shop.clock, "mia", role="marketer")
    await log_in(client, "mia")
    page = await client.get(LOYALTY, headers=FRENCH)
    token = csrf_in(page.text)
    reward = {"csrf_token": token, "key": "five", "name_fr": "Cinq", "name_en": "Five",
              "points_cost": "50", "kind": "discount", "amount_off": "500"}  # fmt: skip
    taken = await client.post(f"{LOYALTY}/rewards", data=reward, headers=FRENCH)
    assert taken.status_code == 422
    assert "Une récompense a déjà la clé &#39;five&#39;." in taken.text
    odd = await client.post(f"{LOYALTY}/rewards", data={**reward, "kind": "gift"}, headers=FRENCH)
    assert "La récompense n&#39;est pas valide ; rien n&#39;a été créé." in odd.text
    assert "<code>#/kind</code> doit être l’une des valeurs promo_code, discount" in odd.text
    short = await client.post(
        f"{LOYALTY}/{shop.customer_id}/redemptions",
        data={"csrf_token": token, "reward": "five"}, headers=FRENCH,
    )  # fmt: skip
    assert "Pas assez de points : 100 nécessaires, 20 disponibles." in short.text
    gone = await client.post(
        f"{LOYALTY}/{shop.customer_id}/redemptions",
        data={"csrf_token": token, "reward": "none"}, headers=FRENCH,
    )  # fmt: skip
    assert "Aucune récompense active n’a la clé &#39;none&#39;." in gone.text
    assert "<code>#/reward</code> récompense inconnue" in gone.text
