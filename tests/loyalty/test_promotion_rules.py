"""The arithmetic of promotions, in cents, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

from parcours.loyalty.models import Promotion
from parcours.loyalty.promotions import Basket, BasketLine, cheapest_free, grant, spread, why_not

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def promotion(**fields: object) -> Promotion:
    base: dict[str, object] = {
        "key": "p", "name_fr": "p", "name_en": "p", "kind": "percent_off", "percent_bp": 1000,
        "currency": "EUR", "group_by": "sku", "categories": [], "skus": [], "channels": [],
        "store_ids": [], "min_subtotal": 0, "starts_at": None, "ends_at": None, "active": True,
        "automatic": True,
    }  # fmt: skip
    base.update(fields)
    return Promotion(**base)


def basket(*lines: BasketLine, channel: str = "web") -> Basket:
    return Basket(channel=channel, currency="EUR", lines=lines)


def test_percent_off_rounds_each_line_half_up_to_the_cent() -> None:
    lines = (BasketLine("A", "maison", 1, 1995), BasketLine("B", "maison", 3, 1005))
    given = grant(promotion(percent_bp=1250), basket(*lines))
    # 1995 x 12.5 % = 249.375 -> 249; 3015 x 12.5 % = 376.875 -> 377
    assert dict(given.discounts) == {"A": 249, "B": 377}


def test_amount_off_is_spread_in_proportion_and_the_cents_add_up() -> None:
    lines = [
        BasketLine("A", "x", 1, 1000),
        BasketLine("B", "x", 1, 2000),
        BasketLine("C", "x", 1, 3),
    ]
    shares = spread(1000, lines)
    assert sum(shares.values()) == 1000
    assert shares["B"] > shares["A"] > shares.get("C", 0)


def test_amount_off_never_exceeds_what_the_lines_cost() -> None:
    assert spread(5000, [BasketLine("A", "x", 1, 1200)]) == {"A": 1200}


def test_buy_two_get_one_makes_the_cheapest_unit_of_each_group_free() -> None:
    lines = [BasketLine("A", "maison", 2, 1990), BasketLine("B", "maison", 1, 2490)]
    assert cheapest_free(lines, 2, 1, "category") == {"A": 1990}
    assert cheapest_free(lines, 2, 1, "sku") == {}  # two A only: no third unit


def test_buy_one_get_one_per_sku_counts_pairs() -> None:
    assert cheapest_free([BasketLine("A", "x", 5, 700)], 1, 1, "sku") == {"A": 1400}


def test_a_promotion_out_of_its_window_scope_or_minimum_says_why() -> None:
    lines = (BasketLine("A", "maison", 1, 1990),)
    assert why_not(promotion(ends_at=NOW), basket(*lines), NOW) == "this offer has ended"
    assert (
        why_not(promotion(channels=["store"]), basket(*lines), NOW) == "not valid on this channel"
    )
    assert (
        why_not(promotion(skus=["Z"]), basket(*lines), NOW)
        == "no product of this offer in the basket"
    )
    assert why_not(promotion(min_subtotal=5000), basket(*lines), NOW).startswith(  # type: ignore[union-attr]
        "minimum basket not reached"
    )
    assert why_not(promotion(), basket(*lines), NOW) is None
