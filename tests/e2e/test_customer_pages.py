"""A marketer finds a customer and reads their page; a seller finds the customer in front
of them, in a real Chromium (no script error, no Content-Security-Policy violation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders
from tests.builders import event_row, order_row, utc

pytestmark = pytest.mark.e2e


def customer_with_history(db: Database, clock: ManualClock) -> Any:
    paris = builders.location(db, clock, "PAR-1")
    profile_id = builders.known_person(
        db,
        clock,
        source="store",
        traits={
            "first_name": "Léa",
            "last_name": "Martin",
            "size_top": "38",
            "address": "3 rue Mercière",
        },
        user_id="u-lea",
        anonymous_id="a-lea",
        email="lea.martin@example.com",
        phone="06 98 76 54 32",
    )
    builders.log_events(
        db,
        *(
            event_row(
                utc(2025, 12, 1 + n // 24, n % 24), type="page", event="Robes", anonymous_id="a-lea"
            )
            for n in range(60)
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
    return profile_id


def watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def log_in(page: Any, live_server: str, username: str) -> None:
    page.goto(f"{live_server}/console/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", builders.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/console/")


def test_a_marketer_finds_a_customer_and_reads_the_timeline(
    live_server: str, browser: Any, sqlite_db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    builders.user(sqlite_db, clock, "marie", role="marketer")
    profile_id = customer_with_history(sqlite_db, clock)
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    errors = watch_errors(page)
    log_in(page, live_server, "marie")

    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    page.fill("#customer-search", "mart")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Léa Martin").click()
    page.wait_for_url(f"{live_server}/console/customers/{profile_id}")

    assert page.locator("#customer-name").inner_text() == "Léa Martin"
    assert "3 rue Mercière" in page.locator("#identity-card").inner_text()
    assert "€99.50" in page.locator('[data-trait="revenue"]').inner_text()
    assert "Store PAR-1" in page.locator('[data-trait="preferred_store"]').inner_text()
    assert page.locator('[data-trait="size_top"]').is_visible()
    rows = page.locator("#timeline tr[data-entry]")
    assert rows.count() == 50
    first = page.locator("#timeline tr[data-entry]").first
    assert "Store" in first.inner_text()
    assert "Purchase" in first.inner_text()
    page.get_by_role("link", name="Older").click()  # HTMX appends the next page in place
    rows.nth(61).wait_for()
    assert rows.count() == 62
    assert page.url == f"{live_server}/console/customers/{profile_id}"
    page.wait_for_selector("#consent-panel")  # the consent panel loads in its place
    page.screenshot(path=str(tmp_path / "customer.png"), full_page=True)
    assert errors == []
    context.close()


def test_a_seller_finds_the_customer_in_front_of_them(
    live_server: str, browser: Any, sqlite_db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    builders.user(sqlite_db, clock, "hugo", role="staff", store_ids=["LYO-1"], locale="fr")
    customer_with_history(sqlite_db, clock)
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    errors = watch_errors(page)
    log_in(page, live_server, "hugo")

    page.get_by_role("navigation").get_by_role("link", name="Conseil client").click()
    page.fill("#clienteling-search", "Martin")
    page.get_by_role("button", name="Trouver le client").click()
    assert "Aucun client n’a cet identifiant" in page.locator("#not-found").inner_text()
    page.fill("#clienteling-search", "+33 6 98 76 54 32")
    page.get_by_role("button", name="Trouver le client").click()
    page.wait_for_selector("#customer-name")

    assert page.locator("#customer-name").inner_text() == "Léa Martin"
    assert page.locator('#sizes [data-trait="size_top"]').inner_text() == "38"
    purchases = page.locator("#last-purchases").inner_text()
    assert "BOT-39" in purchases
    assert "ROBE-LIN-M" in purchases
    assert "Magasin" in purchases
    body = page.locator("main").inner_text()
    assert "3 rue Mercière" not in body
    assert "lea.martin@example.com" not in body
    page.screenshot(path=str(tmp_path / "clienteling.png"), full_page=True)
    assert errors == []
    context.close()
