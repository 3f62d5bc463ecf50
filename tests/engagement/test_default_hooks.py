"""The default hooks behind `cart` and `recommendations`: the person's open cart from
the orders context, priced, with each item's stock at their preferred store; and the
best sellers of their favourite category that are in stock where they shop, leaving out
what they already bought. Journeys' abandoned-cart sends use the same cart."""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from sqlalchemy import select, update

from parcours import catalog, customers
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.customers.models import ComputedTraits, Customer
from parcours.engagement import (
    BestSellers,
    OrdersCartSource,
    SendRequest,
    TemplateInput,
    save_template,
    send_message,
)
from parcours.orders import carts
from parcours.orders.models import Cart, Order, OrderLine
from tests import builders
from tests.engagement.helpers import Outbox, outlets
from tests.journeys.helpers import Worker, journey, person, stats, template
from tests.orders.conftest import Shop, build_shop

_numbers = count(1)


@pytest.fixture
def shop(db: Database, clock: ManualClock) -> Shop:
    """The orders tests' shop on each backend: products priced, stock in Lyon stores."""
    return build_shop(db, clock)


def shopper(db: Database, clock: ManualClock, email: str, store: uuid.UUID | None,
            favourite: str | None = None) -> Customer:  # fmt: skip
    """A customer who chose `store` (None: no store), whose favourite category is
    `favourite`, with the marketing email consent."""
    with db.transaction() as session:
        [pid] = customers.add_customers(
            session, clock.now(), [{"email": email, "first_name": "Léa", "locale": "fr"}]
        )
        session.execute(update(Customer).where(Customer.id == pid).values(preferred_store_id=store))
        if favourite is not None:
            session.add(ComputedTraits(profile_id=pid, favourite_category=favourite,
                                       computed_at=clock.now()))  # fmt: skip
        customers.add_consents(session, [
            {"customer_id": pid, "purpose": "marketing", "channel": "email", "granted": True,
             "at": clock.now(), "source": "test", "proof": "form"}
        ])  # fmt: skip
    with db.transaction() as session:
        found = session.get(Customer, pid)
        assert found is not None
        return found


def sale(db: Database, customer_id: uuid.UUID, at: Any, *lines: tuple[str, str]) -> None:
    """An order of one unit of each (sku, category) at 10 €."""
    with db.transaction() as session:
        order = Order(
            number=f"W-{next(_numbers):06d}", channel="web", source="test",
            customer_id=customer_id, currency="EUR", subtotal=1000 * len(lines),
            total=1000 * len(lines), vat_total=0, status="placed", placed_at=at, updated_at=at,
        )  # fmt: skip
        session.add(order)
        session.flush()
        for n, (sku, category) in enumerate(lines, 1):
            session.add(OrderLine(order_id=order.id, line_no=n, sku=sku, name=sku,
                                  category=category, quantity=1, unit_price=1000,
                                  vat_rate_bp=2000, total=1000, vat=167))  # fmt: skip


def cart_of(shop: Shop, customer_id: uuid.UUID, *lines: tuple[str, int]) -> None:
    with shop.db.transaction() as session:
        cart = carts.create_cart(session, shop.clock.now(), "web", customer_id=customer_id)
        for sku, quantity in lines:
            carts.add_line(session, shop.clock.now(), cart.id, sku, quantity)


def test_the_cart_is_the_open_cart_with_prices_and_stock_at_the_preferred_store(
    shop: Shop,
) -> None:
    lea = shopper(shop.db, shop.clock, "lea@example.com", shop.locations["LYO-1"])
    cart_of(shop, lea.id, ("ROBE-LIN-S", 2), ("BOUGIE-S", 1))
    with shop.db.transaction() as session:
        found = OrdersCartSource().carts_for(session, shop.clock.now(), [lea])
    cart = found[lea.id]
    assert [(i["sku"], i["name"], i["quantity"], i["stock_at_store"]) for i in cart["items"]] == [
        ("ROBE-LIN-S", "Robe en lin lavande", 2, 3),
        ("BOUGIE-S", "Bougie parfumée", 1, 0),  # none at LYO-1
    ]
    assert [i["price"].replace("\xa0", " ") for i in cart["items"]] == ["89,90 €", "19,90 €"]
    assert cart["total"].replace("\xa0", " ") == "199,70 €"  # 2 x 89.90 + 19.90
    assert cart["items_count"] == 3


def test_without_a_preferred_store_the_stock_is_not_given(shop: Shop) -> None:
    lea = shopper(shop.db, shop.clock, "lea@example.com", None)
    cart_of(shop, lea.id, ("BOUGIE-S", 1))
    with shop.db.transaction() as session:
        found = OrdersCartSource().carts_for(session, shop.clock.now(), [lea])
    assert found[lea.id]["items"][0]["stock_at_store"] is None


def test_a_message_shows_the_open_cart_and_someone_without_one_gets_none(shop: Shop) -> None:
    box = Outbox()
    with shop.db.transaction() as session:
        save_template(session, shop.clock.now(), TemplateInput("panier", "email", "marketing", {
            "subject_fr": "Votre panier", "text_fr": "{% if cart %}{% for i in cart['items'] %}"
            "{{ i['name'] }} x{{ i['quantity'] }} {% endfor %}{% else %}vide{% endif %}",
        }), "test")  # fmt: skip
    lea = shopper(shop.db, shop.clock, "lea@example.com", shop.locations["LYO-1"])
    tom = shopper(shop.db, shop.clock, "tom@example.com", None)
    cart_of(shop, lea.id, ("ROBE-LIN-S", 2))
    with shop.db.transaction() as session:
        for who in (lea, tom):
            request = SendRequest(who.id, "panier", f"panier:{who.id}")
            send_message(session, shop.clock.now(), request, outlets(box))
    assert [m.text.strip() for m in box.emails] == ["Robe en lin lavande x2", "vide"]


def test_recommendations_are_best_sellers_in_stock_where_the_person_shops(shop: Shop) -> None:
    db, clock = shop.db, shop.clock
    builders.add_product(db, clock, "ROBE-SOIE", name_fr="Robe en soie")
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "web", 8990)
    builders.receive(db, clock, "ROBE-SOIE-S", shop.locations["LYO-1"], 4)
    lyon = shopper(db, clock, "lyon@example.com", shop.locations["LYO-1"], favourite="robes")
    online = shopper(db, clock, "web@example.com", None, favourite="robes")
    nobody = shopper(db, clock, "new@example.com", None)  # no favourite category yet
    other, now = shop.customer_id, clock.now()
    assert other is not None
    sale(db, other, now - timedelta(days=5), ("ROBE-LIN-S", "robes"))
    sale(db, other, now - timedelta(days=9), ("ROBE-LIN-S", "robes"), ("BOUGIE-S", "maison"))
    sale(db, lyon.id, now - timedelta(days=30), ("ROBE-LIN-S", "robes"))  # lyon has it
    sale(db, other, now - timedelta(days=2), ("ROBE-SOIE-M", "robes"))  # no stock anywhere
    sale(db, other, now - timedelta(days=3), ("ROBE-SOIE-M", "robes"))
    sale(db, other, now - timedelta(days=60), ("ROBE-LIN-M", "robes"))
    sale(db, other, now - timedelta(days=100), ("ROBE-SOIE-S", "robes"))  # too long ago
    with db.transaction() as session:
        found = BestSellers().recommend_for(session, now, [lyon, online, nobody], 4)
    # Best sellers in "robes" over 90 days: ROBE-LIN-S (3 orders), ROBE-SOIE-M (2),
    # ROBE-LIN-M (1). Lyon bought ROBE-LIN-S; LYO-1 holds ROBE-LIN-M (1) but no SOIE-M.
    assert [r["sku"] for r in found[lyon.id]] == ["ROBE-LIN-M"]
    assert found[lyon.id][0]["name"] == "Robe en lin lavande"
    assert found[lyon.id][0]["price"].replace("\xa0", " ") == "89,90 €"
    assert [r["sku"] for r in found[online.id]] == ["ROBE-LIN-S", "ROBE-LIN-M"]  # web stock
    assert nobody.id not in found


def test_the_abandoned_cart_reminder_shows_the_orders_cart(
    db: Database, clock: ManualClock
) -> None:
    shop = build_shop(db, clock)
    template(db, clock)
    journey(db, clock, {
        "trigger": {"type": "event", "event": "Product Added"},
        "steps": [
            {"id": "wait", "type": "wait", "hours": 1, "next": "open"},
            {"id": "open", "type": "condition", "if": {"kind": "cart_open"},
             "yes": "send", "no": "done"},
            {"id": "send", "type": "send", "template": "relance", "with_cart": True},
            {"id": "done", "type": "exit", "reason": "cart emptied"},
        ],
        "reentry": {"mode": "always"},
    })  # fmt: skip
    worker = Worker(db, clock)
    lyon = str(shop.locations["LYO-1"])
    profiles = [
        person(db, clock, f"u{n}", f"client{n}@example.com", preferred_store_id=lyon)
        for n in range(3)
    ]
    for n, profile_id in enumerate(profiles):
        cart_of(shop, profile_id, ("ROBE-LIN-S", n + 1))  # logs Product Added for them
    worker.run()
    with db.transaction() as session:  # the third person empties their cart
        [cart_id] = session.scalars(select(Cart.id).where(Cart.customer_id == profiles[2])).all()
        carts.remove_line(session, clock.now(), cart_id, "ROBE-LIN-S")
    clock.advance(timedelta(minutes=61))
    worker.run()
    texts = sorted(m.text for m in worker.box.emails)
    assert len(texts) == 2, "both reminders go out in one batch; the emptied cart exits"
    assert "ROBE-LIN-S x1 (3)" in texts[0]
    assert "ROBE-LIN-S x2 (3)" in texts[1]
    assert stats(db)["send"] == (2, 0, 2, 0)
