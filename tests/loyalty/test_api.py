"""The loyalty API: offers managed with `activation:write`, codes and rewards at the till
with `commerce:write`, idempotent redemptions, refusals as problem+json."""

from __future__ import annotations

import httpx
import pytest

from parcours.loyalty import programme
from tests import builders
from tests.orders.conftest import Shop

pytestmark = pytest.mark.anyio
PROMOTION = {
    "key": "spring-10", "name_fr": "Printemps", "name_en": "Spring", "kind": "percent_off",
    "percent_bp": 1000,
}  # fmt: skip


def headers(shop: Shop, scope: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {builders.api_key(shop.db, shop.clock, scope)}", **extra}


async def promotion_with_codes(shop: Shop, client: httpx.AsyncClient, count: int = 2) -> list[str]:
    manager = headers(shop, "activation:write")
    created = await client.post("/v1/promotions", json=PROMOTION, headers=manager)
    assert created.status_code == 201, created.text
    batch = await client.post(
        "/v1/promotions/spring-10/codes", json={"count": count, "prefix": "SP"}, headers=manager
    )
    assert batch.status_code == 201, batch.text
    codes: list[str] = batch.json()["codes"]
    return codes


async def test_an_invalid_promotion_names_each_bad_field(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    bad = {**PROMOTION, "key": "Bad Key!", "percent_bp": 0, "channels": ["fax"]}
    response = await client.post(
        "/v1/promotions", json=bad, headers=headers(shop, "activation:write")
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert pointers == {"#/key", "#/percent_bp", "#/channels"}


async def test_a_till_checks_then_redeems_a_code_once_per_idempotency_key(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    code, _ = await promotion_with_codes(shop, client)
    till = headers(shop, "commerce:write")
    check = await client.get(f"/v1/promo-codes/{code.lower()}?subtotal=5000", headers=till)
    assert check.json()["valid"] is True
    assert check.json()["discount"] == 500
    body = {"channel": "store", "subtotal": 5000, "order_reference": "S-1"}
    keyed = {**till, "Idempotency-Key": "till-1-sale-1"}
    first = await client.post(f"/v1/promo-codes/{code}/redemptions", json=body, headers=keyed)
    again = await client.post(f"/v1/promo-codes/{code}/redemptions", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201, first.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await client.post(
        f"/v1/promo-codes/{code}/redemptions", json=body, headers={**till, "Idempotency-Key": "x"}
    )
    assert other.status_code == 409
    assert other.json()["reason"] == "used"
    assert code in other.json()["detail"]


async def test_a_mistyped_code_is_refused_naming_the_parameter(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    code, _ = await promotion_with_codes(shop, client)
    typo = code[:-1] + ("A" if code[-1] != "A" else "B")
    response = await client.post(
        f"/v1/promo-codes/{typo}/redemptions",
        json={"subtotal": 100},
        headers=headers(shop, "commerce:write"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "code"


async def test_an_unknown_code_is_a_404_and_a_tracking_key_is_forbidden(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/v1/promo-codes/NOPE/redemptions", json={}, headers=headers(shop, "commerce:write")
    )
    assert response.status_code == 404
    forbidden = await client.get("/v1/promo-codes/NOPE", headers=headers(shop, "insight:read"))
    assert forbidden.status_code == 403


async def test_a_reward_is_redeemed_once_and_refused_when_points_are_short(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    assert shop.customer_id is not None
    with shop.db.transaction() as session:
        programme.add_reward(session, shop.clock.now(), {
            "key": "five-euros", "name_fr": "5 € offerts", "name_en": "5 € off",
            "points_cost": 100, "kind": "discount", "amount_off": 500,
        })  # fmt: skip
        programme.award_points(session, shop.clock.now(), shop.customer_id, 150, "gift", "g")
    till = headers(shop, "commerce:write", **{"Idempotency-Key": "r-1"})
    url = f"/v1/loyalty/{shop.customer_id}/redemptions"
    first = await client.post(url, json={"reward": "five-euros"}, headers=till)
    replay = await client.post(url, json={"reward": "five-euros"}, headers=till)
    assert first.status_code == 201, first.text
    assert first.json()["balance"] == replay.json()["balance"] == 50
    short = await client.post(
        url, json={"reward": "five-euros"}, headers={**till, "Idempotency-Key": "r-2"}
    )
    assert short.status_code == 409
    assert short.json()["detail"] == "Not enough points: 100 needed, 50 available."
    assert (short.json()["needed"], short.json()["balance"]) == (100, 50)  # numbers, not text
    member = await client.get(f"/v1/loyalty/{shop.customer_id}", headers=till)
    assert member.json()["balance"] == 50
    assert [e["kind"] for e in member.json()["ledger"]] == ["redeem", "adjust"]


async def test_programme_settings_are_validated(shop: Shop, client: httpx.AsyncClient) -> None:
    manager = headers(shop, "activation:write")
    bad = await client.put("/v1/loyalty/settings", json={"points_per_euro": -1}, headers=manager)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "#/points_per_euro"
    good = await client.put("/v1/loyalty/settings", json={"points_per_euro": 2}, headers=manager)
    assert good.json()["points_per_euro"] == 2


async def test_a_reward_is_changed_and_switched_off_and_bad_changes_name_their_field(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    manager = headers(shop, "activation:write")
    reward = {"key": "bon-5", "name_fr": "Bon de 5 €", "name_en": "€5 voucher",
              "points_cost": 500, "kind": "discount", "amount_off": 500}  # fmt: skip
    assert (await client.post("/v1/loyalty/rewards", json=reward, headers=manager)).is_success
    changed = await client.patch(
        "/v1/loyalty/rewards/bon-5", json={"points_cost": 400, "active": False}, headers=manager
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["points_cost"], changed.json()["active"]) == (400, False)
    assert changed.json()["name_fr"] == "Bon de 5 €"  # untouched
    bad = await client.patch(
        "/v1/loyalty/rewards/bon-5", json={"points_cost": 0, "amount_off": -1}, headers=manager
    )
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json()["errors"]} == {"#/points_cost", "#/amount_off"}
    unknown = await client.patch("/v1/loyalty/rewards/nope", json={}, headers=manager)
    assert unknown.status_code == 404
    till = await client.patch(
        "/v1/loyalty/rewards/bon-5", json={"active": True}, headers=headers(shop, "commerce:write")
    )
    assert till.status_code == 403


async def test_refusals_keep_their_english_detail_for_api_clients(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    await promotion_with_codes(shop, client)
    manager = headers(shop, "activation:write", **{"Accept-Language": "fr"})
    taken = await client.post("/v1/promotions", json=PROMOTION, headers=manager)
    assert taken.status_code == 409
    assert taken.json()["detail"] == (
        "A promotion already has the key 'spring-10'; choose another key."
    )
    assert taken.json()["key"] == "spring-10"
    refused = await client.post(
        "/v1/promotions/spring-10/codes",
        json={"count": 5, "prefix": "NOEL", "valid_days": 0},
        headers=manager,
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == "The codes cannot be generated as asked; none was created."
    assert refused.json()["errors"] == [
        {"detail": "use 0-9 and A-Z without I, L, O, U (not LO)", "pointer": "#/prefix"},
        {"detail": "from 1 to 3660 days", "pointer": "#/valid_days"},
    ]
    reward = {"key": "five", "name_fr": "Cinq", "name_en": "Five", "points_cost": 100,
              "kind": "discount", "amount_off": 500}  # fmt: skip
    assert (await client.post("/v1/loyalty/rewards", json=reward, headers=manager)).is_success
    again = await client.post("/v1/loyalty/rewards", json=reward, headers=manager)
    assert again.status_code == 409
    assert (again.json()["detail"], again.json()["key"]) == (
        "A reward already has the key 'five'.",
        "five",
    )
