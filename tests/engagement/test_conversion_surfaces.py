"""Conversions where people read them: the API results (with `?days=`), the campaign
page in the console, and `parcours engagement campaigns results --days`."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from typer.testing import CliRunner

from parcours.core.clock import ManualClock
from parcours.core.commandline import CliState
from parcours.core.db import Database
from parcours.engagement import cli
from parcours.engagement.cli import app
from tests import builders
from tests.engagement.test_conversions import order, sent_campaign
from tests.web.test_console import HTML, log_in

pytestmark = pytest.mark.anyio


async def test_the_api_gives_conversions_per_group_and_refuses_a_bad_window(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    campaign_id, groups = sent_campaign(db, clock)
    order(db, groups["A"][0], clock.now() + timedelta(days=1), 4990)
    auth = {"Authorization": f"Bearer {builders.api_key(db, clock, 'activation:write')}"}
    found = await client.get(f"/v1/campaigns/{campaign_id}/results?days=3", headers=auth)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["conversion_days"] == 3
    by_group = {c["group"]: c for c in body["conversions"]}
    assert by_group["A"]["converted"] == 1
    assert by_group["A"]["revenue"] == [{"amount": 4990, "currency": "EUR"}]
    assert by_group["holdout"]["conversion_rate"] == 0
    refused = await client.get(f"/v1/campaigns/{campaign_id}/results?days=120", headers=auth)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["errors"][0]["parameter"] == "days"


async def test_the_campaign_page_shows_conversions_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, role="marketer", locale="fr")
    campaign_id, groups = sent_campaign(db, clock)
    order(db, groups["B"][0], clock.now() + timedelta(days=1), 12050)
    await log_in(client)
    page = await client.get(f"/console/activation/campaigns/{campaign_id}", headers=HTML)
    assert page.status_code == 200
    assert 'id="conversions"' in page.text
    assert "Conversions dans les 7 jours suivant l'envoi" in page.text.replace("&#39;", "'")
    assert 'data-group="holdout"' in page.text
    assert "120,50" in page.text  # the revenue, formatted in French


def test_the_command_line_prints_the_conversions(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id, groups = sent_campaign(db, clock)
    order(db, groups["A"][0], clock.now() + timedelta(days=10), 2000)
    monkeypatch.setattr(CliState, "_db", db)
    monkeypatch.setattr(cli.out, "width", 200)  # made at import: wide enough not to wrap
    shown = CliRunner().invoke(
        app, ["campaigns", "results", str(campaign_id), "--days", "14"], env={"COLUMNS": "200"}
    )
    assert shown.exit_code == 0, shown.output
    assert "Conversions within 14 days" in shown.output
    assert "20.00 EUR" in shown.output
