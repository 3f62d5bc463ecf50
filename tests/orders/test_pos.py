"""Till receipts become completed store orders: once each, with their stock and payments."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from parcours import inventory
from parcours.core.errors import Conflict, Forbidden, InvalidInput
from parcours.core.models import OutboxEvent
from parcours.orders import pos, service
from parcours.orders.models import Order, OrderEvent
from tests import builders
from tests.builders import utc
from tests.orders.conftest import Shop

SOLD_AT = utc(2026, 3, 14, 9, 12)


def receipt(number: str = "000451", **overrides: Any) -> pos.Receipt:
    base = pos.Receipt(
        store="LYO-1",
        till="T2",
        cashier="c.durand",
        number=number,
        sold_at=SOLD_AT,
        lines=[pos.ReceiptLine("ROBE-LIN-S", 1, 8990), pos.ReceiptLine("BOUGIE-S", 2, 1990, 500)],
        payments=[pos.Tender("card", 10000), pos.Tender("cash", 2470)],
    )
    return replace(base, **overrides)


def record(shop: Shop, r: pos.Receipt) -> pos.RecordedReceipt:
    with shop.db.transaction() as session:
        return pos.record_receipt(session, shop.clock.now(), r)


def count_orders(shop: Shop) -> int:
    with shop.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Order)) or 0


def test_a_receipt_becomes_a_completed_store_order_with_stock_and_payments(shop: Shop) -> None:
    recorded = record(shop, receipt())
    assert recorded.created
    with shop.db.transaction() as session:
        order = service.get_order(session, recorded.order.id)
        assert (order.channel, order.source, order.status) == ("store", "pos", "completed")
        assert order.external_ref == "LYO-1/T2/000451"
        assert order.number.startswith("S2026-")
        assert (order.total, order.discount_total, order.payment_status) == (12470, 500, "captured")
        assert order.placed_at == SOLD_AT
        # 20 % VAT in 89.90 is 14.98; 5.5 % in 34.80 is 1.81.
        assert order.vat_total == 1498 + 181
        [fulfilment] = service.fulfilments_of(session, order.id)
        assert (fulfilment.mode, fulfilment.status) == ("carry_out", "collected")
        assert fulfilment.location_id == shop.locations["LYO-1"]
        payments = service.payments_of(session, order.id)
        assert [(p.provider, p.method, p.amount, p.status) for p in payments] == [
            ("pos", "card", 10000, "captured"),
            ("pos", "cash", 2470, "captured"),
        ]
        lines = service.lines_of(session, order.id)
        assert [(line.sku, line.name, line.total) for line in lines] == [
            ("ROBE-LIN-S", lines[0].name, 8990),
            ("BOUGIE-S", lines[1].name, 3480),
        ]
        assert lines[1].category == "maison"
        kinds = [e.kind for e in service.timeline_of(session, order.id)]
        assert "placed" in kinds
        event = session.scalar(select(OutboxEvent).where(OutboxEvent.type == "Order Completed"))
        assert event is not None
        assert event.payload["number"] == order.number
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2


def test_a_receipt_sent_twice_is_stored_once_and_the_replay_answers_the_order(
    shop: Shop,
) -> None:
    first = record(shop, receipt())
    again = record(shop, receipt())
    assert not again.created
    assert again.order.id == first.order.id
    assert count_orders(shop) == 1
    assert shop.available("ROBE-LIN-S", "LYO-1") == 2


def test_the_same_receipt_number_with_another_total_is_a_conflict(shop: Shop) -> None:
    record(shop, receipt())
    changed = receipt(
        lines=[pos.ReceiptLine("ROBE-LIN-S", 1, 8990)], payments=[pos.Tender("card", 8990)]
    )
    with pytest.raises(Conflict, match="already recorded"):
        record(shop, changed)


def test_a_till_may_sell_what_the_books_lack_and_the_gap_is_recorded(shop: Shop) -> None:
    # LYO-1 holds 1 ROBE-LIN-M; the till sold 3.
    sale = receipt(
        lines=[pos.ReceiptLine("ROBE-LIN-M", 3, 8990)], payments=[pos.Tender("card", 26970)]
    )
    recorded = record(shop, sale)
    assert shop.available("ROBE-LIN-M", "LYO-1") == 0
    with shop.db.transaction() as session:
        levels = inventory.stock_for_sku(session, "ROBE-LIN-M")
        assert {lv.location_id: lv.on_hand for lv in levels}[shop.locations["LYO-1"]] == 0
        notes = [e.note for e in service.timeline_of(session, recorded.order.id)]
        assert any("adjustment of +2" in n for n in notes)


def test_unknown_store_sku_and_return_lines_are_refused_with_pointers(shop: Shop) -> None:
    with pytest.raises(InvalidInput) as unknown_store:
        record(shop, receipt(store="NOPE-9"))
    assert unknown_store.value.errors[0].pointer == "#/store"
    with pytest.raises(InvalidInput) as warehouse:
        record(shop, receipt(store="WH-1"))
    assert "warehouse" in warehouse.value.detail
    returned = receipt(
        lines=[pos.ReceiptLine("NOPE-1", 2, 1000), pos.ReceiptLine("BOUGIE-S", -1, 1990)],
        payments=[pos.Tender("card", 2000 - 1990)],
    )
    with pytest.raises(InvalidInput) as lines:
        record(shop, returned)
    pointers = {e.pointer: e.detail for e in lines.value.errors}
    assert "#/lines/0/sku" in pointers
    assert "returns API" in pointers["#/lines/1/quantity"]
    assert count_orders(shop) == 0


def test_payments_that_do_not_add_up_name_the_receipt(shop: Shop) -> None:
    with pytest.raises(pos.TotalsMismatch) as mismatch:
        record(shop, receipt(payments=[pos.Tender("card", 12000)]))
    assert mismatch.value.status == 400
    assert "000451" in mismatch.value.detail
    assert count_orders(shop) == 0
    assert shop.available("ROBE-LIN-S", "LYO-1") == 3


def test_a_sale_in_the_future_or_without_time_zone_is_refused(shop: Shop) -> None:
    with pytest.raises(InvalidInput, match="future"):
        record(shop, receipt(sold_at=utc(2026, 3, 14, 12, 0)))
    with pytest.raises(InvalidInput, match="time zone"):
        record(shop, receipt(sold_at=SOLD_AT.replace(tzinfo=None)))


def test_the_customer_is_found_by_email_and_unknown_identifiers_stay_anonymous(
    shop: Shop,
) -> None:
    known = record(shop, receipt("1", email="lea.martin@example.com"))
    assert known.order.customer_id is not None
    stranger = record(shop, receipt("2", email="Nobody@Example.com", loyalty_card="LAV-9"))
    assert stranger.order.customer_id is None
    assert stranger.order.email == "nobody@example.com"
    with shop.db.transaction() as session:
        notes = [
            e.note for e in session.scalars(select(OrderEvent).where(OrderEvent.kind == "note"))
        ]
    assert any("loyalty card" in n for n in notes)


def test_a_key_limited_to_one_store_cannot_post_for_another(shop: Shop) -> None:
    with shop.db.transaction() as session, pytest.raises(Forbidden):
        pos.record_receipt(session, shop.clock.now(), receipt(), allowed_stores=("PAR-1",))


def test_an_offline_batch_keeps_the_good_receipts_and_reports_the_bad(sqlite_shop: Shop) -> None:
    shop = sqlite_shop
    good = [receipt(str(n)) for n in range(3)]
    bad_store = receipt("9", store="NOPE-9")
    bad_total = receipt("10", payments=[pos.Tender("card", 1)])
    with shop.db.transaction() as session:
        result = pos.record_receipts(
            session, shop.clock.now(), [good[0], bad_store, good[1], bad_total, good[2]]
        )
    assert [index for index, _ in result.accepted] == [0, 2, 4]
    assert [(r.index, r.status) for r in result.rejected] == [(1, 422), (3, 400)]
    assert result.rejected[0].errors[0].pointer == "#/receipts/1/store"
    assert result.rejected[1].errors[-1].pointer == "#/receipts/3/payments"
    assert count_orders(shop) == 3


# ------------------------------------------------------------------ HTTP


def payload(number: str = "000451", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "store": "LYO-1",
        "till": "T2",
        "cashier": "c.durand",
        "number": number,
        "sold_at": "2026-03-14T10:12:00+01:00",
        "lines": [{"sku": "ROBE-LIN-S", "quantity": 1, "unit_price": 8990}],
        "payments": [{"method": "card", "amount": 8990}],
    }
    body.update(overrides)
    return body


@pytest.mark.anyio
async def test_receipts_over_http_once_per_key_and_per_receipt(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    auth = {"Authorization": f"Bearer {builders.api_key(shop.db, shop.clock, 'commerce:write')}"}
    first = await client.post("/v1/pos/receipts", json=payload(), headers=auth)
    assert first.status_code == 201, first.text
    assert first.json()["replayed"] is False
    keyed = {**auth, "Idempotency-Key": "till-T2-000451"}
    again = await client.post("/v1/pos/receipts", json=payload(), headers=keyed)
    assert again.json()["replayed"] is True
    replay = await client.post("/v1/pos/receipts", json=payload(), headers=keyed)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["order_id"] == first.json()["order_id"]
    assert count_orders(shop) == 1
    mismatch = await client.post(
        "/v1/pos/receipts",
        json=payload("2", payments=[{"method": "card", "amount": 1}]),
        headers=auth,
    )
    assert mismatch.status_code == 400
    assert mismatch.headers["content-type"].startswith("application/problem+json")
    unknown = await client.post("/v1/pos/receipts", json=payload("3", store="X"), headers=auth)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["pointer"] == "#/store"
    reader = builders.api_key(shop.db, shop.clock, "commerce:read")
    forbidden = await client.post(
        "/v1/pos/receipts", json=payload("4"), headers={"Authorization": f"Bearer {reader}"}
    )
    assert forbidden.status_code == 403


@pytest.mark.anyio
async def test_an_offline_upload_over_http_reports_each_bad_receipt(
    shop: Shop, client: httpx.AsyncClient
) -> None:
    auth = {"Authorization": f"Bearer {builders.api_key(shop.db, shop.clock, 'commerce:write')}"}
    broken_line = payload("2", lines=[{"sku": "ROBE-LIN-S", "quantity": "two", "unit_price": 1}])
    receipts = [payload("1"), broken_line, payload("3", store="NOPE-9"), payload("1")]
    response = await client.post(
        "/v1/pos/receipts/batch", json={"receipts": receipts}, headers=auth
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [a["index"] for a in body["accepted"]] == [0, 3]
    assert body["accepted"][1]["replayed"] is True
    rejected = {r["index"]: r for r in body["rejected"]}
    assert rejected[1]["errors"][0]["pointer"] == "#/receipts/1/lines/0/quantity"
    assert rejected[2]["errors"][0]["pointer"] == "#/receipts/2/store"
    assert count_orders(shop) == 1
    too_many = await client.post(
        "/v1/pos/receipts/batch", json={"receipts": [payload()] * 501}, headers=auth
    )
    assert too_many.status_code == 422
