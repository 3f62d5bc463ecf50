"""Past orders loaded in bulk: numbered, fulfilled, paid, returned; never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from parcours import orders
from parcours.orders.models import Fulfilment, Order, OrderLine, Return
from tests.orders.conftest import Shop


def _past(shop: Shop, ref: str, days_ago: int, **overrides: object) -> orders.PastOrder:
    values: dict[str, object] = {
        "source": "pos",
        "external_ref": ref,
        "channel": "store",
        "mode": "carry_out",
        "placed_at": shop.clock.now() - timedelta(days=days_ago),
        "location_id": shop.locations["LYO-1"],
        "store_id": shop.locations["LYO-1"],
        "lines": [
            orders.PastLine("ROBE-LIN-S", "Robe en lin", 1, 8990),
            orders.PastLine("BOUGIE-S", "Bougie", 2, 1990, vat_rate_bp=550, discount=400),
        ],
    }
    values.update(overrides)
    return orders.PastOrder(**values)  # type: ignore[arg-type]


def test_history_is_stored_once_with_gap_free_numbers_and_moves_no_stock(shop: Shop) -> None:
    past = [
        _past(shop, "LYO-1/2/0001", 400),
        _past(shop, "LYO-1/2/0002", 30),
        _past(
            shop,
            "W-77",
            10,
            source="checkout",
            channel="web",
            mode="home_delivery",
            location_id=shop.locations["WH-1"],
            store_id=None,
            delivery_fee=490,
            lines=[orders.PastLine("ROBE-LIN-S", "Robe en lin", 2, 8990, returned=1)],
        ),
    ]
    with shop.db.transaction() as session:
        assert orders.load_history(session, past) == 3
    with shop.db.transaction() as session:
        assert orders.load_history(session, past) == 0  # loaded again: nothing new
        numbers = sorted(session.scalars(select(Order.number)))
        assert numbers == ["S2025-000001", "S2026-000001", "W2026-000001"]
        receipt = session.scalar(select(Order).where(Order.external_ref == "LYO-1/2/0002"))
        assert receipt is not None
        assert (receipt.total, receipt.status) == (8990 + 2 * 1990 - 400, "completed")
        # VAT per line at its own rate: 20 % of the dress, 5.5 % of the candles.
        assert receipt.vat_total == (8990 - 7492) + (3580 - 3393)
        web = session.scalar(select(Order).where(Order.external_ref == "W-77"))
        assert web is not None
        assert web.total == 2 * 8990 + 490
        fulfilment = session.scalar(select(Fulfilment).where(Fulfilment.order_id == web.id))
        assert fulfilment is not None
        assert (fulfilment.mode, fulfilment.status) == ("home_delivery", "delivered")
        returned = session.scalar(select(Return).where(Return.order_id == web.id))
        assert returned is not None
        assert (returned.number, returned.refund_amount) == ("R2026-000001", 8990)
        line = session.scalar(select(OrderLine).where(OrderLine.order_id == web.id))
        assert line is not None
        assert line.returned_quantity == 1
        assert session.scalar(select(func.count()).select_from(Order)) == 3
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3  # history moves no stock


def test_an_unknown_fulfilment_mode_is_refused(sqlite_shop: Shop) -> None:
    with sqlite_shop.db.transaction() as session, pytest.raises(ValueError, match="teleport"):
        orders.load_history(session, [_past(sqlite_shop, "X", 1, mode="teleport")])
