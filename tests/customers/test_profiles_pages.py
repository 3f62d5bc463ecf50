"""The console's customer pages and the clienteling view for store staff."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event, select

from parcours import registry
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from parcours.customers import profiles
from tests import builders
from tests.builders import event_row, order_row, utc
from tests.web.test_console import HTML, log_in

pytestmark = pytest.mark.anyio
FRENCH = {"Accept": "text/html", "Accept-Language": "fr-FR"}


def lea(db: Database, clock: ManualClock, preferred_store: str | None = None) -> uuid.UUID:
    """Léa bought online and in the Paris store; she told a seller her sizes."""
    paris = builders.location(db, clock, "PAR-1")
    traits = {
        "first_name": "Léa",
        "last_name": "Martin",
        "size_top": "38",
        "shoe_size": 39,
        "preferred_colour": "lavande",
        "address": "3 rue Mercière",
        "postcode": "69002",
        "city": "Lyon",
    }
    if preferred_store:
        traits["preferred_store"] = preferred_store
    profile_id = builders.known_person(
        db,
        clock,
        source="store",
        traits=traits,
        user_id="u-lea",
        anonymous_id="a-lea",
        email="lea.martin@example.com",
        phone="06 98 76 54 32",
        loyalty_card="LC-0001",
    )
    builders.log_events(
        db,
        event_row(
            utc(2026, 1, 5),
            type="page",
            event="Robes",
            anonymous_id="a-lea",
            properties={"path": "/robes", "secret_note": "raw-event-marker"},
        ),
        order_row(utc(2026, 1, 6), 59.5, ("ROBE-LIN-M", "Robes"), user_id="u-lea"),
        order_row(
            utc(2026, 2, 6),
            40,
            ("BOT-39", "Chaussures"),
            channel="store",
            store_id=paris,
            user_id="u-lea",
        ),
    )
    return profile_id  # type: ignore[no-any-return]


async def statements_of(db: Database, client: httpx.AsyncClient, url: str) -> list[str]:
    """The SQL statements one page view runs."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = await client.get(url, headers=HTML)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return statements


# ------------------------------------------------------------------ head office


async def test_a_marketer_searches_and_opens_the_whole_profile(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "lea", role="marketer")
    profile_id = lea(db, clock)
    await log_in(client, "lea")
    found = await client.get("/console/customers?q=LC-0001", headers=HTML)
    assert found.status_code == 200
    assert f'href="/console/customers/{profile_id}"' in found.text
    assert "Loyalty card" in found.text  # what matched
    page = await client.get(f"/console/customers/{profile_id}", headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert 'id="identity-card"' in text
    assert "3 rue Mercière" in text
    assert re.search(r'data-trait="size_top">.*38.*store', text, re.S)
    assert 'data-identifier="loyalty_card"' in text
    assert re.search(r'data-trait="revenue">\s*€99.50', text)
    assert re.search(r'data-trait="preferred_store">\s*Store PAR-1', text)
    assert 'data-score="recency"' in text
    assert 'data-channel="store"' in text
    assert "Store PAR-1" in text
    assert "raw-event-marker" in text  # head office may look at the raw event
    assert text.count('<tr data-entry="event:') == 3
    assert "<script>" not in text
    with db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "customer.searched" in actions
    assert "customer.viewed" in actions


async def test_the_profile_page_speaks_french(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "lea", role="marketer", locale="fr")
    profile_id = lea(db, clock)
    await log_in(client, "lea")
    page = await client.get(f"/console/customers/{profile_id}", headers=FRENCH)
    assert "Fiche d’identité" in page.text
    assert "Magasin" in page.text
    assert "Achat" in page.text
    assert "99,50" in page.text


async def test_the_profile_page_takes_the_same_queries_however_long_the_history(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "lea", role="marketer")
    profile_id = lea(db, clock)
    await log_in(client, "lea")
    url = f"/console/customers/{profile_id}"
    await client.get(url, headers=HTML)  # computes the traits once
    few = len(await statements_of(db, client, url))
    builders.log_events(
        db,
        *(event_row(utc(2026, 3, 1, n), user_id="u-lea", channel="app") for n in range(20)),
        *(
            order_row(utc(2026, 3, 2, n), 10, ("X", "Robes"), anonymous_id="a-lea")
            for n in range(5)
        ),
    )
    many = len(await statements_of(db, client, url))
    assert many == few
    # The events take two (filed by sender, and the log's tail); one per other source.
    assert few <= 19 + len(registry.timeline_sources())


async def test_older_timeline_rows_come_in_pages(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "lea", role="marketer")
    profile_id = lea(db, clock)
    builders.log_events(
        db, *(event_row(utc(2025, 6, 1, n % 24, n // 24), user_id="u-lea") for n in range(60))
    )
    await log_in(client, "lea")
    page = await client.get(f"/console/customers/{profile_id}", headers=HTML)
    assert page.text.count('<tr data-entry="') == 50
    more = re.search(r'hx-get="(/console/customers/[^"]+/timeline\?cursor=[^"]+)"', page.text)
    assert more
    rows = await client.get(more.group(1).replace("&amp;", "&"), headers=HTML)
    assert rows.status_code == 200
    assert rows.text.count('<tr data-entry="') == 13
    assert "<html" not in rows.text


async def test_store_staff_cannot_open_the_head_office_pages(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "hugo", role="staff")
    profile_id = lea(db, clock)
    await log_in(client, "hugo")
    for url in ("/console/customers?q=LC-0001", f"/console/customers/{profile_id}"):
        assert (await client.get(url, headers=HTML)).status_code == 403, url


# ------------------------------------------------------------------ clienteling


async def test_a_seller_finds_the_customer_in_front_of_them_by_phone(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "hugo", role="staff", store_ids=["LYO-1"])
    profile_id = lea(db, clock)
    await log_in(client, "hugo")
    search = await client.get("/console/clienteling?q=+33 6 98 76 54 32", headers=HTML)
    assert search.status_code == 303
    assert search.headers["location"] == f"/console/clienteling/{profile_id}"
    view = await client.get(search.headers["location"], headers=HTML)
    assert view.status_code == 200
    text = view.text
    assert "Léa Martin" in text
    assert re.search(r'data-trait="size_top">38<', text)
    assert re.search(r'data-trait="shoe_size">39<', text)
    assert re.search(r'data-trait="preferred_colour">lavande<', text)
    assert "ROBE-LIN-M" in text
    assert "BOT-39" in text  # bought in another store: every channel shows
    assert "Store PAR-1" in text
    assert "Chaussures" in text
    for private in ("3 rue Mercière", "69002", "lea.martin@example.com", "raw-event-marker"):
        assert private not in text, private
    assert "<details>" not in text
    with db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert profiles.FOUND_BY_IDENTIFIER in actions
    assert "customer.clienteling_viewed" in actions


async def test_a_seller_cannot_browse_customers_by_name_or_id(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "hugo", role="staff", store_ids=["LYO-1"])
    profile_id = lea(db, clock)
    await log_in(client, "hugo")
    by_name = await client.get("/console/clienteling?q=Martin", headers=HTML)
    assert by_name.status_code == 200
    assert "No customer has this identifier" in by_name.text
    assert str(profile_id) not in by_name.text
    direct = await client.get(f"/console/clienteling/{profile_id}", headers=HTML)
    assert direct.status_code == 403
    assert "exact email, phone" in direct.text
    french = {**HTML, "Accept-Language": "fr"}
    said = await client.get(f"/console/clienteling/{profile_id}", headers=french)
    assert "son e-mail, son téléphone, sa carte de fidélité" in said.text


async def test_a_seller_sees_the_customers_of_their_store_and_finds_others_for_a_while(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "hugo", role="staff", store_ids=["PAR-1"])
    builders.user(db, clock, "zoe", role="staff", store_ids=["LYO-1"])
    profile_id = lea(db, clock)  # her purchases make Paris her preferred store
    builders.location(db, clock, "LYO-1")
    await log_in(client, "hugo")
    assert (await client.get(f"/console/clienteling/{profile_id}", headers=HTML)).status_code == 200
    client.cookies.clear()
    await log_in(client, "zoe")
    url = f"/console/clienteling/{profile_id}"
    assert (await client.get(url, headers=HTML)).status_code == 403
    await client.get("/console/clienteling?q=LC-0001", headers=HTML)
    assert (await client.get(url, headers=HTML)).status_code == 200
    clock.advance(profiles.CLIENTELING_PASS + timedelta(minutes=1))
    assert (await client.get(url, headers=HTML)).status_code == 403


async def test_several_matches_are_listed_for_the_seller_to_choose(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "hugo", role="staff", store_ids=["LYO-1"])
    first = builders.known_person(db, clock, source="store", loyalty_card="4242")
    second = builders.known_person(db, clock, source="store", customer_number="4242")
    await log_in(client, "hugo")
    page = await client.get("/console/clienteling?q=4242", headers=HTML)
    assert page.status_code == 200
    assert f"/console/clienteling/{first}" in page.text
    assert f"/console/clienteling/{second}" in page.text
    for profile_id in (first, second):
        assert (
            await client.get(f"/console/clienteling/{profile_id}", headers=HTML)
        ).status_code == 200
