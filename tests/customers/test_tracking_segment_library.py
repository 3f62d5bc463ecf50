"""Segment's own Python library, unchanged, sends every call type to a live Parcours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import segment.analytics as analytics
from sqlalchemy import select

from parcours import stores
from parcours.app import create_app
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.customers import identity, identity_log
from parcours.customers.models import TrackedEvent
from tests import builders
from tests.conftest import make_settings
from tests.live_server import serving


@pytest.fixture
def live_server(db: Database, clock: ManualClock, tmp_path: Path) -> Iterator[str]:
    """Parcours served by uvicorn on a free port, on each database."""
    app = create_app(make_settings(tmp_path, db), db, clock)
    with serving(app) as url:
        yield url


@pytest.fixture
def segment(live_server: str, db: Database, clock: ManualClock) -> Iterator[Any]:
    """The library's module-level client, pointed at the live server with a write key."""
    saved = {name: getattr(analytics, name) for name in ("write_key", "host", "sync_mode", "gzip")}
    errors: list[Exception] = []
    analytics.default_client = None
    analytics.write_key = builders.api_key(db, clock, kind="write")
    analytics.host = live_server
    analytics.on_error = lambda error, batch: errors.append(error)
    yield analytics
    client = analytics.default_client
    if client is not None and not client.sync_mode:
        client.shutdown()  # stops its upload thread
    analytics.default_client = None
    analytics.on_error = None
    for name, value in saved.items():
        setattr(analytics, name, value)
    assert errors == []


@pytest.fixture(autouse=True)
def observed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []

    def record(session: Any, now: Any, observations: Any) -> list[None]:
        calls.append(list(observations))
        return [None for _ in observations]

    monkeypatch.setattr(identity, "observe", record)
    return calls


def logged(db: Database) -> dict[str, TrackedEvent]:
    with db.transaction() as session:
        return {e.type: e for e in session.scalars(select(TrackedEvent).order_by(TrackedEvent.seq))}


def send_every_call(client: Any) -> None:
    client.identify(
        "u-42",
        {"email": "lea.martin@example.com", "first_name": "Léa"},
        context={"channel": "call_centre"},
        anonymous_id="a-1",
    )
    client.track(
        "u-42",
        "Order Completed",
        {"order_id": "T-1", "revenue": 89.0, "currency": "EUR"},
        context={"channel": "store", "store_id": "LYO-1"},
    )
    client.page("u-42", "Mode", "Robes", {"url": "https://shop.example/robes"})
    client.screen("u-42", "App", "Panier", context={"channel": "app"})
    client.alias("a-1", "u-42")
    client.group("u-42", "company-9", {"name": "Atelier Garance"})


def assert_logged_as_sent(db: Database, clock: ManualClock) -> None:
    rows = logged(db)
    assert set(rows) == {"identify", "track", "page", "screen", "alias", "group"}
    assert rows["identify"].traits == {"email": "lea.martin@example.com", "first_name": "Léa"}
    assert (rows["identify"].anonymous_id, rows["identify"].channel) == ("a-1", "call_centre")
    assert rows["track"].event == "Order Completed"
    assert rows["track"].properties == {"order_id": "T-1", "revenue": 89.0, "currency": "EUR"}
    with db.transaction() as session:
        assert rows["track"].store_id == stores.get_store_by_code(session, "LYO-1").id
    assert (rows["page"].event, rows["page"].properties["category"]) == ("Robes", "Mode")
    assert (rows["screen"].event, rows["screen"].channel) == ("Panier", "app")
    assert (rows["alias"].previous_id, rows["alias"].user_id) == ("a-1", "u-42")
    assert rows["group"].group_id == "company-9"
    for row in rows.values():
        assert row.context is not None
        assert row.context["library"]["name"] == "analytics-python"
        # The library dates events with the real clock; the server's clock is the test's,
        # months apart: skew correction puts every event at its reception.
        assert abs(row.timestamp - clock.now()).total_seconds() < 60
        assert row.sent_at is not None
    assert rows["page"].channel == "server"  # a back-end library, no channel sent


def test_the_official_segment_library_sends_every_call_one_by_one(
    segment: Any, db: Database, clock: ManualClock, observed: list[Any]
) -> None:
    builders.add_store(db, clock, "LYO-1")
    segment.sync_mode = True
    send_every_call(segment)
    assert_logged_as_sent(db, clock)
    assert observed == []  # identity reads the log afterwards
    identity_log.resolve_job(db, clock)
    # The only identity-bearing calls; their order is their corrected times', which the
    # library's send delays decide.
    [calls] = observed
    identify, alias = sorted(calls, key=lambda o: not o.traits)
    assert identify.identifiers["email"] == "lea.martin@example.com"
    assert dict(alias.identifiers) == {"user_id": "u-42", "anonymous_id": "a-1"}


def test_the_official_segment_library_batches_and_gzips_on_flush(
    segment: Any, db: Database, clock: ManualClock
) -> None:
    builders.add_store(db, clock, "LYO-1")
    segment.sync_mode = False
    segment.gzip = True
    send_every_call(segment)
    segment.flush()
    assert_logged_as_sent(db, clock)
