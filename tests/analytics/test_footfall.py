"""Store footfall: hourly door counts by API and CSV, replaced when sent again, and every
bad count refused with its row and column."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from parcours import stores
from parcours.analytics import footfall
from parcours.cli import app
from parcours.core.clock import ManualClock
from parcours.core.commandline import CliState
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.core.imports import ImportRejected
from tests import builders

TEN = datetime(2026, 3, 14, 10, tzinfo=UTC)
ELEVEN = datetime(2026, 3, 14, 11, tzinfo=UTC)


@pytest.fixture
def two_stores(db: Database, clock: ManualClock) -> Database:
    with db.transaction() as session:
        stores.add_stores(
            session, clock.now(), [builders.store_row("LYO-1"), builders.store_row("PAR-1")]
        )
    return db


def counts(db: Database, store: str = "LYO-1") -> list[tuple[datetime, int]]:
    with db.transaction() as session:
        return footfall.footfall_of(session, store, TEN, ELEVEN.replace(hour=23))


def test_counts_are_stored_per_store_and_hour_and_replaced_when_sent_again(
    two_stores: Database, clock: ManualClock
) -> None:
    with two_stores.transaction() as session:
        stored = footfall.record_footfall(
            session,
            clock.now(),
            [
                footfall.FootfallCount("LYO-1", TEN, 120),
                footfall.FootfallCount("LYO-1", ELEVEN, 95),
                footfall.FootfallCount("PAR-1", TEN, 300),
            ],
        )
    assert stored == 3
    with two_stores.transaction() as session:
        # Lyon's counter resends 10:00 (11:00 Paris time) corrected.
        paris_time = datetime.fromisoformat("2026-03-14T11:00:00+01:00")
        footfall.record_footfall(
            session, clock.now(), [footfall.FootfallCount("LYO-1", paris_time, 130)]
        )
    assert counts(two_stores) == [(TEN, 130), (ELEVEN, 95)]
    assert counts(two_stores, "PAR-1") == [(TEN, 300)]


def test_bad_counts_are_refused_all_or_nothing_with_their_position(
    two_stores: Database, clock: ManualClock
) -> None:
    bad = [
        footfall.FootfallCount("LYO-1", TEN, 10),
        footfall.FootfallCount("NOPE", TEN, 10),
        footfall.FootfallCount("LYO-1", TEN.replace(minute=30), 10),
        footfall.FootfallCount("LYO-1", ELEVEN, -1),
        footfall.FootfallCount("LYO-1", TEN.replace(tzinfo=None), 10),
    ]
    with two_stores.transaction() as session, pytest.raises(InvalidInput) as caught:
        footfall.record_footfall(session, clock.now(), bad)
    pointers = {e.pointer: e.detail for e in caught.value.errors}
    assert pointers["#/1/store"] == "unknown store 'NOPE'"
    assert "start of an hour" in pointers["#/2"]
    assert "between 0" in pointers["#/3"]
    assert "time zone" in pointers["#/4"]
    assert counts(two_stores) == []


CSV = (
    "store,hour,visitors\n"
    "LYO-1,2026-03-14T10:00:00Z,120\n"
    "LYO-1,2026-03-14T11:00:00Z,many\n"
    "NOPE,2026-03-14T10:00:00Z,5\n"
    "PAR-1,2026-03-14 10:00,7\n"
    "PAR-1,2026-03-14T10:00:00Z,8\n"
)


def test_a_csv_with_bad_rows_is_refused_unless_good_rows_are_kept(
    two_stores: Database, clock: ManualClock
) -> None:
    with two_stores.transaction() as session, pytest.raises(ImportRejected) as caught:
        footfall.import_footfall(session, clock.now(), io.StringIO(CSV))
    assert [(e.row, e.column) for e in caught.value.row_errors] == [
        (3, "visitors"),
        (5, "hour"),
        (4, "store"),
    ]
    assert counts(two_stores) == []
    with two_stores.transaction() as session:
        report = footfall.import_footfall(
            session, clock.now(), io.StringIO(CSV), keep_good_rows=True
        )
    assert (report.rows, report.stored, report.rejected_rows) == (5, 2, 3)
    with two_stores.transaction() as session:
        again = footfall.import_footfall(
            session, clock.now(), io.StringIO(CSV), keep_good_rows=True
        )
    assert again.stored == 2  # replaced, not doubled
    assert counts(two_stores) == [(TEN, 120)]
    assert counts(two_stores, "PAR-1") == [(TEN, 8)]


def test_counts_of_an_unknown_store_are_a_clear_error(two_stores: Database) -> None:
    with two_stores.transaction() as session, pytest.raises(InvalidInput, match="unknown store"):
        footfall.footfall_of(session, "NOPE", TEN, ELEVEN)


@pytest.mark.anyio
async def test_the_api_records_counts_and_answers_problems(
    client: httpx.AsyncClient, two_stores: Database, clock: ManualClock
) -> None:
    key = builders.api_key(two_stores, clock, "commerce:write")
    auth = {"Authorization": f"Bearer {key}"}
    body = [{"store": "LYO-1", "hour": "2026-03-14T10:00:00Z", "visitors": 42}]
    answer = await client.post("/v1/analytics/footfall", json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 1}
    assert counts(two_stores) == [(TEN, 42)]
    bad = await client.post(
        "/v1/analytics/footfall", json=[{**body[0], "store": "NOPE"}], headers=auth
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    reader = builders.api_key(two_stores, clock, "insight:read")
    refused = await client.post(
        "/v1/analytics/footfall", json=body, headers={"Authorization": f"Bearer {reader}"}
    )
    assert refused.status_code == 403


def test_the_command_imports_a_counter_export(
    sqlite_db: Database, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite_db.transaction() as session:
        stores.add_stores(
            session, clock.now(), [builders.store_row("LYO-1"), builders.store_row("PAR-1")]
        )
    monkeypatch.setattr(CliState, "_db", sqlite_db)
    file = tmp_path / "footfall.csv"
    file.write_text(CSV, encoding="utf-8")
    runner = CliRunner()
    strict = runner.invoke(app, ["analytics", "import-footfall", str(file)])
    assert strict.exit_code != 0
    result = runner.invoke(app, ["analytics", "import-footfall", str(file), "--keep-good-rows"])
    assert result.exit_code == 1, result.output
    assert "Stored 2 hourly counts from 5 rows" in " ".join(result.output.split())
    assert counts(sqlite_db) == [(TEN, 120)]
