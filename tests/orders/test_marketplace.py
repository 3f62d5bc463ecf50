"""Marketplace CSV imports: one order per marketplace order, shipped from a warehouse with
stock, re-imports skipped, bad rows reported; and the `parcours orders` commands."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from parcours.core.commandline import CliState
from parcours.core.imports import ImportRejected
from parcours.orders import marketplace, service
from parcours.orders.cli import app
from parcours.orders.models import Order
from tests.orders.conftest import Shop

HEADER = (
    "order_id,date,sku,quantity,unit_price,email,shipping_name,shipping_address,"
    "shipping_postcode,shipping_city\n"
)
ADDRESS = "Léa Martin,3 rue Mercière,69002,Lyon"


def csv(*rows: str) -> str:
    return HEADER + "".join(row + "\n" for row in rows)


GOOD = csv(
    f"MP-1,2026-03-13T18:00:00+01:00,ROBE-LIN-S,2,74.91,lea.martin@example.com,{ADDRESS}",
    f"MP-1,2026-03-13T18:00:00+01:00,BOUGIE-S,1,1658,lea.martin@example.com,{ADDRESS}",
    f'MP-2,2026-03-13T19:00:00Z,BOUGIE-S,3,"16,58",,{ADDRESS}',
)


def run_import(
    shop: Shop, text: str, all_or_nothing: bool = False
) -> marketplace.MarketplaceReport:
    with shop.db.transaction() as session:
        return marketplace.import_marketplace(
            session, shop.clock.now(), io.StringIO(text), "zalando", all_or_nothing
        )


def orders(shop: Shop) -> int:
    with shop.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(Order)) or 0


def test_rows_become_one_paid_order_per_marketplace_order_held_at_the_warehouse(
    shop: Shop,
) -> None:
    report = run_import(shop, GOOD)
    assert (len(report.imported), report.errors) == (2, [])
    with shop.db.transaction() as session:
        order = session.scalar(select(Order).where(Order.external_ref == "MP-1"))
        assert order is not None
        assert (order.channel, order.source, order.status) == (
            "marketplace",
            "marketplace:zalando",
            "paid",
        )
        assert order.number.startswith("M2026-")
        assert order.total == 2 * 7491 + 1658
        assert order.shipping_address is not None
        assert order.shipping_address["city"] == "Lyon"
        [fulfilment] = service.fulfilments_of(session, order.id)
        assert (fulfilment.mode, fulfilment.status) == ("home_delivery", "allocated")
        assert fulfilment.location_id == shop.locations["WH-1"]
        lines = service.lines_of(session, order.id)
        assert all(line.reservation_id is not None for line in lines)
        [payment] = service.payments_of(session, order.id)
        assert (payment.status, payment.amount) == ("captured", order.total)
    assert shop.available("ROBE-LIN-S", "WH-1") == 18
    assert shop.available("BOUGIE-S", "WH-1") == 50 - 4


def test_a_reimport_skips_the_orders_already_imported_and_says_so(shop: Shop) -> None:
    run_import(shop, GOOD)
    again = run_import(shop, GOOD)
    assert again.imported == []
    assert sorted(again.skipped) == ["MP-1", "MP-2"]
    assert orders(shop) == 2


def test_bad_rows_are_reported_and_never_half_an_order_is_imported(shop: Shop) -> None:
    text = csv(
        f"MP-3,2026-03-13T18:00:00+01:00,ROBE-LIN-S,1,74.91,,{ADDRESS}",
        f"MP-3,yesterday,BOUGIE-S,1,16.58,,{ADDRESS}",
        f"MP-4,2026-03-13T18:00:00Z,NOPE-1,1,10.00,,{ADDRESS}",
        f"MP-5,2026-03-13T18:00:00Z,BOUGIE-M,1,12.5x,not-an-email,{ADDRESS}",
        f"MP-6,2026-03-13T18:00:00Z,ROBE-LIN-M,1,74.91,,{ADDRESS}",  # no warehouse stock
        f"MP-7,2026-03-13T18:00:00Z,BOUGIE-S,1,16.58,,{ADDRESS}",
    )
    report = run_import(shop, text)
    problems = {(e.row, e.column) for e in report.errors}
    assert {(3, "date"), (2, "order_id"), (4, "sku"), (5, "unit_price"), (5, "email")} <= problems
    assert (6, "sku") in problems
    assert any("No warehouse" in e.message for e in report.errors if e.row == 6)
    assert len(report.imported) == 1
    with shop.db.transaction() as session:
        refs = set(session.scalars(select(Order.external_ref)))
    assert refs == {"MP-7"}
    assert shop.available("ROBE-LIN-S", "WH-1") == 20


def test_all_or_nothing_imports_nothing_when_a_row_is_bad(shop: Shop) -> None:
    text = GOOD + f"MP-9,2026-03-13T18:00:00Z,ROBE-LIN-M,1,74.91,,{ADDRESS}\n"
    with pytest.raises(ImportRejected) as rejected:
        run_import(shop, text, all_or_nothing=True)
    assert rejected.value.row_errors[0].row == 5
    assert orders(shop) == 0
    assert shop.available("BOUGIE-S", "WH-1") == 50


def test_prices_read_as_cents_or_euros() -> None:
    assert marketplace.parse_price("1290") == 1290
    assert marketplace.parse_price("12.9") == 1290
    assert marketplace.parse_price("12,90") == 1290
    with pytest.raises(ValueError, match="neither"):
        marketplace.parse_price("12.905")


# ------------------------------------------------------------------ the command line


@pytest.fixture
def cli(sqlite_shop: Shop, monkeypatch: pytest.MonkeyPatch) -> Shop:
    monkeypatch.setattr(CliState, "_db", sqlite_shop.db)
    # The command line reads the system clock: keep the shop's "now" close to it.
    return sqlite_shop


def test_the_command_imports_a_marketplace_file_and_reports_bad_rows(
    cli: Shop, tmp_path: Path
) -> None:
    file = tmp_path / "orders.csv"
    file.write_text(GOOD + f"MP-9,2026-03-13T18:00:00Z,NOPE,1,1.00,,{ADDRESS}\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["import-marketplace", str(file), "--marketplace", "zalando"])
    assert result.exit_code == 1, result.output
    assert "Imported 2 orders" in " ".join(result.output.split())
    assert "not in the catalogue" in result.output
    again = runner.invoke(app, ["import-marketplace", str(file), "--marketplace", "zalando"])
    assert "2 already imported" in " ".join(again.output.split())
    strict = runner.invoke(
        app, ["import-marketplace", str(file), "--marketplace", "amazon", "--all-or-nothing"]
    )
    assert strict.exit_code != 0
    assert orders(cli) == 2


def test_the_command_records_an_offline_till_file(cli: Shop, tmp_path: Path) -> None:
    sold_at = (cli.clock.now() - timedelta(days=400)).isoformat()  # long before the real now
    receipt = {
        "store": "LYO-1", "till": "T9", "cashier": "c.durand", "number": "1", "sold_at": sold_at,
        "lines": [{"sku": "BOUGIE-S", "quantity": 1, "unit_price": 1990}],
        "payments": [{"method": "cash", "amount": 1990}],
    }  # fmt: skip
    lines = [
        json.dumps(receipt),
        "",
        json.dumps({**receipt, "number": "2", "store": "NOPE"}),
        "{not json",
        json.dumps(receipt),
    ]
    file = tmp_path / "till.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import-receipts", str(file)])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "Recorded 1 receipts" in said
    assert "1 were already recorded, 2 rejected" in said
    assert "#/receipts/1/store" in result.output
    assert orders(cli) == 1
