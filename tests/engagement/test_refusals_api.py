"""The API says the engagement refusals in English, whatever the caller's language: the
console alone translates them."""

from __future__ import annotations

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.engagement.helpers import template

pytestmark = pytest.mark.anyio


def manager(db: Database, clock: ManualClock) -> dict[str, str]:
    key = builders.api_key(db, clock, "activation:write")
    return {"Authorization": f"Bearer {key}", "Accept-Language": "fr"}


async def test_a_template_refusal_keeps_its_english_detail(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    body = {"key": "promo", "channel": "sms", "kind": "marketing",
            "content": {"text_fr": "Bonjour\n{{ prenom }}"}}  # fmt: skip
    bad = await client.post("/v1/templates", json=body, headers=manager(db, clock))
    assert bad.status_code == 422
    [error] = bad.json()["errors"]
    assert error["pointer"] == "#/text_fr"
    assert error["detail"].startswith("line 2: unknown variable 'prenom'; known: customer, ")
    assert bad.json()["detail"] == f"The template cannot be saved: #/text_fr {error['detail']}."


async def test_a_campaign_refusal_keeps_its_english_detail(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    template(db, clock)
    body = {"name": "Printemps", "segment": "absent", "channel": "email",
            "variants": [{"name": "A", "template": "soldes", "percent": 90}]}  # fmt: skip
    auth = {**manager(db, clock), "Idempotency-Key": "c-1"}
    bad = await client.post("/v1/campaigns", json=body, headers=auth)
    assert bad.status_code == 422
    assert bad.json()["detail"] == (
        "The campaign is not valid: the variants' percentages must add up to 100."
    )
    assert [(e["pointer"], e["detail"]) for e in bad.json()["errors"]] == [
        ("#/variants", "the variants' percentages must add up to 100"),
        ("#/segment", "No segment has the key or id 'absent'."),
    ]
