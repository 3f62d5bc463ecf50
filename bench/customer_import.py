"""Customer import rows/s: a store loyalty file (card number, name, email, mobile, French
postcode, birth date) generated in a temporary folder, validated and fed to the identity
graph in chunks (`parcours.customers.imports`) with a checkpoint per chunk, into a fresh
database. Then the same people arrive again in a web accounts file (known emails, new
user ids): the import that merges with existing profiles.
"""

from __future__ import annotations

import argparse
import io
import random
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from bench import BenchmarkError
from bench.report import Report, Table, count, note, seconds
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.db import Database
from parcours.core.migrate import upgrade
from parcours.customers import imports

DESCRIPTION = "Customer import rows/s (CSV loyalty rows through the identity graph, then merges)"
CITIES = (("69002", "Lyon"), ("75011", "Paris"), ("13001", "Marseille"), ("33000", "Bordeaux"))
FIRST = ("Léa", "Zoé", "Jules", "Hugo", "Chloé", "Louis", "Inès", "Gabriel", "Manon", "Adam")
LAST = ("Martin", "Bernard", "Durand", "Petit", "Robert", "Richard", "Moreau", "Simon")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench customer_import", description=DESCRIPTION
    )
    parser.add_argument(
        "--rows", type=int, default=10_000, help="rows (default: 10000; the target is 100000)"
    )
    parser.add_argument("--chunk", type=int, default=imports.DEFAULT_CHUNK, help="rows per chunk")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url",
        help="an EMPTY database, e.g. postgresql+psycopg://user@host/db "
        "(default: a SQLite file in a temporary folder)",
    )
    options = parser.parse_args(argv)
    if options.rows < 1:
        parser.error("--rows must be at least 1")
    return options


def write_files(folder: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """The loyalty file and, for the same people, a web accounts file."""
    rng = random.Random(seed)
    pos, web = io.StringIO(), io.StringIO()
    pos.write("N° carte,Nom,Prénom,Email,Mobile,Code postal,Ville,Date de naissance\n")
    web.write("account_id,email,first_name,last_name,zip,city\n")
    for n in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        postcode, city = rng.choice(CITIES)
        email = f"{first.lower()}.{last.lower()}.{n}@example.com".replace("é", "e")
        digits = f"{12 + n // 1_000_000:02d}{n % 1_000_000:06d}"
        mobile = "06 " + " ".join(digits[i : i + 2] for i in range(0, 8, 2))
        born = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1940, 2005)}"
        pos.write(f"C-{n:08d},{last},{first},{email},{mobile},{postcode},{city},{born}\n")
        web.write(f"W-{n:08d},{email},{first},{last},{postcode},{city}\n")
    pos_path, web_path = folder / "loyalty.csv", folder / "web.csv"
    pos_path.write_text(pos.getvalue(), encoding="utf-8")
    web_path.write_text(web.getvalue(), encoding="utf-8")
    return pos_path, web_path


def timed_import(
    db: Database, path: Path, plan: imports.ImportPlan
) -> tuple[imports.ImportReport, float]:
    started = time.perf_counter()
    with path.open("rb") as stream:
        report = imports.import_customers(db, SYSTEM_CLOCK, CLI_ACTOR, stream, path.name, plan)
    return report, time.perf_counter() - started


def run(argv: list[str]) -> Report:
    options = parse(argv)
    with TemporaryDirectory(prefix="parcours-bench-") as folder:
        url = options.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        db = Database.connect(url)
        try:
            upgrade(db)
            note(f"writing {options.rows:,} rows to loyalty.csv and web.csv")
            pos_path, web_path = write_files(Path(folder), options.rows, options.seed)
            note(f"importing the loyalty file into {db.dialect}")
            pos_plan = imports.ImportPlan(
                "pos", "csv", preset="pos_loyalty", chunk_size=options.chunk
            )
            pos, pos_s = timed_import(db, pos_path, pos_plan)
            note("importing the web accounts of the same people")
            web_plan = imports.ImportPlan(
                "web", "csv", preset="web_accounts", chunk_size=options.chunk
            )
            web, web_s = timed_import(db, web_path, web_plan)
        finally:
            db.dispose()
    for report in (pos, web):
        if report.rows_imported != options.rows:
            raise BenchmarkError(
                f"{report.file_name}: imported {report.rows_imported} of {options.rows} rows "
                f"({report.errors[:3]})"
            )
    figures = {
        "database": db.dialect,
        "rows": options.rows,
        "chunk": options.chunk,
        "new_profiles_seconds": round(pos_s, 3),
        "new_profiles_rows_per_s": round(options.rows / pos_s),
        "merging_seconds": round(web_s, 3),
        "merging_rows_per_s": round(options.rows / web_s),
    }
    table = Table(
        "Import",
        ("file", "what happens", "rows", "seconds", "rows/s"),
        [
            (
                "loyalty.csv",
                "new profiles",
                count(options.rows),
                seconds(pos_s),
                count(options.rows / pos_s),
            ),
            (
                "web.csv",
                "merged by email",
                count(options.rows),
                seconds(web_s),
                count(options.rows / web_s),
            ),
        ],
    )
    return Report(f"Customer import of {options.rows:,} rows on {db.dialect}", figures, [table])
