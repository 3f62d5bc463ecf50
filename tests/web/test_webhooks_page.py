"""The console's webhooks page: add an endpoint (secret shown once), read its delivery
log, send a failed delivery again, disable it; admins only."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from parcours.core import webhooks
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import WebhookDelivery
from tests import builders
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio
PAGE = "/console/settings/webhooks"


async def test_an_admin_adds_an_endpoint_reads_its_log_and_disables_it(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    form = await client.get(PAGE, headers=HTML)
    bad = await client.post(
        PAGE, data={"csrf_token": csrf_in(form.text), "url": "ftp://x"}, headers=HTML
    )
    assert bad.status_code == 422
    created = await client.post(
        PAGE,
        data={
            "csrf_token": csrf_in(form.text),
            "url": "https://erp.example.com/hooks",
            "event_types": "Order Completed, Order Refunded",
        },
        headers=HTML,
    )
    assert created.status_code == 201
    assert 'id="webhook-secret">whsec_' in created.text
    with db.transaction() as session:
        [endpoint] = webhooks.list_endpoints(session)
        assert endpoint.event_types == ["Order Completed", "Order Refunded"]
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id, event_id=endpoint.id, event_type="Order Completed",
                payload={}, status="failed", attempts=6, next_attempt_at=clock.now(),
                last_status_code=503, created_at=clock.now(),
            )
        )  # fmt: skip
    log = await client.get(PAGE, params={"endpoint": str(endpoint.id)}, headers=HTML)
    assert "HTTP 503" in log.text
    assert "whsec_" not in log.text  # the secret is never shown again
    with db.transaction() as session:
        delivery_id = session.scalar(select(WebhookDelivery.id))
    again = await client.post(
        f"{PAGE}/deliveries/{delivery_id}/redeliver",
        data={"csrf_token": csrf_in(log.text)},
        headers=HTML,
    )
    assert again.status_code == 303
    disabled = await client.post(
        f"{PAGE}/{endpoint.id}/disable", data={"csrf_token": csrf_in(log.text)}, headers=HTML
    )
    assert disabled.status_code == 303
    with db.transaction() as session:
        assert session.scalar(select(WebhookDelivery.status)) == "pending"
        assert webhooks.list_endpoints(session)[0].active is False


async def test_only_admins_see_webhooks(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "marie", role="marketer")
    await log_in(client, "marie")
    assert (await client.get(PAGE, headers=HTML)).status_code == 403
