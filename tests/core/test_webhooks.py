"""Outgoing webhooks against a real local HTTP receiver: signed, retried with backoff,
given up on, queued at most once per endpoint and event."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from parcours.core import webhooks
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.core.events import DomainEvent, drain, publish
from parcours.core.models import ConsumerCursor, WebhookDelivery
from tests import builders


@dataclass
class Receiver:
    """A local HTTP server answering each POST with the next status of `statuses`."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((dict(self.headers.items()), body))
            code = state.statuses.pop(0) if state.statuses else 204
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def add_endpoint(db: Database, clock: ManualClock, url: str, *types: str) -> tuple[uuid.UUID, str]:
    with db.transaction() as session:
        created = webhooks.create_endpoint(session, clock.now(), url, list(types))
        return created.endpoint.id, created.secret


def publish_event(db: Database, clock: ManualClock, kind: str = "Order Completed") -> uuid.UUID:
    event = DomainEvent(kind, {"order_id": "o-1", "number": "W2026-000001"}, clock.now())
    with db.transaction() as session:
        publish(session, event, clock.now())
    drain(db, [webhooks.webhook_consumer()], clock)
    return event.event_id


def deliveries(db: Database) -> list[WebhookDelivery]:
    with db.transaction() as session:
        rows = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))
        session.expunge_all()
        return rows


def test_an_event_is_posted_signed_with_its_id(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    _, secret = add_endpoint(db, clock, receiver.url)
    event_id = publish_event(db, clock)
    assert webhooks.deliver_due(db, clock) == 1
    [(headers, body)] = receiver.received
    assert headers["Parcours-Event-Id"] == str(event_id)
    sent = json.loads(body)
    assert sent["id"] == str(event_id)
    assert sent["type"] == "Order Completed"
    assert sent["data"]["number"] == "W2026-000001"
    now = clock.now().timestamp()
    assert webhooks.verify_signature(secret, headers["Parcours-Signature"], body, now=now)
    [delivery] = deliveries(db)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 204)


def test_verify_signature_detects_forged_altered_and_stale_requests() -> None:
    body = b'{"id":"1"}'
    header = webhooks.signature_header("whsec_right", body, 1_773_480_600)
    assert webhooks.verify_signature("whsec_right", header, body, now=1_773_480_600)
    assert not webhooks.verify_signature("whsec_wrong", header, body, now=1_773_480_600)
    assert not webhooks.verify_signature("whsec_right", header, b'{"id":"2"}', now=1_773_480_600)
    assert not webhooks.verify_signature("whsec_right", header, body, now=1_773_480_600 + 301)
    assert not webhooks.verify_signature("whsec_right", "t=abc,v1=00", body, now=1_773_480_600)
    assert not webhooks.verify_signature("whsec_right", "", body, now=1_773_480_600)


def test_a_failing_endpoint_is_retried_with_backoff_then_given_up(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.statuses = [500] * 6
    add_endpoint(db, clock, receiver.url)
    publish_event(db, clock)
    waits = []
    for _ in range(6):
        assert webhooks.deliver_due(db, clock) == 1
        [delivery] = deliveries(db)
        if delivery.status == "failed":
            break
        wait = delivery.next_attempt_at - clock.now()
        waits.append(wait)
        # Not due a moment before its time.
        clock.advance(wait - timedelta(seconds=1))
        assert webhooks.deliver_due(db, clock) == 0
        clock.advance(timedelta(seconds=1))
    assert waits == list(webhooks.BACKOFF)
    [delivery] = deliveries(db)
    assert (delivery.status, delivery.attempts) == ("failed", 6)
    assert (delivery.last_status_code, delivery.last_error) == (500, "HTTP 500")
    assert len(receiver.received) == 6
    clock.advance(timedelta(days=2))
    assert webhooks.deliver_due(db, clock) == 0


def test_an_endpoint_that_is_down_is_retried_and_then_delivered(
    sqlite_db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    add_endpoint(sqlite_db, clock, "http://127.0.0.1:9/nobody-listens")
    publish_event(sqlite_db, clock)
    assert webhooks.deliver_due(sqlite_db, clock) == 1
    [delivery] = deliveries(sqlite_db)
    assert delivery.status == "pending"
    assert delivery.last_status_code is None
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("ConnectError")
    with sqlite_db.transaction() as session:
        webhooks.redeliver(session, clock.now(), delivery.id)
    with sqlite_db.transaction() as session:
        endpoint = webhooks.get_endpoint(session, delivery.endpoint_id)
        endpoint.url = receiver.url
    assert webhooks.deliver_due(sqlite_db, clock) == 1
    assert deliveries(sqlite_db)[0].status == "delivered"


def test_a_replayed_outbox_queues_each_event_once_per_endpoint(
    db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    add_endpoint(db, clock, receiver.url)
    add_endpoint(db, clock, receiver.url, "Order Refunded")
    publish_event(db, clock)
    publish_event(db, clock, "Order Refunded")
    with db.transaction() as session:  # replay the whole log
        cursor = session.get(ConsumerCursor, webhooks.CONSUMER_NAME)
        assert cursor is not None
        cursor.position = 0
    drain(db, [webhooks.webhook_consumer()], clock)
    rows = deliveries(db)
    assert sorted(d.event_type for d in rows) == [
        "Order Completed",
        "Order Refunded",
        "Order Refunded",
    ]
    assert webhooks.deliver_due(db, clock) == 3
    assert webhooks.deliver_due(db, clock) == 0
    assert len(receiver.received) == 3


def test_a_disabled_endpoint_gets_nothing_and_bad_urls_are_refused(
    sqlite_db: Database, clock: ManualClock, receiver: Receiver
) -> None:
    endpoint_id, _ = add_endpoint(sqlite_db, clock, receiver.url)
    with sqlite_db.transaction() as session:
        webhooks.disable_endpoint(session, endpoint_id)
    publish_event(sqlite_db, clock)
    assert webhooks.deliver_due(sqlite_db, clock) == 0
    assert receiver.received == []
    with sqlite_db.transaction() as session, pytest.raises(InvalidInput):
        webhooks.create_endpoint(session, clock.now(), "ftp://example.com/x")


@pytest.mark.anyio
async def test_endpoints_and_their_log_over_http(
    db: Database, clock: ManualClock, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    admin = {"Authorization": f"Bearer {builders.api_key(db, clock, 'admin')}"}
    created = await client.post(
        "/v1/webhooks/endpoints",
        json={"url": receiver.url, "event_types": ["Order Completed"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    listed = (await client.get("/v1/webhooks/endpoints", headers=admin)).json()["items"]
    assert "secret" not in listed[0]
    receiver.statuses = [503]
    publish_event(db, clock)
    webhooks.deliver_due(db, clock)
    log = await client.get(f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=admin)
    [delivery] = log.json()["items"]
    assert (delivery["status"], delivery["last_status_code"]) == ("pending", 503)
    again = await client.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver", headers=admin)
    assert again.json()["next_attempt_at"].startswith("2026-03-14T09:30")
    webhooks.deliver_due(db, clock)
    disabled = await client.post(f"/v1/webhooks/endpoints/{endpoint['id']}/disable", headers=admin)
    assert disabled.json()["active"] is False
    writer = {"Authorization": f"Bearer {builders.api_key(db, clock, 'commerce:write')}"}
    assert (await client.get("/v1/webhooks/endpoints", headers=writer)).status_code == 403
    bad = await client.post("/v1/webhooks/endpoints", json={"url": "nope"}, headers=admin)
    assert bad.status_code == 422
    with db.transaction() as session:
        count = session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == "delivered")
        )
    assert count == 1
