"""A request's transaction commits before its response leaves: a client that got a
success can read what it wrote, and a failed commit is never answered with a success."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from parcours.app import create_app
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

TRACK = {"userId": "u-1", "event": "Product Viewed", "properties": {"sku": "S1"}}


def _recording_app(db: Database, clock: ManualClock, tmp_path: Path, steps: list[str]) -> Any:
    app = create_app(make_settings(tmp_path, db), db, clock)

    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                steps.append(f"response {message['status']}")
            await send(message)

        await app(scope, receive, sending)

    return recorded


async def _post_on_commit(
    db: Database,
    clock: ManualClock,
    tmp_path: Path,
    steps: list[str],
    on_commit: Callable[[Any], None],
) -> httpx.Response:
    """Post one event through the app with `on_commit` called at the commit; `steps`
    records the response's start."""
    key = builders.api_key(db, clock, kind="write")
    app = _recording_app(db, clock, tmp_path, steps)
    # as a server does: an error is answered, not raised into the client
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    event.listen(db.engine, "commit", on_commit)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://parcours.test") as http:
            response = await http.post("/v1/track", json=TRACK, headers={"X-API-Key": key})
    finally:
        event.remove(db.engine, "commit", on_commit)
    return response


async def test_the_commit_happens_before_the_response_is_sent(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    steps: list[str] = []
    response = await _post_on_commit(
        db, clock, tmp_path, steps, lambda connection: steps.append("commit")
    )
    assert response.status_code == 200
    # tracking commits twice: the key's read, then the events (tracking.track_batch)
    assert steps == ["commit", "commit", "response 200"]


async def test_a_failed_commit_is_answered_with_a_problem_not_a_success(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    def refuse(connection: Any) -> None:
        raise RuntimeError("the disk is full")

    steps: list[str] = []
    response = await _post_on_commit(db, clock, tmp_path, steps, refuse)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert steps == ["response 500"]
