"""Retention cohorts by first-purchase month and first channel."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from parcours import stores
from parcours.analytics import cohorts, rfm, transactions
from parcours.analytics.engines import open_engine
from parcours.analytics.export import export_parquet
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from tests import builders
from tests.analytics.value_data import duckdb_engine_of, order

ORDERS = [
    # Anne: January on the web, again in February and April (in store).
    order("anne", "2026-01-05T10:00:00"),
    order("anne", "2026-02-10T10:00:00", "store"),
    order("anne", "2026-04-01T10:00:00", "store"),
    # Bruno: January in store, back in February.
    order("bruno", "2026-01-20T10:00:00", "store"),
    order("bruno", "2026-02-02T10:00:00", "web"),
    # Chloé: February on the web, never again; her cancelled order does not count.
    order("chloe", "2026-02-14T10:00:00"),
    order("chloe", "2026-03-14T10:00:00", cancelled=True),
    # An anonymous sale counts for nobody.
    order(None, "2026-01-07T10:00:00"),
]


def test_cohorts_by_first_month_follow_each_customer_month_by_month() -> None:
    rows = cohorts.retention(duckdb_engine_of(ORDERS), cohorts.CohortQuery(months=3))
    table = {
        (r["cohort"], r["month"]): (r["customers"], r["cohort_size"], r["retention"]) for r in rows
    }
    assert table == {
        ("2026-01", 0): (2, 2, 1.0),
        ("2026-01", 1): (2, 2, 1.0),
        ("2026-01", 3): (1, 2, 0.5),
        ("2026-02", 0): (1, 1, 1.0),
    }


def test_cohorts_by_first_channel() -> None:
    rows = cohorts.retention(duckdb_engine_of(ORDERS), cohorts.CohortQuery(by="channel", months=1))
    table = {(r["cohort"], r["month"]): (r["customers"], r["cohort_size"]) for r in rows}
    assert table == {
        ("web", 0): (2, 2),
        ("web", 1): (1, 2),
        ("store", 0): (1, 1),
        ("store", 1): (1, 1),
    }


def test_first_purchases_can_be_bounded_and_no_orders_give_no_rows() -> None:
    query = cohorts.CohortQuery(start=datetime(2026, 2, 1, tzinfo=UTC), months=2)
    rows = cohorts.retention(duckdb_engine_of(ORDERS), query)
    assert [(r["cohort"], r["month"]) for r in rows] == [("2026-02", 0)]
    assert cohorts.retention(duckdb_engine_of([]), cohorts.CohortQuery()) == []


def test_an_unknown_cohort_kind_or_span_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Unknown cohort kind"):
        cohorts.CohortQuery(by="weather").check()
    with pytest.raises(InvalidInput, match="months"):
        cohorts.CohortQuery(months=-1).check()


SALES = (
    "invoice,sku,quantity,unit_price,date,customer,store\n"
    "1,A,1,10.00,2025-11-03T10:00:00Z,C1,LYO-1\n"
    "2,A,2,10.00,2025-12-03T10:00:00Z,C1,LYO-1\n"
    "3,B,1,5.00,2025-11-20T10:00:00Z,C2,LYO-1\n"
    "4,B,1,5.00,2025-12-24T10:00:00Z,C3,LYO-1\n"
)
AS_OF = rfm.RfmQuery(datetime(2026, 1, 1, tzinfo=UTC))


def import_history(db: Database, clock: ManualClock, tmp_path: Path) -> Path:
    """Four receipts imported as history, exported to Parquet; the export's folder."""
    with db.transaction() as session:
        stores.add_stores(session, clock.now(), [builders.store_row("LYO-1")])
    path = tmp_path / "sales.csv"
    path.write_text(SALES, encoding="utf-8")
    with db.transaction() as session:
        transactions.import_transactions(session, clock.now(), transactions.read_transactions(path))
    export_parquet(db, tmp_path / "parquet", now=clock.now())
    return tmp_path / "parquet"


def without_ids(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "customer"} for r in rows]


def test_imported_history_gives_the_same_cohorts_and_rfm_live_and_on_duckdb(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    parquet = import_history(db, clock, tmp_path)
    query = cohorts.CohortQuery(months=2)
    with open_engine("live", database=db) as live:
        live_rows = cohorts.retention(live, query)
        live_rfm = rfm.rfm(live, AS_OF)
    with open_engine("duckdb", parquet=parquet) as duck:
        assert cohorts.retention(duck, query) == live_rows
        assert without_ids(rfm.rfm(duck, AS_OF)) == without_ids(live_rfm)
    assert [(r["cohort"], r["month"], r["customers"]) for r in live_rows] == [
        ("2025-11", 0, 2), ("2025-11", 1, 1), ("2025-12", 0, 1),
    ]  # fmt: skip
    assert sorted(r["monetary"] for r in live_rfm) == [500, 500, 3000]


@pytest.mark.slow
def test_cohorts_and_rfm_on_spark_match_the_live_database(
    sqlite_db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    parquet = import_history(sqlite_db, clock, tmp_path)
    with open_engine("live", database=sqlite_db) as live:
        expected = (
            cohorts.retention(live, cohorts.CohortQuery(by="channel", months=2)),
            cohorts.retention(live, cohorts.CohortQuery(months=2)),
            without_ids(rfm.rfm(live, AS_OF)),
        )
    with open_engine("spark", parquet=parquet) as spark:
        assert (
            cohorts.retention(spark, cohorts.CohortQuery(by="channel", months=2)),
            cohorts.retention(spark, cohorts.CohortQuery(months=2)),
            without_ids(rfm.rfm(spark, AS_OF)),
        ) == expected
