"""A person's orders in their access export, and what their erasure leaves: the amounts
for the accounts, nothing that names them."""

from __future__ import annotations

from sqlalchemy import select

from parcours import registry
from parcours.core.audit import CLI_ACTOR
from parcours.customers import privacy
from parcours.orders.models import Order
from tests.orders.conftest import Shop
from tests.orders.order_builders import place_order


def test_orders_are_exported_then_kept_without_the_person_after_an_erasure(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)])
    assert shop.customer_id is not None
    handlers = registry.personal_data_handlers()
    now = shop.clock.now()
    with shop.db.transaction() as session:
        export = privacy.export_person(session, now, CLI_ACTOR, shop.customer_id, handlers)
    [row] = export.tables["orders"]
    assert (row["number"], row["email"], row["total"]) == (
        placed.number,
        "lea.martin@example.com",
        8990,
    )
    assert export.tables["orders_order_lines"][0]["sku"] == "ROBE-LIN-S"
    with shop.db.transaction() as session:
        report = privacy.erase_person(session, now, CLI_ACTOR, shop.customer_id, handlers)
        assert report.counts["orders"] >= 1
    with shop.db.transaction() as session:
        order = session.scalar(select(Order).where(Order.number == placed.number))
        assert order is not None
        assert (order.email, order.customer_id, order.erased_at) == (None, None, now)
        assert (order.total, order.vat_total) == (8990, 8990 // 6)  # kept for the accounts
