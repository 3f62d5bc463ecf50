"""Carts: lines, pricing from the channel's list with VAT per line, promotions, merge on login."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from parcours.core.errors import Conflict, InvalidInput, NotFound
from parcours.orders import carts
from parcours.orders.models import Cart
from tests.orders.conftest import Shop


def _cart(shop: Shop, channel: str = "web", **lines: int) -> uuid.UUID:
    with shop.db.transaction() as session:
        cart = carts.create_cart(session, shop.clock.now(), channel, anonymous_id="visitor-1")
        for sku, quantity in lines.items():
            carts.set_line(session, shop.clock.now(), cart.id, sku.replace("_", "-"), quantity)
        return cart.id


def test_a_cart_is_priced_from_its_channel_with_vat_per_line(shop: Shop) -> None:
    cart_id = _cart(shop, ROBE_LIN_S=2, BOUGIE_S=3)
    with shop.db.transaction() as session:
        priced = carts.price_cart(session, shop.clock.now(), carts.get_cart(session, cart_id))
    by_sku = {line.sku: line for line in priced.lines}
    assert by_sku["ROBE-LIN-S"].total == 2 * 8990
    assert by_sku["ROBE-LIN-S"].vat == 2997  # 17980 - 17980 / 1.2, rounded half up
    assert by_sku["BOUGIE-S"].vat_rate_bp == 550
    assert by_sku["BOUGIE-S"].vat == 311  # 5970 - 5970 / 1.055
    assert priced.total == 17980 + 5970
    assert priced.vat_total == 2997 + 311
    assert priced.currency == "EUR"


def test_an_app_cart_is_priced_from_the_app_price_list(sqlite_shop: Shop) -> None:
    cart_id = _cart(sqlite_shop, "app", BOUGIE_M=1)
    with sqlite_shop.db.transaction() as session:
        priced = carts.price_cart(
            session, sqlite_shop.clock.now(), carts.get_cart(session, cart_id)
        )
    assert priced.total == 2490


def test_setting_a_quantity_replaces_it_and_zero_removes_the_line(sqlite_shop: Shop) -> None:
    cart_id = _cart(sqlite_shop, ROBE_LIN_S=2)
    now = sqlite_shop.clock.now()
    with sqlite_shop.db.transaction() as session:
        carts.set_line(session, now, cart_id, "ROBE-LIN-S", 5)
        carts.add_line(session, now, cart_id, "BOUGIE-S", 1)
        carts.add_line(session, now, cart_id, "BOUGIE-S", 2)
    with sqlite_shop.db.transaction() as session:
        held = {line.sku: line.quantity for line in carts.cart_lines(session, cart_id)}
        assert held == {"ROBE-LIN-S": 5, "BOUGIE-S": 3}
        carts.set_line(session, now, cart_id, "ROBE-LIN-S", 0)
    with sqlite_shop.db.transaction() as session:
        assert [line.sku for line in carts.cart_lines(session, cart_id)] == ["BOUGIE-S"]


@pytest.mark.parametrize("quantity", [-1, 100, 2.5, True])
def test_a_quantity_outside_1_to_99_is_refused(sqlite_shop: Shop, quantity: object) -> None:
    cart_id = _cart(sqlite_shop)
    with pytest.raises(InvalidInput) as refused, sqlite_shop.db.transaction() as session:
        carts.set_line(session, sqlite_shop.clock.now(), cart_id, "ROBE-LIN-S", quantity)  # type: ignore[arg-type]
    assert refused.value.errors[0].pointer == "#/quantity"


def test_an_unknown_sku_is_refused_and_the_cart_is_unchanged(sqlite_shop: Shop) -> None:
    cart_id = _cart(sqlite_shop, ROBE_LIN_S=1)
    with pytest.raises(InvalidInput) as refused, sqlite_shop.db.transaction() as session:
        carts.set_line(session, sqlite_shop.clock.now(), cart_id, "NOPE-1", 1)
    assert "NOPE-1" in refused.value.detail
    with sqlite_shop.db.transaction() as session:
        assert len(carts.cart_lines(session, cart_id)) == 1


def test_a_cart_needs_a_known_channel_and_someone(sqlite_shop: Shop) -> None:
    with pytest.raises(InvalidInput) as refused, sqlite_shop.db.transaction() as session:
        carts.create_cart(session, sqlite_shop.clock.now(), "fax")
    assert {e.pointer for e in refused.value.errors} == {"#/channel", "#/anonymous_id"}
    with pytest.raises(InvalidInput), sqlite_shop.db.transaction() as session:
        carts.create_cart(session, sqlite_shop.clock.now(), "social", anonymous_id="x")


def test_an_unknown_cart_is_not_found(sqlite_shop: Shop) -> None:
    with pytest.raises(NotFound), sqlite_shop.db.transaction() as session:
        carts.set_line(session, sqlite_shop.clock.now(), uuid.uuid4(), "ROBE-LIN-S", 1)


class TenPercentOnCandles:
    """A promotion engine stand-in: 10 % off candles with the code BOUGIE10."""

    def apply(
        self, session: Session, now: datetime, cart: Cart, lines: Sequence[carts.PricedLine]
    ) -> carts.PromotionResult:
        if "BOUGIE10" not in cart.promo_codes:
            return carts.PromotionResult()
        discounts = {x.sku: x.total // 10 for x in lines if x.sku.startswith("BOUGIE")}
        return carts.PromotionResult(discounts, {"BOUGIE10": "applied"})


@pytest.fixture
def candle_promotion() -> Iterator[None]:
    previous = carts.set_promotion_hook(TenPercentOnCandles())
    yield
    carts.set_promotion_hook(previous)


def test_promo_codes_go_through_the_promotion_hook(
    sqlite_shop: Shop, candle_promotion: None
) -> None:
    cart_id = _cart(sqlite_shop, BOUGIE_S=2, ROBE_LIN_S=1)
    with sqlite_shop.db.transaction() as session:
        carts.set_promo_codes(session, sqlite_shop.clock.now(), cart_id, [" bougie10 "])
    with sqlite_shop.db.transaction() as session:
        priced = carts.price_cart(
            session, sqlite_shop.clock.now(), carts.get_cart(session, cart_id)
        )
    candle = next(x for x in priced.lines if x.sku == "BOUGIE-S")
    assert (candle.discount, candle.total) == (398, 3980 - 398)
    assert candle.vat == carts.vat_part(3582, 550)
    assert priced.discount_total == 398
    assert priced.promo_messages == {"BOUGIE10": "applied"}


def test_without_a_promotion_engine_codes_are_kept_but_give_nothing(sqlite_shop: Shop) -> None:
    cart_id = _cart(sqlite_shop, BOUGIE_S=1)
    with sqlite_shop.db.transaction() as session:
        carts.set_promo_codes(session, sqlite_shop.clock.now(), cart_id, ["WELCOME"])
        priced = carts.price_cart(
            session, sqlite_shop.clock.now(), carts.get_cart(session, cart_id)
        )
    assert priced.discount_total == 0
    assert priced.promo_messages == {"WELCOME": "no promotion is running"}


def test_logging_in_merges_the_visitor_cart_into_the_customer_cart(shop: Shop) -> None:
    now = shop.clock.now()
    assert shop.customer_id is not None
    with shop.db.transaction() as session:
        theirs = carts.create_cart(session, now, "web", customer_id=shop.customer_id)
        carts.set_line(session, now, theirs.id, "ROBE-LIN-S", 1)
        carts.set_line(session, now, theirs.id, "BOUGIE-M", 1)
        theirs_id = theirs.id
    visitor = _cart(shop, ROBE_LIN_S=2, BOUGIE_S=1)
    with shop.db.transaction() as session:
        kept = carts.attach_customer(session, now, visitor, shop.customer_id)
        assert kept.id == theirs_id
    with shop.db.transaction() as session:
        held = {x.sku: x.quantity for x in carts.cart_lines(session, theirs_id)}
        assert held == {"ROBE-LIN-S": 3, "BOUGIE-M": 1, "BOUGIE-S": 1}
        assert carts.get_cart(session, visitor).status == "merged"
        assert carts.cart_lines(session, visitor) == []


def test_logging_in_without_a_cart_of_ones_own_keeps_the_visitor_cart(sqlite_shop: Shop) -> None:
    visitor = _cart(sqlite_shop, ROBE_LIN_S=1)
    assert sqlite_shop.customer_id is not None
    with sqlite_shop.db.transaction() as session:
        kept = carts.attach_customer(
            session, sqlite_shop.clock.now(), visitor, sqlite_shop.customer_id
        )
        assert (kept.id, kept.customer_id, kept.status) == (
            visitor,
            sqlite_shop.customer_id,
            "open",
        )


def test_a_merged_cart_takes_no_more_lines(sqlite_shop: Shop) -> None:
    now = sqlite_shop.clock.now()
    assert sqlite_shop.customer_id is not None
    with sqlite_shop.db.transaction() as session:
        carts.create_cart(session, now, "web", customer_id=sqlite_shop.customer_id)
    visitor = _cart(sqlite_shop, ROBE_LIN_S=1)
    with sqlite_shop.db.transaction() as session:
        carts.attach_customer(session, now, visitor, sqlite_shop.customer_id)
    with pytest.raises(Conflict) as refused, sqlite_shop.db.transaction() as session:
        carts.set_line(session, now, visitor, "BOUGIE-S", 1)
    assert refused.value.extensions["cart_status"] == "merged"


def test_cart_changes_reach_the_tracking_log_as_segment_events(sqlite_shop: Shop) -> None:
    cart_id = _cart(sqlite_shop, ROBE_LIN_S=2)
    with sqlite_shop.db.transaction() as session:
        carts.set_line(session, sqlite_shop.clock.now(), cart_id, "ROBE-LIN-S", 1)
        carts.set_line(session, sqlite_shop.clock.now(), cart_id, "ROBE-LIN-S", 1)  # no change
    with sqlite_shop.db.transaction() as session:
        rows = session.execute(
            text("SELECT event, anonymous_id, channel, properties FROM events ORDER BY seq")
        ).all()
    logged = [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]
    assert logged == [
        (
            "Product Added",
            "visitor-1",
            "web",
            {"cart_id": str(cart_id), "sku": "ROBE-LIN-S", "quantity": 2},
        ),
        (
            "Product Removed",
            "visitor-1",
            "web",
            {"cart_id": str(cart_id), "sku": "ROBE-LIN-S", "quantity": 1},
        ),
    ]
