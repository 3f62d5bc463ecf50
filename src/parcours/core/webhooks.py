"""Outgoing webhooks: domain events POSTed, signed, to the retailer's own systems.

Two steps, so that a slow or dead receiver never holds up the outbox:

1. `webhook_consumer()` reads the outbox and, for each active endpoint that wants the
   event (`event_types` empty: all), adds one `WebhookDelivery`. The pair (endpoint,
   event) is unique, so a replayed outbox never queues an event twice.
2. `webhook_delivery_job()` POSTs the deliveries that are due with httpx (5 s timeout).
   A 2xx marks it delivered; anything else is retried after 1 min, 5 min, 30 min, 2 h and
   12 h, then the delivery is `failed` (the console and `parcours webhooks deliveries`
   show it; it can be sent again by hand). The last status code and error are kept.

Delivery is at least once: a receiver may see the same event twice (a timeout after it
answered), so it keeps the `Parcours-Event-Id` of what it processed. Each request is
signed: `Parcours-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed
with the endpoint's secret (shown once, at creation); `verify_signature` checks it, and
refuses stale timestamps so a captured request cannot be replayed later. Logs carry ids
and status codes only, never payloads (they hold personal data) nor URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.errors import FieldError, InvalidInput, NotFound
from parcours.core.events import Consumer, PeriodicJob
from parcours.core.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("parcours.webhooks")

CONSUMER_NAME = "webhooks"
DELIVERY_JOB = "webhooks.deliver"
TIMEOUT_S = 5.0
# Waits after the 1st, 2nd, … failed attempt; after the last one the delivery fails.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
SIGNATURE_HEADER = "Parcours-Signature"
EVENT_ID_HEADER = "Parcours-Event-Id"
TOLERANCE_S = 300
DELIVERY_STATUSES = ("pending", "delivered", "failed")


# ------------------------------------------------------------------ endpoints


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "A webhook URL is an http:// or https:// address.",
            [FieldError("must be an http(s) URL", pointer="#/url")],
        )
    if len(url) > 500:
        raise InvalidInput("The URL is too long.", [FieldError("too long", pointer="#/url")])
    return url.strip()


def _check_types(event_types: list[str]) -> list[str]:
    bad = [t for t in event_types if not t.strip() or len(t) > 80]
    if bad:
        raise InvalidInput(
            "Event types are names such as 'Order Completed' (1 to 80 characters).",
            [FieldError("not an event type", pointer="#/event_types")],
        )
    return sorted({t.strip() for t in event_types})


def create_endpoint(
    session: Session,
    now: datetime,
    url: str,
    event_types: list[str] | None = None,
    description: str = "",
) -> CreatedEndpoint:
    """A new active endpoint and its signing secret (returned once, keep it)."""
    secret = "whsec_" + secrets.token_hex(24)
    endpoint = WebhookEndpoint(
        url=_check_url(url),
        description=description[:200],
        event_types=_check_types(event_types or []),
        secret=secret,
        active=True,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    return CreatedEndpoint(endpoint, secret)


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))


def get_endpoint(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint has the id {endpoint_id}.")
    return endpoint


def disable_endpoint(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """Stop queueing and sending events to it (its delivery log is kept)."""
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.active = False
    return endpoint


def list_deliveries(
    session: Session, endpoint_id: uuid.UUID, limit: int = 50
) -> list[WebhookDelivery]:
    """The delivery log of an endpoint, newest first."""
    get_endpoint(session, endpoint_id)
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .limit(limit)
        )
    )


def redeliver(session: Session, now: datetime, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a delivery again at the next run (with a fresh series of retries)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"No webhook delivery has the id {delivery_id}.")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, now
    return delivery


# ------------------------------------------------------------------ queueing


def event_body(event: OutboxEvent) -> dict[str, Any]:
    """What a receiver gets: `{id, type, occurred_at, data}`."""
    return {
        "id": str(event.event_id),
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.payload,
    }


def queue_event(session: Session, event: OutboxEvent) -> int:
    """Add a delivery of `event` for each active endpoint that wants it (at most once
    per endpoint, even when the outbox is replayed). Returns how many were new."""
    endpoints = [
        e
        for e in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)))
        if not e.event_types or event.type in e.event_types
    ]
    if not endpoints:
        return 0
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    body = event_body(event)
    rows = [
        {
            "id": uuid.uuid4(),
            "endpoint_id": e.id,
            "event_id": event.event_id,
            "event_type": event.type,
            "payload": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": event.recorded_at,
            "created_at": event.recorded_at,
        }
        for e in endpoints
    ]
    stmt = (
        insert(WebhookDelivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        .returning(WebhookDelivery.id)
    )
    return len(session.execute(stmt).all())


def webhook_consumer() -> Consumer:
    """The outbox consumer queueing deliveries (run by the worker)."""
    return Consumer(CONSUMER_NAME, _queue)


def _queue(session: Session, event: OutboxEvent) -> None:
    queue_event(session, event)


# ------------------------------------------------------------------ signing


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """For receivers: True when `header` (the `Parcours-Signature` value) signs `body`
    (the raw request bytes) with `secret`, and was made within `tolerance_s` of `now`."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = signature_header(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


# ------------------------------------------------------------------ sending


def _due(session: Session, now: datetime) -> WebhookDelivery | None:
    stmt = (
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.active.is_(True),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Two workers never send the same delivery: the other one takes the next.
        stmt = stmt.with_for_update(of=WebhookDelivery, skip_locked=True)
    return session.scalar(stmt)


def _attempt(
    http: httpx.Client, endpoint: WebhookEndpoint, delivery: WebhookDelivery, now: datetime
) -> tuple[int | None, str | None]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Parcours-Webhooks/1",
        SIGNATURE_HEADER: signature_header(endpoint.secret, body, int(now.timestamp())),
        EVENT_ID_HEADER: str(delivery.event_id),
    }
    try:
        response = http.post(endpoint.url, content=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:300]}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _settle(delivery: WebhookDelivery, now: datetime, code: int | None, error: str | None) -> None:
    delivery.attempts += 1
    delivery.last_status_code = code
    delivery.last_error = error
    if error is None:
        delivery.status, delivery.delivered_at = "delivered", now
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
    log.info(
        "webhook attempt",
        extra={
            "delivery_id": str(delivery.id),
            "endpoint_id": str(delivery.endpoint_id),
            "attempt": delivery.attempts,
            "status_code": code,
            "outcome": delivery.status,
        },
    )


def deliver_due(
    db: Database, clock: Clock, http: httpx.Client | None = None, limit: int = 200
) -> int:
    """Send the deliveries that are due, one transaction each; returns how many were
    attempted. A delivery's row stays locked (PostgreSQL) while it is being sent."""
    client = http or httpx.Client()
    done = 0
    try:
        while done < limit:
            with db.transaction() as session:
                now = clock.now()
                delivery = _due(session, now)
                if delivery is None:
                    return done
                endpoint = get_endpoint(session, delivery.endpoint_id)
                code, error = _attempt(client, endpoint, delivery, now)
                _settle(delivery, now, code, error)
            done += 1
        return done
    finally:
        if http is None:
            client.close()


def webhook_delivery_job(every_s: float = 10.0) -> PeriodicJob:
    """The worker job sending due deliveries."""
    return PeriodicJob(DELIVERY_JOB, every_s, lambda db, clock: deliver_due(db, clock))
