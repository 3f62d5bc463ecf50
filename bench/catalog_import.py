"""Catalogue import rows/s: a CSV of variant rows (product fields, GTIN, five channel
prices) generated in a temporary folder, imported through `parcours.catalog`'s bulk path
(executemany on SQLite, COPY on PostgreSQL) into a fresh database.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from bench import BenchmarkError
from bench.report import Report, Table, count, note, seconds
from parcours import catalog
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.db import Database
from parcours.core.migrate import upgrade

DESCRIPTION = "Catalogue import rows/s (CSV, 100k variant rows, bulk path: executemany / COPY)"
CHANNELS = ("web", "app", "store", "call_centre", "marketplace")
HEADER = (
    "product_code,brand,category,vat_rate,name_fr,name_en,description_fr,description_en,"
    "sku,gtin,options," + ",".join(f"price_{c}" for c in CHANNELS)
)
SIZES = ("XS", "S", "M", "L", "XL")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench catalog_import", description=DESCRIPTION)
    parser.add_argument("--rows", type=int, default=100_000, help="variant rows (default: 100000)")
    parser.add_argument(
        "--database-url",
        help="an EMPTY, migrated-or-not database, e.g. postgresql+psycopg://user@host/db "
        "(default: a SQLite file in a temporary folder)",
    )
    options = parser.parse_args(argv)
    if options.rows < 1:
        parser.error("--rows must be at least 1")
    return options


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for index in range(rows):
            product = index // len(SIZES)
            size = SIZES[index % len(SIZES)]
            gtin = catalog.make_gtin13(f"376{index:09d}")
            price = 1_990 + (product % 100) * 100
            prices = ",".join(str(price) for _ in CHANNELS)
            out.write(
                f"B-{product:06d},bench,bench,20,Robe en lin n°{product},"
                f"Linen dress no. {product},Une robe légère,A light dress,"
                f"B-{product:06d}-{size},{gtin},size={size},{prices}\n"
            )


def prepare(db: Database) -> None:
    with db.transaction() as session:
        if catalog.count_products(session):
            raise BenchmarkError("the database already holds products: give an empty one")
        catalog.add_brand(session, "bench", "Bench")
        catalog.add_category(session, "bench", "Banc d'essai", "Bench")
        for code in CHANNELS:
            kind = "call_centre" if code == "call_centre" else code
            catalog.add_channel(session, SYSTEM_CLOCK.now(), {"code": code, "kind": kind})


def run(argv: list[str]) -> Report:
    options = parse(argv)
    with TemporaryDirectory(prefix="parcours-bench-") as folder:
        url = options.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        db = Database.connect(url)
        try:
            upgrade(db)
            prepare(db)
            source = Path(folder) / "catalogue.csv"
            note(f"writing {options.rows:,} rows to {source.name}")
            write_file(source, options.rows)
            note(f"importing into {db.dialect}")
            started = time.perf_counter()
            with db.transaction() as session, source.open(encoding="utf-8") as stream:
                report = catalog.import_file(session, SYSTEM_CLOCK.now(), stream, "csv")
            elapsed = time.perf_counter() - started
        finally:
            db.dispose()
    if report.variants != options.rows:
        raise BenchmarkError(f"imported {report.variants} variants, expected {options.rows}")
    rate = options.rows / elapsed
    figures = {
        "database": db.dialect,
        "rows": options.rows,
        "products": report.products,
        "prices": report.prices,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(rate),
        "bulk_path": "COPY" if db.dialect == "postgresql" else "executemany",
    }
    table = Table(
        "Import",
        ("database", "rows", "products", "prices", "seconds", "rows/s"),
        [
            (
                db.dialect,
                count(options.rows),
                count(report.products),
                count(report.prices),
                seconds(elapsed),
                count(rate),
            )
        ],
    )
    return Report(f"Catalogue import of {options.rows:,} variant rows", figures, [table])
