"""Demo step: the purchases of the two years of activity, stored as orders.

Every `Order Completed` the activity step sent (web and app orders delivered at home,
collected in store, at the drive or shipped from a store; till receipts; call-centre
orders) becomes an order with its fulfilment, payment and timeline, through the orders
context's history loader. About one online order in ten and one receipt in thirty has
a line brought back (by post or in a store), and one online order in fifty was
cancelled. Most revenue is made in store; click & collect and drive grow over time
(the activity step draws the modes).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from parcours import orders
from parcours.orders import PastLine, PastOrder

if TYPE_CHECKING:
    from parcours.demo.generator import DemoRun

SOURCES = {"web": "checkout", "app": "checkout", "store": "pos", "call_centre": "call_centre"}
REASONS = ("too_small", "too_large", "not_as_described", "changed_mind", "damaged_in_transit")
FREE_DELIVERY_FROM = 6_000
DELIVERY_FEE = 490


def _lines(rng: Any, properties: dict[str, Any], returns: bool) -> list[PastLine]:
    products = properties["products"]
    returned = rng.randrange(len(products)) if returns else -1
    return [
        PastLine(
            sku=p["sku"],
            name=p["name"],
            quantity=p.get("quantity", 1),
            unit_price=round(p["price"] * 100),
            category=p.get("category"),
            returned=1 if index == returned else 0,
        )
        for index, p in enumerate(products)
    ]


def past_order(run: DemoRun, sale: dict[str, Any], warehouse: uuid.UUID) -> PastOrder:
    rng, props, channel = run.rng, sale["properties"], sale["channel"]
    mode = props.get("fulfilment", "home_delivery")
    online = channel in ("web", "app", "call_centre")
    store = props.get("store_id") or sale["store_id"]
    store_id = uuid.UUID(str(store)) if store else None
    location = store_id if mode != "home_delivery" and store_id else warehouse
    returns = rng.random() < (0.10 if online else 0.03)
    lines = _lines(rng, props, returns)
    subtotal = sum(line.unit_price * line.quantity for line in lines)
    shipped = mode in ("home_delivery", "ship_from_store")
    by_post = shipped and rng.random() < 0.6
    return PastOrder(
        source=SOURCES.get(channel, channel),
        external_ref=props["order_id"],
        channel=channel,
        mode=mode,
        placed_at=sale["at"],
        location_id=location,
        lines=lines,
        store_id=store_id if mode != "home_delivery" else None,
        customer_id=sale["customer_id"],
        anonymous_id=sale["anonymous_id"],
        delivery_fee=DELIVERY_FEE if shipped and subtotal < FREE_DELIVERY_FROM else 0,
        payment_method=props.get("payment_method", "card"),
        cancelled=online and not returns and rng.random() < 0.02,
        return_reason=rng.choice(REASONS),
        return_location_id=warehouse if by_post else store_id,
    )


def generate_orders(run: DemoRun) -> None:
    if not run.orders:
        return
    warehouse = next(uuid.UUID(str(s["id"])) for s in run.stores if s["kind"] == "warehouse")
    past = [past_order(run, sale, warehouse) for sale in run.orders]
    stored = 0
    for start in range(0, len(past), 5_000):
        with run.db.transaction() as session:
            stored += orders.load_history(session, past[start : start + 5_000])
        run.progress("orders", min(start + 5_000, len(past)), len(past))
    run.counts["orders"] = stored
