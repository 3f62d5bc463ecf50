"""The console's generic error page says an error in the reader's language when the
error carries its message (`core.errors.SaidNotFound`, `SaidForbidden`), and in English
otherwise; API clients keep the English detail."""

from __future__ import annotations

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.web.test_console import HTML, log_in

pytestmark = pytest.mark.anyio
UNKNOWN_ORDER = "/console/commerce/orders/W1999-000001"
FRENCH = {**HTML, "Accept-Language": "fr"}


async def test_an_unknown_order_is_said_in_french_on_the_error_page(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    page = await client.get(UNKNOWN_ORDER, headers=FRENCH)
    assert page.status_code == 404
    said = "Aucune commande n’a le numéro &#39;W1999-000001&#39;."
    assert f'<p class="error" role="alert">{said}</p>' in page.text
    assert "No order has the number" not in page.text


async def test_an_unknown_order_is_said_in_english_to_an_english_reader(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    page = await client.get(UNKNOWN_ORDER, headers=HTML)
    assert page.status_code == 404
    assert "No order has the number &#39;W1999-000001&#39;." in page.text


async def test_a_role_refusal_is_said_in_french_on_the_error_page(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "hugo", role="staff")
    await log_in(client, "hugo")
    page = await client.get("/console/settings/keys", headers=FRENCH)
    assert page.status_code == 403
    said = "Votre rôle ne donne pas accès à cette page."
    assert f'<p class="error" role="alert">{said}</p>' in page.text
    assert "Your role does not give access" not in page.text


async def test_a_form_without_its_security_token_is_refused_in_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    page = await client.post(
        "/console/settings/keys", data={"name": "caisse", "kind": "secret"}, headers=FRENCH
    )
    assert page.status_code == 403
    said = (
        "Le jeton de sécurité du formulaire manque ou ne correspond pas à votre session ; "
        "rechargez la page et réessayez."
    )
    assert f'<p class="error" role="alert">{said}</p>' in page.text


async def test_a_role_refusal_keeps_its_english_detail_for_api_clients(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "hugo", role="staff")
    await log_in(client, "hugo")
    answer = await client.get(
        "/console/settings/keys", headers={"Accept": "application/json", "Accept-Language": "fr"}
    )
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"] == "Your role does not give access to this page."
