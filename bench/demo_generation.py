"""Time the demo retailer's generation into a fresh database, step by step.

The target comes from the demo's issue: `medium` (50k customers) in under 2 minutes.
Steps are timed from the generator's progress callback, which each step calls after
its last write, so a step's time runs from the previous step's last report to its own.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

from sqlalchemy import inspect

from bench import BenchmarkError
from bench.report import Figures, Report, Table, count, note, seconds, verdict
from parcours.core.db import Database, DatabaseUnavailable, safe_url
from parcours.core.migrate import upgrade
from parcours.demo.generator import SIZES, demo_is_present, generate

DESCRIPTION = "Demo retailer generation (stores, customers, consents) into a fresh database"

# A fixed "today" so that every run generates the same rows for a seed.
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
TARGET_S = {"medium": 120.0}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench demo_generation", description=DESCRIPTION
    )
    sizes = ", ".join(f"{name} ({size.customers:,} customers)" for name, size in SIZES.items())
    parser.add_argument(
        "--size", choices=list(SIZES), default="small", help=f"{sizes}; default: small"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument(
        "--database-url",
        help="an EMPTY database to generate into, e.g. postgresql+psycopg://user@host/db; "
        "the bench migrates it and never deletes anything (default: a new SQLite file "
        "in a temporary folder, removed afterwards)",
    )
    return parser.parse_args(argv)


@dataclass
class StepClock:
    """The generator's progress callback: when each step last reported, and how much."""

    started: float
    ends: dict[str, float] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)

    def __call__(self, step: str, done: int, total: int) -> None:
        self.ends[step] = time.perf_counter()
        self.done[step] = done
        note(f"{step}: {done:,}/{total:,}")

    def durations(self) -> list[tuple[str, float]]:
        previous = self.started
        result = []
        for step, end in self.ends.items():
            result.append((step, end - previous))
            previous = end
        return result


def _require_empty(db: Database) -> None:
    """Refuse a database that holds anything but an empty Parcours schema."""
    try:
        db.ping()
    except DatabaseUnavailable as exc:
        raise BenchmarkError(str(exc)) from None
    tables = inspect(db.engine).get_table_names()
    if tables and "alembic_version" not in tables:
        raise BenchmarkError(
            f"{safe_url(str(db.engine.url))} holds {len(tables)} tables that are not "
            f"Parcours's (e.g. {', '.join(sorted(tables)[:3])}); give an empty database."
        )


@contextmanager
def target_database(url: str | None) -> Iterator[Database]:
    """The given database (checked empty), or a new SQLite file removed afterwards."""
    if url:
        db = Database.connect(url)
        try:
            _require_empty(db)
            yield db
        finally:
            db.dispose()
        return
    with TemporaryDirectory(prefix="parcours-bench-") as folder:
        db = Database.connect(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            yield db
        finally:
            db.dispose()


def run(argv: list[str]) -> Report:
    options = parse(argv)
    with target_database(options.database_url) as db:
        where = safe_url(str(db.engine.url))
        started = time.perf_counter()
        upgrade(db)
        migrate_s = time.perf_counter() - started
        if demo_is_present(db):
            raise BenchmarkError(
                f"{where} already holds stores or customers; give an empty database "
                "(the bench never deletes data)."
            )
        note(f"generating the {options.size} demo (seed {options.seed}) into {where}")
        clock = StepClock(time.perf_counter())
        result = generate(db, options.seed, options.size, now=AS_OF, progress=clock)
        elapsed = time.perf_counter() - clock.started
        dialect = db.dialect
    counts = {name: int(value) for name, value in result.items() if name != "seconds"}
    return _report(options, dialect, migrate_s, elapsed, counts, clock)


def _report(
    options: argparse.Namespace,
    dialect: str,
    migrate_s: float,
    elapsed: float,
    counts: dict[str, int],
    clock: StepClock,
) -> Report:
    rows = counts.get("customers", 0) + counts.get("consents", 0) + counts.get("stores", 0)
    figures: Figures = {
        "size": options.size,
        "seed": options.seed,
        "database": dialect,
        "seconds": round(elapsed, 3),
        "customers_per_s": round(counts.get("customers", 0) / elapsed),
        "rows_per_s": round(rows / elapsed),
        **counts,
        "migrate_s": round(migrate_s, 3),
    }
    step_rows = []
    for step, step_s in clock.durations():
        items = clock.done[step]
        step_rows.append(
            (step, seconds(step_s), f"{step_s / elapsed:.0%}", count(items), count(items / step_s))
        )
        figures[f"step_{step}_s"] = round(step_s, 3)
    totals = [
        ("seconds", seconds(elapsed)),
        *((name, count(value)) for name, value in counts.items()),
        ("rows (customers + consents + stores)", count(rows)),
        ("customers/s", count(counts.get("customers", 0) / elapsed)),
        ("rows/s", count(rows / elapsed)),
        ("migrations before (not counted), s", seconds(migrate_s)),
    ]
    target = TARGET_S.get(options.size)
    if target is not None:
        figures["target_s"] = target
        figures["meets_target"] = elapsed < target
        totals.append((f"target: under {target:.0f} s", verdict(elapsed < target)))
    title = f"Demo generation: {options.size}, seed {options.seed}, {dialect}"
    steps = Table(
        "Steps (items: what the step reported done)",
        ("step", "seconds", "share", "items", "items/s"),
        step_rows,
    )
    return Report(title, figures, [steps, Table("Totals", ("what", "value"), totals)])
