"""The segment builder says the service's refusals in the reader's language: a key in
use, a definition naming an unknown segment or store."""

from __future__ import annotations

import httpx
import pytest

from parcours import segments
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio
HERE = "/console/activation/segments"
FRENCH = {**HTML, "Accept-Language": "fr"}
LYON = '{"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"}'


async def save(client: httpx.AsyncClient, key: str, definition: str) -> httpx.Response:
    page = await client.get(HERE, headers=FRENCH)
    form = {"csrf_token": csrf_in(page.text), "key": key, "name": key, "combinator": "all",
            "definition": definition, "action": "save"}  # fmt: skip
    return await client.post(HERE, data=form, headers=FRENCH)


async def test_the_builder_says_a_key_in_use_and_unknown_segments_in_french(
    db: Database, clock: ManualClock, client: httpx.AsyncClient
) -> None:
    builders.user(db, clock, "mia", role="marketer")
    with db.transaction() as session:
        segments.create_segment(session, clock.now(), CLI_ACTOR, "lyon", "Lyon", {
            "kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"})  # fmt: skip
    await log_in(client, "mia")
    taken = await save(client, "lyon", LYON)
    assert taken.status_code == 422
    assert "Un segment a déjà la clé &#39;lyon&#39; ; choisissez-en une autre." in taken.text
    unknown = await save(client, "fideles", '{"kind": "segment", "segment": "absent"}')
    assert "La définition du segment cite des éléments inconnus" in unknown.text
    assert "aucun segment n’a la clé &#39;absent&#39;" in unknown.text
    far = await save(client, "autour", '{"kind": "geo", "store": "ZZZ-9", "radius_km": 5}')
    assert "aucun magasin n’a le code &#39;ZZZ-9&#39;" in far.text
