"""`/v1/analytics/kpis|funnels|paths` over HTTP, and the CLI commands."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.analytics import kpi_data

pytestmark = pytest.mark.anyio


def bearer(db: Database, clock: ManualClock, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {builders.api_key(db, clock, *scopes)}"}


async def test_kpis_funnels_and_paths_over_http(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    kpi_data.build(db)
    auth = bearer(db, clock, "insight:read")
    kpis = await client.get(
        "/v1/analytics/kpis",
        params={"metric": ["sales", "conversion_rate"], "dimension": "channel"},
        headers=auth,
    )
    assert kpis.status_code == 200, kpis.text
    body = kpis.json()
    assert body["units"] == {"sales": "cents", "conversion_rate": "fraction"}
    assert body["rows"][0] == {"channel": "app", "sales": None, "conversion_rate": 0.0}
    funnel = await client.get(
        "/v1/analytics/funnels", params={"step": ["Product Viewed", "Product Added"]}, headers=auth
    )
    assert [r["visitors"] for r in funnel.json()["rows"]] == [2, 2]
    found = await client.get("/v1/analytics/paths", headers=auth)
    assert found.json()["paths"][0]["path"] == "web"
    assert found.json()["sankey"]["links"][0]["value"] == 1


async def test_bad_queries_are_problems(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    auth = bearer(db, clock, "insight:read")
    unknown = await client.get("/v1/analytics/kpis", params={"metric": "margin"}, headers=auth)
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert "margin" in unknown.json()["detail"]
    dimension = await client.get(
        "/v1/analytics/kpis", params={"metric": "sales", "dimension": "colour"}, headers=auth
    )
    assert dimension.status_code == 422
    assert "colour" in dimension.json()["detail"]
    one_step = await client.get(
        "/v1/analytics/funnels", params={"step": "Order Completed"}, headers=auth
    )
    assert one_step.status_code == 422
    forbidden = await client.get(
        "/v1/analytics/kpis", params={"metric": "sales"}, headers=bearer(db, clock, "commerce:read")
    )
    assert forbidden.status_code == 403


def test_cli_kpis_as_csv_and_the_export(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parcours.cli import app
    from parcours.core.commandline import CliState

    kpi_data.build(sqlite_db)
    monkeypatch.setattr(CliState, "_db", sqlite_db)
    runner = CliRunner()
    result = runner.invoke(
        app, ["analytics", "kpis", "sales", "orders", "--by", "channel", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["channel,sales,orders", "store,4000,2", "web,19000,3"]
    exported = runner.invoke(app, ["export", "parquet", str(tmp_path / "pq")])
    assert exported.exit_code == 0
    assert "orders 6" in exported.output
    duck = runner.invoke(
        app,
        [
            "analytics",
            "funnel",
            "Product Viewed",
            "Order Completed",
            "--engine",
            "duckdb",
            "--parquet",
            str(tmp_path / "pq"),
            "--format",
            "csv",
        ],
    )
    assert duck.exit_code == 0, duck.output
    assert duck.output.splitlines()[1].startswith("1,Product Viewed,2")
    paths_out = runner.invoke(app, ["analytics", "paths", "--format", "csv"])
    assert "web,1,7000,1.0" in paths_out.output
    bad = runner.invoke(app, ["analytics", "kpis", "margin"])
    assert bad.exit_code == 1
