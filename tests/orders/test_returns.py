"""Returns anywhere: restocked where received when resaleable, refunded through the
payment, never more than bought."""

from __future__ import annotations

import uuid

import pytest

from parcours import inventory
from parcours.core.errors import InvalidInput
from parcours.orders import lifecycle, returns
from parcours.orders.models import OrderLine, Payment, Return, ReturnLine
from parcours.orders.service import ORDER_REFUNDED, RETURN_RECEIVED, get_order
from tests.orders.conftest import Shop
from tests.orders.order_builders import Placed, event_types, outbox_payloads, place_order

DRESS = 8990


def collected(shop: Shop, qty: int = 2, **options: object) -> Placed:
    options.setdefault("provider", "simulator")
    options.setdefault("captured", True)
    placed = place_order(shop, [("ROBE-LIN-S", qty)], **options)  # type: ignore[arg-type]
    for step in ("picking", "ready_for_pickup", "collected"):
        with shop.db.transaction() as session:
            lifecycle.transition(session, shop.clock.now(), placed.fulfilment_id, step, "staff")
    return placed


def bring_back(
    shop: Shop,
    placed: Placed,
    at: str,
    *items: tuple[int, int, str],
    channel: str = "store",
    resolution: str = "refund",
    exchange: uuid.UUID | None = None,
) -> Return:
    lines = [returns.ReturnLineInput(no, qty, "too_small", cond) for no, qty, cond in items]
    with shop.db.transaction() as session:
        record = returns.receive_return(
            session, shop.clock.now(), get_order(session, placed.id), shop.locations[at],
            lines, "staff:ines", channel=channel, resolution=resolution,
            exchange_order_id=exchange,
        )  # fmt: skip
        session.expunge(record)
        return record


def on_hand(shop: Shop, sku: str, at: str) -> int:
    with shop.db.transaction() as session:
        levels = inventory.stock_for_sku(session, sku)
        return sum(lvl.on_hand for lvl in levels if lvl.location_id == shop.locations[at])


def test_a_resaleable_return_in_another_store_is_restocked_there_and_refunded(
    shop: Shop,
) -> None:
    placed = collected(shop)
    record = bring_back(shop, placed, "LYO-2", (1, 1, "resaleable"))
    assert record.number.startswith("R2026-")
    assert (record.status, record.refund_amount) == ("refunded", DRESS)
    assert on_hand(shop, "ROBE-LIN-S", "LYO-2") == 2
    assert on_hand(shop, "ROBE-LIN-S", "LYO-1") == 1
    with shop.db.transaction() as session:
        payment = session.query(Payment).filter_by(order_id=placed.id).one()
        assert payment.refunded_amount == DRESS
        line = session.query(OrderLine).filter_by(order_id=placed.id).one()
        assert line.returned_quantity == 1
    types = event_types(shop)
    assert types.count(RETURN_RECEIVED) == 1
    assert types.count(ORDER_REFUNDED) == 1
    [received] = outbox_payloads(shop, RETURN_RECEIVED)
    assert received["properties"]["products"][0]["quantity"] == 1
    assert received["properties"]["return_number"] == record.number


def test_damaged_goods_are_recorded_refunded_and_not_restocked(shop: Shop) -> None:
    placed = collected(shop)
    record = bring_back(shop, placed, "LYO-1", (1, 2, "damaged"))
    assert record.refund_amount == 2 * DRESS
    assert on_hand(shop, "ROBE-LIN-S", "LYO-1") == 1
    with shop.db.transaction() as session:
        [line] = session.query(ReturnLine).filter_by(return_id=record.id).all()
        assert (line.condition, line.restocked, line.quantity) == ("damaged", False, 2)


def test_returning_more_than_bought_is_400_naming_the_line_and_changes_nothing(
    shop: Shop,
) -> None:
    placed = collected(shop)
    bring_back(shop, placed, "LYO-1", (1, 1, "resaleable"))
    with pytest.raises(returns.ReturnExceedsPurchase) as refused:
        bring_back(shop, placed, "LYO-1", (1, 1, "resaleable"), (1, 1, "damaged"))
    assert refused.value.status == 400
    assert "Line 1 (ROBE-LIN-S)" in refused.value.detail
    assert refused.value.errors[0].pointer == "#/lines/1/quantity"
    with shop.db.transaction() as session:
        assert session.query(OrderLine).filter_by(order_id=placed.id).one().returned_quantity == 1
        assert session.query(Return).count() == 1
    assert on_hand(shop, "ROBE-LIN-S", "LYO-1") == 2


def test_goods_not_yet_handed_over_cannot_be_returned(shop: Shop) -> None:
    placed = place_order(shop, [("ROBE-LIN-S", 1)])
    with pytest.raises(returns.ReturnExceedsPurchase, match="only 0 can be"):
        bring_back(shop, placed, "LYO-1", (1, 1, "resaleable"))


def test_parcels_go_to_a_warehouse_and_desks_need_the_returns_service(shop: Shop) -> None:
    placed = collected(shop)
    by_post = bring_back(shop, placed, "WH-1", (1, 1, "resaleable"), channel="post")
    assert on_hand(shop, "ROBE-LIN-S", "WH-1") == 21
    assert by_post.channel == "post"
    for at, channel in (("LYO-2", "post"), ("WH-1", "store")):
        with pytest.raises(InvalidInput) as refused:
            bring_back(shop, placed, at, (1, 1, "resaleable"), channel=channel)
        assert refused.value.errors[0].pointer == "#/location_id"


def test_bad_reasons_conditions_and_lines_are_pointed_at(sqlite_shop: Shop) -> None:
    placed = collected(sqlite_shop)
    lines = [
        returns.ReturnLineInput(1, 0, "bored", "mint"),
        returns.ReturnLineInput(9, 1, "other", "damaged"),
    ]
    with sqlite_shop.db.transaction() as session:
        order = get_order(session, placed.id)
        where = sqlite_shop.locations["LYO-1"]
        with pytest.raises(InvalidInput) as refused:
            returns.receive_return(session, sqlite_shop.clock.now(), order, where, lines, "x")
    pointers = {e.pointer for e in refused.value.errors}
    assert pointers == {"#/lines/0/quantity", "#/lines/0/reason", "#/lines/0/condition"}
    with pytest.raises(InvalidInput, match="no line 9"):
        bring_back(sqlite_shop, placed, "LYO-1", (9, 1, "damaged"))


def test_an_exchange_moves_no_money_and_remembers_the_new_order(shop: Shop) -> None:
    placed = collected(shop)
    replacement = place_order(shop, [("ROBE-LIN-M", 1)])
    record = bring_back(
        shop, placed, "LYO-1", (1, 1, "resaleable"), resolution="exchange", exchange=replacement.id
    )
    assert (record.status, record.refund_amount) == ("exchanged", 0)
    assert record.exchange_order_id == replacement.id
    assert ORDER_REFUNDED not in event_types(shop)


def test_an_order_never_paid_online_has_nothing_to_refund(shop: Shop) -> None:
    placed = collected(shop, 1, provider="in_store", captured=False)
    record = bring_back(shop, placed, "LYO-1", (1, 1, "resaleable"))
    assert (record.status, record.refund_amount) == ("received", 0)
