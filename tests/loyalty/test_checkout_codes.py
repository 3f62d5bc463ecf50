"""Promotions on real carts and promo codes redeemed by checkout, once, on both databases."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from parcours.core.errors import Conflict
from parcours.loyalty import offers
from parcours.loyalty.models import PromoCode, PromoCodeRedemption
from parcours.orders import carts, checkout
from parcours.orders.checkout import CheckoutRequest
from tests.loyalty.conftest import add_promotion
from tests.orders.conftest import Shop

ADDRESS = {"name": "Léa Martin", "line1": "3 rue Mercière", "postcode": "69002", "city": "Lyon"}


def cart_with(shop: Shop, codes: list[str], customer: bool = True, **lines: int) -> uuid.UUID:
    now = shop.clock.now()
    with shop.db.transaction() as session:
        cart = carts.create_cart(
            session, now, "web", customer_id=shop.customer_id if customer else None,
            anonymous_id=f"v-{uuid.uuid4().hex[:8]}",
        )  # fmt: skip
        for sku, quantity in lines.items():
            carts.set_line(session, now, cart.id, sku.replace("_", "-"), quantity, announce=False)
        carts.set_promo_codes(session, now, cart.id, codes)
        return cart.id


def priced(shop: Shop, cart_id: uuid.UUID) -> carts.PricedCart:
    with shop.db.transaction() as session:
        return carts.price_cart(session, shop.clock.now(), carts.get_cart(session, cart_id))


def place(shop: Shop, cart_id: uuid.UUID) -> checkout.PlacedOrder:
    request = CheckoutRequest(cart_id, "home_delivery", address=ADDRESS, email="lea@example.com")
    with shop.db.transaction() as session:
        return checkout.place_order(session, shop.clock.now(), request, "api_key:test")


def one_code(shop: Shop, promotion: str = "spring-10", **kw: object) -> str:
    with shop.db.transaction() as session:
        batch = offers.generate_codes(session, shop.clock.now(), promotion, 1, **kw)  # type: ignore[arg-type]
        return next(iter(offers.batch_codes(session, batch.id)))


def redemptions(shop: Shop) -> int:
    with shop.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(PromoCodeRedemption)) or 0


def test_an_automatic_percentage_applies_to_its_skus_rounded_to_the_cent(shop: Shop) -> None:
    add_promotion(shop, automatic=True, percent_bp=1250, skus=["BOUGIE-S"])
    cart = priced(shop, cart_with(shop, [], ROBE_LIN_S=1, BOUGIE_S=3))
    by_sku = {line.sku: line for line in cart.lines}
    assert by_sku["BOUGIE-S"].discount == 746  # 5970 x 12.5 % = 746.25
    assert by_sku["ROBE-LIN-S"].discount == 0
    assert cart.discount_total == 746


def test_buy_two_get_one_free_on_a_real_cart(shop: Shop) -> None:
    add_promotion(
        shop, "candles-3for2", kind="buy_x_get_y", buy_quantity=2, get_quantity=1,
        percent_bp=None, group_by="category", categories=["maison"], automatic=True,
    )  # fmt: skip
    cart = priced(shop, cart_with(shop, [], BOUGIE_S=2, BOUGIE_M=1))
    assert cart.discount_total == 1990  # the cheapest candle of the three


def test_a_code_is_applied_and_its_order_redeems_it_once(shop: Shop) -> None:
    add_promotion(shop)
    code = one_code(shop)
    cart_id = cart_with(shop, [code.lower()], ROBE_LIN_S=1)
    assert priced(shop, cart_id).promo_messages == {code: "applied"}
    placed = place(shop, cart_id)
    assert placed.order.discount_total == 899
    with shop.db.transaction() as session:
        [row] = session.scalars(select(PromoCodeRedemption))
        assert (row.code, row.order_reference, row.amount) == (code, placed.order.number, 899)
        assert row.profile_id == shop.customer_id
        assert session.get(PromoCode, code).uses == 1  # type: ignore[union-attr]


def test_a_used_code_is_refused_by_the_next_checkout_naming_it(shop: Shop) -> None:
    add_promotion(shop)
    code = one_code(shop)
    place(shop, cart_with(shop, [code], ROBE_LIN_S=1))
    second = cart_with(shop, [code], ROBE_LIN_S=1)
    assert priced(shop, second).promo_messages == {code: "this code was already used"}
    with pytest.raises(Conflict) as refused:
        place(shop, second)
    assert refused.value.extensions["code"] == code
    assert redemptions(shop) == 1


def test_two_checkouts_racing_for_one_code_give_it_to_exactly_one_order(shop: Shop) -> None:
    add_promotion(shop)
    code = one_code(shop)
    cart_ids = [cart_with(shop, [code], BOUGIE_S=1) for _ in range(2)]
    start = threading.Barrier(2)

    def attempt(cart_id: uuid.UUID) -> str:
        start.wait()
        try:
            place(shop, cart_id)
        except Conflict:
            return "refused"
        return "placed"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(attempt, cart_ids))
    assert outcomes == ["placed", "refused"]
    assert redemptions(shop) == 1


def test_an_expired_code_is_refused_with_its_reason(shop: Shop) -> None:
    add_promotion(shop)
    code = one_code(shop, valid_days=7)
    shop.clock.advance(timedelta(days=8))
    cart_id = cart_with(shop, [code], ROBE_LIN_S=1)
    assert priced(shop, cart_id).promo_messages == {code: "this code has expired"}


def test_a_typo_is_refused_by_the_check_character_without_a_lookup(shop: Shop) -> None:
    add_promotion(shop)
    code = one_code(shop)
    typo = code[:-2] + ("A" if code[-2] != "A" else "B") + code[-1]
    cart_id = cart_with(shop, [typo], ROBE_LIN_S=1)
    assert priced(shop, cart_id).promo_messages[typo].startswith("this code is mistyped")


def test_codes_say_why_they_do_not_apply(shop: Shop) -> None:
    add_promotion(shop, "store-only", channels=["store"])
    add_promotion(shop, "big-basket", min_subtotal=50_000)
    with shop.db.transaction() as session:
        offers.add_shared_code(session, shop.clock.now(), "store-only", "BOUTIQUE")
        offers.add_shared_code(session, shop.clock.now(), "big-basket", "GROS")
    cart_id = cart_with(shop, ["boutique", "GROS", "NOPE"], ROBE_LIN_S=1)
    assert priced(shop, cart_id).promo_messages == {
        "BOUTIQUE": "not valid on this channel",
        "GROS": "minimum basket not reached (500.00 EUR)",
        "NOPE": "unknown code",
    }


def test_a_shared_code_honours_its_per_customer_cap(shop: Shop) -> None:
    add_promotion(shop)
    with shop.db.transaction() as session:
        offers.add_shared_code(
            session, shop.clock.now(), "spring-10", "BIENVENUE", per_customer_max=1
        )
    place(shop, cart_with(shop, ["BIENVENUE"], BOUGIE_S=1))
    again = cart_with(shop, ["BIENVENUE"], BOUGIE_S=1)
    assert priced(shop, again).promo_messages == {"BIENVENUE": "you have already used this code"}


def test_free_delivery_waives_the_home_delivery_fee(shop: Shop) -> None:
    add_promotion(shop, "free-ship", kind="free_delivery", percent_bp=None)
    with shop.db.transaction() as session:
        offers.add_shared_code(session, shop.clock.now(), "free-ship", "LIVRAISON")
    placed = place(shop, cart_with(shop, ["LIVRAISON"], BOUGIE_S=1))
    assert placed.order.delivery_total == 0
    assert placed.order.total == 1990


def test_a_code_assigned_to_someone_else_is_refused(shop: Shop) -> None:
    add_promotion(shop)
    with shop.db.transaction() as session:
        issued = offers.issue_code(session, shop.clock.now(), "spring-10", uuid.uuid4())
    cart_id = cart_with(shop, [issued.code], ROBE_LIN_S=1)
    assert priced(shop, cart_id).promo_messages == {
        issued.code: "this code belongs to another customer"
    }
