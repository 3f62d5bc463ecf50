"""The console's generic error page says an error in the reader's language when the
error carries its message (`core.errors.SaidNotFound`), and in English otherwise."""

from __future__ import annotations

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.web.test_console import HTML, log_in

pytestmark = pytest.mark.anyio
UNKNOWN_ORDER = "/console/commerce/orders/W1999-000001"


async def test_an_unknown_order_is_said_in_french_on_the_error_page(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    page = await client.get(UNKNOWN_ORDER, headers={**HTML, "Accept-Language": "fr"})
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
