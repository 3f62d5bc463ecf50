"""`parcours export parquet`: full then incremental, read back by DuckDB."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from parcours.analytics import engines, metrics
from parcours.analytics.export import export_parquet, exported_rows
from parcours.analytics.metrics import MetricQuery
from parcours.core.db import Database
from parcours.customers import ingest_messages
from tests.analytics import kpi_data


def test_a_second_export_adds_only_new_events_and_changed_months(
    sqlite_db: Database, tmp_path: Path
) -> None:
    target = tmp_path / "parquet"
    first = export_parquet(sqlite_db, target, now=kpi_data.NOW)
    assert first.full
    assert first.rows["orders"] == 0
    kpi_data.build(sqlite_db)
    second = export_parquet(sqlite_db, target, now=kpi_data.NOW + timedelta(hours=1))
    assert not second.full
    assert second.rows["events"] == 11
    assert second.rows["orders"] == 6
    assert exported_rows(target)["sales_lines"] == 7
    with sqlite_db.transaction() as session:
        ingest_messages(
            session,
            kpi_data.NOW,
            [
                {
                    "type": "page",
                    "messageId": "late-1",
                    "anonymousId": "anon-10",
                    "timestamp": "2026-03-12T10:00:00Z",
                    "context": {"channel": "web"},
                }
            ],
        )
    third = export_parquet(sqlite_db, target, now=kpi_data.NOW + timedelta(hours=2))
    assert third.rows["events"] == 1
    assert third.rows["orders"] == 0
    assert exported_rows(target) == {
        "orders": 6,
        "sales_lines": 7,
        "events": 12,
        "customers": 2,
        "footfall": 3,
    }
    with engines.open_engine("duckdb", parquet=target) as engine:
        [row] = metrics.kpis(engine, ["sales", "sessions"], MetricQuery())
    assert row == {"sales": 23000, "sessions": 6}
    full = export_parquet(sqlite_db, target, now=kpi_data.NOW, full=True)
    assert full.full
    assert exported_rows(target)["events"] == 12
