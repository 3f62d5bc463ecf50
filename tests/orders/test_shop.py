"""The order tests' shop is what they assume it is."""

from __future__ import annotations

from tests.orders.conftest import Shop


def test_the_shop_has_stock_where_the_tests_expect_it(shop: Shop) -> None:
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3
    assert shop.available("BOUGIE-M", "PAR-1") == 2
    assert shop.available("ROBE-LIN-M", "WH-1") == 0
    assert shop.customer_id is not None
