"""RFM scores and segments."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner

from parcours.analytics import rfm
from parcours.cli import app
from parcours.core.clock import ManualClock
from parcours.core.commandline import CliState
from parcours.core.db import Database
from tests import builders
from tests.analytics.value_data import duckdb_engine_of, order

AS_OF = datetime(2026, 6, 30, tzinfo=UTC)


def customers() -> list[dict[str, object]]:
    rows = []
    # Ten customers: c0 bought long ago once, c9 recently and often, for more.
    for n in range(10):
        for k in range(n + 1):
            rows.append(
                order(f"c{n}", f"2026-{1 + n // 2:02d}-{1 + k:02d}T12:00:00", total=1000 * (n + 1))
            )
    return rows


def test_scores_are_quintiles_and_segments_follow_the_grid() -> None:
    rows = rfm.rfm(duckdb_engine_of(customers()), rfm.RfmQuery(AS_OF))
    by = {r["customer"]: r for r in rows}
    assert len(rows) == 10
    assert (by["c9"]["r"], by["c9"]["f"], by["c9"]["m"]) == (5, 5, 5)
    assert by["c9"]["frequency"] == 10
    assert by["c9"]["monetary"] == 10 * 10_000
    assert by["c9"]["segment"] == "champions"
    assert (by["c0"]["r"], by["c0"]["f"]) == (1, 1)
    assert by["c0"]["segment"] == "hibernating"
    assert by["c0"]["recency_days"] == (AS_OF.replace(tzinfo=None) - datetime(2026, 1, 1, 12)).days
    # Equal values, equal scores: c8 and c9 bought last in the same month and day.
    assert {r["r"] for r in rows} <= {1, 2, 3, 4, 5}


def test_ties_share_a_score_and_the_summary_counts_every_segment() -> None:
    same = [order(f"c{n}", "2026-03-01T12:00:00") for n in range(4)]
    rows = rfm.rfm(duckdb_engine_of(same), rfm.RfmQuery(AS_OF))
    assert {(r["r"], r["f"], r["m"]) for r in rows} == {(5, 5, 5)}
    summary = rfm.segment_summary(rows)
    assert [s["segment"] for s in summary] == list(rfm.SEGMENT_NAMES)
    assert sum(s["customers"] for s in summary) == 4


def test_no_purchases_give_no_rows() -> None:
    assert rfm.rfm(duckdb_engine_of([]), rfm.RfmQuery(AS_OF)) == []
    assert all(s["customers"] == 0 for s in rfm.segment_summary([]))


@pytest.mark.anyio
async def test_the_value_endpoints_answer_on_the_live_database(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    auth = {"Authorization": f"Bearer {builders.api_key(db, clock, 'insight:read')}"}
    cohorts = await client.get("/v1/analytics/cohorts", params={"by": "channel"}, headers=auth)
    assert cohorts.status_code == 200, cohorts.text
    assert cohorts.json() == {"by": "channel", "rows": []}
    answer = await client.get("/v1/analytics/rfm", headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == []
    assert [s["customers"] for s in answer.json()["segments"]] == [0] * len(rfm.SEGMENT_NAMES)
    empty = await client.get("/v1/analytics/clv", headers=auth)
    assert empty.json()["customers"] == 0
    for path, params in (
        ("/v1/analytics/cohorts", {"by": "weather"}),
        ("/v1/analytics/rfm", {"segment": "vip"}),
        ("/v1/analytics/clv", {"months": 0}),
    ):
        bad = await client.get(path, params=params, headers=auth)
        assert bad.status_code == 422, path
        assert bad.headers["content-type"].startswith("application/problem+json")
    writer = {"Authorization": f"Bearer {builders.api_key(db, clock, 'commerce:write')}"}
    assert (await client.get("/v1/analytics/rfm", headers=writer)).status_code == 403


def test_the_commands_print_cohorts_rfm_and_clv(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CliState, "_db", sqlite_db)
    runner = CliRunner()
    for args in (["cohorts", "--by", "channel"], ["rfm", "--summary", "--format", "csv"], ["clv"]):
        result = runner.invoke(app, ["analytics", *args])
        assert result.exit_code == 0, result.output
    summary = runner.invoke(app, ["analytics", "rfm", "--summary", "--format", "csv"])
    assert "champions,0,0" in summary.output
    bad = runner.invoke(app, ["analytics", "cohorts", "--by", "weather"])
    assert bad.exit_code != 0
