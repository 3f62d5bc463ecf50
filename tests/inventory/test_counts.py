"""Stock counts from store files: count movements of the difference and a reconciliation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.inventory import counts
from parcours.inventory.models import StockLevel, StockMovement
from tests import builders
from tests.test_cli import parcours_in_process


def on_hand(db: Database, location_id: object) -> dict[str, int]:
    with db.transaction() as session:
        rows = session.scalars(select(StockLevel).where(StockLevel.location_id == location_id))
        return {row.sku: row.on_hand for row in rows}


def run_count(
    db: Database, clock: ManualClock, location_id: object, text: str, keep: bool = False
) -> counts.CountReport:
    rows, errors = counts.parse_count_file(text)
    with db.transaction() as session:
        return counts.import_count(session, clock.now(), location_id, rows, errors, keep)  # type: ignore[arg-type]


def test_a_count_corrects_on_hand_and_reports_each_difference(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, "C")
    builders.receive(db, clock, "A", lyon, 5)
    builders.receive(db, clock, "B", lyon, 2)
    report = run_count(db, clock, lyon, "sku;counted_quantity\nA;3\nB;2\nC;4\n")
    assert report.applied
    assert [(x.sku, x.expected, x.counted, x.delta) for x in report.lines] == [
        ("A", 5, 3, -2),
        ("B", 2, 2, 0),
        ("C", 0, 4, 4),
    ]
    assert report.movements == 2
    assert on_hand(db, lyon) == {"A": 3, "B": 2, "C": 4}
    with db.transaction() as session:
        moves = session.scalars(select(StockMovement).where(StockMovement.kind == "count")).all()
    assert sorted((m.sku, m.quantity) for m in moves) == [("A", -2), ("C", 4)]
    assert {m.reference for m in moves} == {report.reference}


def test_a_file_with_bad_rows_records_nothing_by_default(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, "A", "B", "C")
    text = "sku,counted_quantity\nA,3\nB,-1\nC,deux\nA,4\n,1\n"
    report = run_count(db, clock, lyon, text)
    assert not report.applied
    assert [(e.row, e.column) for e in report.errors] == [
        (3, "counted_quantity"),
        (4, "counted_quantity"),
        (5, "sku"),
        (6, "sku"),
    ]
    assert "first on line 2" in report.errors[2].message
    assert on_hand(db, lyon) == {}


def test_keep_good_rows_records_the_good_rows(db: Database, clock: ManualClock) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, "A", "B")
    report = run_count(db, clock, lyon, "sku,counted_quantity\nA,3\nB,1.5\n", keep=True)
    assert report.applied
    assert len(report.errors) == 1
    assert on_hand(db, lyon) == {"A": 3}


def test_a_sku_not_in_the_catalogue_is_a_bad_row_and_nothing_is_recorded(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, "A", "B")
    text = "sku,counted_quantity\nA,3\nGHOST,2\nB,x\n"
    report = run_count(db, clock, lyon, text)
    assert not report.applied
    assert [(e.row, e.column) for e in report.errors] == [(3, "sku"), (4, "counted_quantity")]
    assert "'GHOST' is not in the catalogue" in report.errors[0].message
    assert on_hand(db, lyon) == {}


def test_keep_good_rows_skips_the_skus_not_in_the_catalogue(
    db: Database, clock: ManualClock
) -> None:
    lyon = builders.location(db, clock)
    builders.track(db, clock, "A")
    report = run_count(db, clock, lyon, "sku,counted_quantity\nGHOST,2\nA,3\n", keep=True)
    assert report.applied
    assert [(e.row, e.column) for e in report.errors] == [(2, "sku")]
    assert [line.sku for line in report.lines] == ["A"]
    assert on_hand(db, lyon) == {"A": 3}


def test_a_file_without_the_columns_is_refused() -> None:
    with pytest.raises(InvalidInput, match="counted_quantity"):
        counts.parse_count_file("reference,qty\nA,3\n")


def test_the_command_line_imports_a_count_and_shows_stock(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parcours = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    clock = ManualClock()
    builders.location(sqlite_db, clock, "LYO-1")
    builders.track(sqlite_db, clock, "LAV-1", "LAV-2")
    good = tmp_path / "count.csv"
    good.write_text("sku,counted_quantity\nLAV-1,7\nLAV-2,0\n")
    result = parcours("inventory", "import-count", str(good), "--store", "LYO-1")
    assert result.returncode == 0, result.stderr
    assert "Reconciliation" in result.stdout
    assert "2 SKU(s) counted, 1 differed" in result.stdout
    shown = parcours("inventory", "stock", "LAV-1")
    assert shown.returncode == 0
    assert "LYO-1" in shown.stdout
    assert " 7 " in shown.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,counted_quantity\nLAV-1,8\nLAV-3,-2\n")
    refused = parcours("inventory", "import-count", str(bad), "--store", "LYO-1")
    assert refused.returncode == 1
    assert "--keep-good-rows" in refused.stderr
    assert "Rows refused" in refused.stdout
    kept = parcours("inventory", "import-count", str(bad), "--store", "LYO-1", "--keep-good-rows")
    assert kept.returncode == 0
    unknown = parcours("inventory", "import-count", str(good), "--store", "NOPE")
    assert unknown.returncode == 1
    assert "NOPE" in unknown.stderr
