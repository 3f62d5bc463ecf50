"""Attribution and acquisition reports on the hand-built shop of `kpi_data`, with a few
more touches so that journeys cross channels, offline included:

- Léa (u1): web → buys on the web (O1, 70.00); web, a store visit → buys in store (O2,
  10.00);
- Marc (u2): web, an email click, the app → buys in the app (O4, 70.00);
- the anonymous visitor: web, no purchase; Zoé (u3): a call-centre call, no tracked
  purchase (her store order O7 has no event), Hugo (u4): a February store order and
  no touch at all.

Conversion paths: web (1 conversion, 7000 cents, 1 null), web > store (1, 1000),
web > email > app (1, 7000), call_centre (1 null).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from parcours import orders, stores
from parcours.analytics import engines
from parcours.analytics.attribution import Paths, time_decay
from parcours.analytics.attribution_report import acquisition_report, attribution_report
from parcours.analytics.metrics import MetricQuery
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.customers import ingest_messages
from tests import builders
from tests.analytics import kpi_data
from tests.analytics.kpi_data import at, engine_on

MODELS = ("first", "last", "linear", "position", "markov", "shapley")
ACQUISITION = [
    {"month": "2026-02", "channel": "store", "customers": 1, "revenue": 2500},
    {"month": "2026-03", "channel": "call_centre", "customers": 1, "revenue": 4000},
    {"month": "2026-03", "channel": "web", "customers": 2, "revenue": 12500},
]


def build(db: Database) -> None:
    kpi_data.build(db)
    clock = ManualClock(kpi_data.NOW)
    zoe = builders.known_person(db, clock, user_id="u3")
    hugo = builders.known_person(db, clock, user_id="u4")
    with db.transaction() as session:
        ids = stores.store_ids_by_code(session, ["LYO-1", "PAR-1"])

    def store_order(ref: str, when: datetime, customer: Any, price: int) -> orders.PastOrder:
        return orders.PastOrder(
            source="test",
            external_ref=ref,
            channel="store",
            mode="carry_out",
            placed_at=when,
            location_id=ids["PAR-1"],
            store_id=ids["PAR-1"],
            customer_id=customer,
            lines=[kpi_data.line("BOUGIE", "Maison", 1, price)],
        )

    with db.transaction() as session:
        orders.load_history(
            session,
            [
                store_order("O7", at(12, 11), zoe, 4000),
                store_order("O8", datetime(2026, 2, 20, 16, tzinfo=UTC), hugo, 2500),
            ],
        )
    with db.transaction() as session:
        result = ingest_messages(session, kpi_data.NOW, _messages())
        assert not result.rejected, result.rejected


def _messages() -> list[dict[str, Any]]:
    def track(
        n: int, when: datetime, user: str, channel: str, event: str, **props: Any
    ) -> dict[str, Any]:
        return {
            "type": "track",
            "messageId": f"attribution-{n}",
            "timestamp": when.isoformat().replace("+00:00", "Z"),
            "context": {"channel": channel},
            "userId": user,
            "event": event,
            "properties": props,
        }

    return [
        track(1, at(3, 14, 50), "u1", "store", "Store Visited"),
        track(2, at(3, 15), "u1", "store", "Order Completed", order_id="O2", revenue=10.0),
        track(3, at(9, 18), "u2", "email", "Email Clicked"),
        track(4, at(10, 9), "u2", "app", "Order Completed", order_id="O4", revenue=70.0),
        track(5, at(12, 10), "u3", "call_centre", "Call Received"),
    ]


def by_channel(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["channel"]: row for row in rows}


def check_reports(engine: engines.Engine) -> None:
    rows = attribution_report(engine, MetricQuery(), MODELS, order=1)
    assert [r["channel"] for r in rows] == ["web", "app", "call_centre", "email", "store"]
    found = by_channel(rows)
    # First touch: every journey began on the web.
    assert found["web"]["first_conversions"] == 3.0
    assert found["web"]["first_value"] == 15000
    # Last touch: the channel of each purchase.
    last = {c: (r["last_conversions"], r["last_value"]) for c, r in found.items()}
    assert last == {
        "web": (1.0, 7000),
        "store": (1.0, 1000),
        "app": (1.0, 7000),
        "email": (0.0, 0),
        "call_centre": (0.0, 0),
    }
    # Linear: web 1 + 1/2 + 1/3, store 1/2, email and app 1/3 each.
    assert found["web"]["linear_conversions"] == pytest.approx(11 / 6)
    assert found["store"]["linear_conversions"] == 0.5
    assert found["email"]["linear_conversions"] == pytest.approx(1 / 3)
    assert found["store"]["linear_value"] == 500
    assert abs(found["web"]["linear_value"] - (7000 + 500 + 7000 / 3)) <= 1
    # Position: 40/20/40 on the three-touch journey.
    position = {c: (r["position_conversions"], r["position_value"]) for c, r in found.items()}
    assert position == {
        "web": (pytest.approx(1.9), 10300),
        "store": (0.5, 500),
        "email": (pytest.approx(0.2), 1400),
        "app": (pytest.approx(0.4), 2800),
        "call_centre": (0.0, 0),
    }
    for model in MODELS:
        assert sum(r[f"{model}_conversions"] for r in rows) == pytest.approx(3.0)
        assert sum(r[f"{model}_value"] for r in rows) == 15000
        assert all(isinstance(r[f"{model}_value"], int) for r in rows)
    # The call-centre call never led to a purchase: no credit in any model.
    assert all(found["call_centre"][f"{m}_conversions"] == 0 for m in MODELS)
    assert found["app"]["markov_conversions"] > 0
    assert acquisition_report(engine, MetricQuery()) == ACQUISITION
    march = MetricQuery(start=at(1, 0), end=datetime(2026, 4, 1, tzinfo=UTC))
    assert acquisition_report(engine, march) == ACQUISITION[1:]


@pytest.mark.parametrize("engine_name", ["live", "duckdb"])
def test_reports_credit_channels_as_worked_out_by_hand(
    db: Database, tmp_path: Path, engine_name: str
) -> None:
    build(db)
    with engine_on(db, engine_name, tmp_path) as engine:
        check_reports(engine)


def test_a_range_cut_before_the_conversion_changes_the_journeys(sqlite_db: Database) -> None:
    build(sqlite_db)
    with engines.open_engine("live", database=sqlite_db) as engine:
        # From 3 March: Léa's store journey starts with her 2 March 12:00 page no more.
        rows = attribution_report(engine, MetricQuery(start=at(3, 0)), ("first", "last"))
    found = by_channel(rows)
    assert found["store"]["first_conversions"] == 1.0
    assert found["email"]["first_conversions"] == 1.0
    assert found["app"]["last_value"] == 7000


def test_an_empty_range_gives_no_rows(sqlite_db: Database) -> None:
    build(sqlite_db)
    empty = MetricQuery(
        start=datetime(2020, 1, 1, tzinfo=UTC), end=datetime(2020, 2, 1, tzinfo=UTC)
    )
    with engines.open_engine("live", database=sqlite_db) as engine:
        assert attribution_report(engine, empty, MODELS) == []
        assert acquisition_report(engine, empty) == []


def test_an_empty_shop_gives_no_rows(sqlite_db: Database) -> None:
    with engines.open_engine("live", database=sqlite_db) as engine:
        assert attribution_report(engine, MetricQuery()) == []
        assert acquisition_report(engine, MetricQuery()) == []


def test_an_unknown_model_or_a_bad_order_is_named(sqlite_db: Database) -> None:
    with engines.open_engine("live", database=sqlite_db) as engine:
        with pytest.raises(InvalidInput, match="'lastish'") as unknown:
            attribution_report(engine, MetricQuery(), ("first", "lastish"))
        assert [e.parameter for e in unknown.value.errors] == ["model"]
        with pytest.raises(InvalidInput, match="between 1 and 4") as order:
            attribution_report(engine, MetricQuery(), ("markov",), order=5)
        assert [e.parameter for e in order.value.errors] == ["order"]
        with pytest.raises(InvalidInput) as none:
            attribution_report(engine, MetricQuery(), ())
        assert [e.parameter for e in none.value.errors] == ["model"]


# --- over HTTP and on the command line ------------------------------------------------


def bearer(db: Database, clock: ManualClock, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {builders.api_key(db, clock, *scopes)}"}


@pytest.mark.anyio
async def test_reports_over_http(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    build(db)
    auth = bearer(db, clock, "insight:read")
    found = await client.get(
        "/v1/analytics/attribution",
        params={"model": ["last", "markov"], "order": 2, "start": "2026-03-01"},
        headers=auth,
    )
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["models"] == ["last", "markov"]
    assert body["order"] == 2
    assert by_channel(body["rows"])["store"]["last_value"] == 1000
    assert sum(r["markov_value"] for r in body["rows"]) == 15000
    acquired = await client.get(
        "/v1/analytics/acquisition", params={"start": "2026-03-01T00:00:00"}, headers=auth
    )
    assert acquired.status_code == 200, acquired.text
    assert acquired.json()["rows"] == ACQUISITION[1:]


@pytest.mark.anyio
async def test_bad_attribution_requests_are_problems(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    auth = bearer(db, clock, "insight:read")
    unknown = await client.get(
        "/v1/analytics/attribution", params={"model": "pagerank"}, headers=auth
    )
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert "pagerank" in unknown.json()["detail"]
    assert unknown.json()["errors"][0]["parameter"] == "model"
    order = await client.get(
        "/v1/analytics/attribution", params={"model": "markov", "order": 7}, headers=auth
    )
    assert order.status_code == 422
    assert order.json()["errors"][0]["parameter"] == "order"
    engine = await client.get("/v1/analytics/acquisition", params={"engine": "hive"}, headers=auth)
    assert engine.status_code == 422
    assert "hive" in engine.json()["detail"]
    no_export = await client.get(
        "/v1/analytics/attribution", params={"engine": "duckdb"}, headers=auth
    )
    assert no_export.status_code == 422
    anonymous = await client.get("/v1/analytics/attribution")
    assert anonymous.status_code == 401
    wrong_scope = await client.get(
        "/v1/analytics/acquisition", headers=bearer(db, clock, "commerce:read")
    )
    assert wrong_scope.status_code == 403


def test_cli_reports(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from parcours.cli import app
    from parcours.core.commandline import CliState

    build(sqlite_db)
    monkeypatch.setattr(CliState, "_db", sqlite_db)
    runner = CliRunner()
    result = runner.invoke(
        app, ["analytics", "attribution-report", "--model", "first", "--model", "last", "--csv"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "channel,first_conversions,first_value,last_conversions,last_value",
        "web,3.0,15000,1.0,7000",
        "app,0.0,0,1.0,7000",
        "call_centre,0.0,0,0.0,0",
        "email,0.0,0,0.0,0",
        "store,0.0,0,1.0,1000",
    ]
    table = runner.invoke(app, ["analytics", "attribution-report", "--order", "2"])
    assert table.exit_code == 0, table.output
    assert "markov" in table.output
    assert "call_centre" in table.output
    acquired = runner.invoke(app, ["analytics", "acquisition-report", "--csv"])
    assert acquired.exit_code == 0, acquired.output
    assert acquired.output.splitlines()[1:] == [
        "2026-02,store,1,2500",
        "2026-03,call_centre,1,4000",
        "2026-03,web,2,12500",
    ]
    bad = runner.invoke(app, ["analytics", "attribution-report", "--model", "pagerank"])
    assert bad.exit_code == 2
    assert "pagerank" in bad.output
    empty = runner.invoke(
        app, ["analytics", "attribution-report", "--start", "2020-01-01", "--end", "2020-02-01"]
    )
    assert empty.exit_code == 0
    assert "No rows" in empty.output


def test_time_decay_weighs_each_touch_by_its_age_in_days(sqlite_db: Database) -> None:
    build(sqlite_db)
    day = 86_400.0
    hours = 3_600.0 / day
    # The three purchases with every touch (repeats kept) and its age before the purchase.
    lea_web = (["web"] * 4, [20 / 60 * hours, 15 / 60 * hours, 10 / 60 * hours, 0.0])
    lea_store = (["web", "store", "store"], [27 * hours, 10 / 60 * hours, 0.0])
    marc_app = (
        ["web", "web", "email", "app", "app", "app"],
        [(22.5 + 7 * 24) * hours, (22 + 20 / 60 + 7 * 24) * hours, 15 * hours, 0.5 * hours,
         25 / 60 * hours, 0.0],
    )  # fmt: skip
    expected = time_decay(
        Paths.from_sequences(
            [lea_web[0], lea_store[0], marc_app[0]],
            [1, 1, 1],
            [7000, 1000, 7000],
            ages=[lea_web[1], lea_store[1], marc_app[1]],
        )
    )
    with engines.open_engine("live", database=sqlite_db) as engine:
        found = by_channel(attribution_report(engine, MetricQuery(), ("time_decay",)))
    for channel, credit in zip(expected.channels, expected.conversions, strict=True):
        assert found[channel]["time_decay_conversions"] == pytest.approx(credit, abs=1e-6)
    assert found["call_centre"]["time_decay_conversions"] == 0.0  # touched, never bought
    # Marc's web visit eight days before buying counts for less than a quarter of a touch
    # the day he bought.
    assert found["app"]["time_decay_conversions"] > 0.5
