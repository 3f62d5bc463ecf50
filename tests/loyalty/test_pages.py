"""The console pages: offers (create, generate codes, download the CSV) and loyalty
(settings, a member's points, a reward given by store staff), in English and French."""

from __future__ import annotations

import httpx
import pytest

from parcours.loyalty import programme
from tests import builders
from tests.orders.conftest import Shop
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio
OFFERS = "/console/activation/offers"
LOYALTY = "/console/activation/loyalty"


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


async def test_store_staff_look_up_a_member_and_give_a_reward_in_french(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    assert shop.customer_id is not None
    with shop.db.transaction() as session:
        programme.add_reward(session, shop.clock.now(), {
            "key": "five", "name_fr": "5 € offerts", "name_en": "5 € off", "points_cost": 100,
            "kind": "discount", "amount_off": 500,
        })  # fmt: skip
        programme.award_points(session, shop.clock.now(), shop.customer_id, 120, "gift", "g")
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
