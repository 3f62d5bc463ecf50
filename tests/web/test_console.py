"""The console shell through HTTP: login, CSRF, session expiry, language, roles."""

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.models import AuditEntry
from tests import builders

pytestmark = pytest.mark.anyio
HTML = {"Accept": "text/html", "Accept-Language": "en"}


def csrf_in(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def log_in(
    client: httpx.AsyncClient, username: str = "camille", password: str = builders.PASSWORD
) -> httpx.Response:
    form = await client.get("/console/login", headers=HTML)
    return await client.post(
        "/console/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf_in(form.text),
            "next": "/console/",
        },
        headers=HTML,
    )


async def test_the_console_requires_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=%2Fconsole%2F")


async def test_a_user_logs_in_and_sees_live_counts(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, display_name="Camille Dupont")
    builders.add_store(db, clock)
    response = await log_in(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    home = await client.get("/console/", headers=HTML)
    assert home.status_code == 200
    assert "Camille Dupont" in home.text
    assert re.search(r'data-counter="Stores">\s*<div class="value">1<', home.text)
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert "<script>" not in home.text  # no inline script: the policy forbids them
    fragment = await client.get("/console/counts", headers={"HX-Request": "true"})
    assert 'data-counter="Customers"' in fragment.text
    assert "<html" not in fragment.text


async def test_a_wrong_password_is_refused_then_rate_limited(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    for _ in range(5):
        response = await log_in(client, password="not the password")
        assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    limited = await log_in(client)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "900"


async def test_a_forged_csrf_token_is_refused(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    forged = await client.post(
        "/console/lang", data={"lang": "en", "csrf_token": "forged"}, headers=HTML
    )
    assert forged.status_code == 403
    missing = await client.post("/console/logout", headers={"Accept": "application/json"})
    assert missing.status_code == 403
    assert missing.headers["content-type"] == "application/problem+json"
    login_forgery = await client.post(
        "/console/login",
        data={"username": "camille", "password": builders.PASSWORD, "csrf_token": "x"},
        headers=HTML,
    )
    assert login_forgery.status_code == 403


async def test_an_expired_session_sends_the_user_back_to_login(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    clock.advance(timedelta(hours=9))
    page = await client.get("/console/", headers=HTML)
    assert page.status_code == 303
    assert "expired=1" in page.headers["location"]
    login = await client.get(page.headers["location"], headers=HTML)
    assert "Your session has expired" in login.text
    fragment = await client.get("/console/counts", headers={"HX-Request": "true"})
    assert fragment.status_code == 204
    assert fragment.headers["hx-redirect"].startswith("/console/login")


async def test_language_follows_the_browser_then_the_users_choice(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    english = await client.get(
        "/console/login", headers={**HTML, "Accept-Language": "en-GB,en;q=0.8"}
    )
    assert '<html lang="en">' in english.text
    french = await client.get("/console/login", headers={**HTML, "Accept-Language": "fr-FR"})
    assert '<html lang="fr">' in french.text
    await log_in(client)
    home = await client.get("/console/", headers={**HTML, "Accept-Language": "fr"})
    switched = await client.post(
        "/console/lang",
        data={"lang": "en", "csrf_token": csrf_in(home.text), "next": "/console/"},
        headers=HTML,
    )
    assert switched.status_code == 303
    after = await client.get("/console/", headers={**HTML, "Accept-Language": "fr"})
    assert '<html lang="en">' in after.text
    assert "Log out" in after.text
    client.cookies.delete("parcours_lang", path="/console")
    remembered = await client.get("/console/", headers={**HTML, "Accept-Language": "fr"})
    assert '<html lang="en">' in remembered.text  # saved on the user


async def test_only_admins_manage_keys_and_users(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "hugo", role="staff")
    await log_in(client, "hugo")
    for url in (
        "/console/settings/keys",
        "/console/settings/users",
        "/console/settings/audit",
        "/console/customers",
    ):
        response = await client.get(url, headers=HTML)
        assert response.status_code == 403, url
    stores = await client.get("/console/commerce/stores", headers=HTML)
    assert stores.status_code == 200


async def test_an_admin_creates_a_key_in_the_console_and_sees_it_once(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    page = await client.get("/console/settings/keys", headers=HTML)
    created = await client.post(
        "/console/settings/keys",
        data={"name": "Web shop", "kind": "write", "csrf_token": csrf_in(page.text)},
        headers=HTML,
    )
    assert created.status_code == 201
    secret = re.search(r'id="issued-secret">([^<]+)<', created.text)
    assert secret
    assert secret.group(1).startswith("pk_")
    again = await client.get("/console/settings/keys", headers=HTML)
    assert secret.group(1) not in again.text
    bad = await client.post(
        "/console/settings/users",
        data={
            "username": "x",
            "password": "short",
            "role": "admin",
            "csrf_token": csrf_in(page.text),
        },
        headers=HTML,
    )
    assert bad.status_code == 422
    assert "10" in bad.text


async def test_viewing_customers_in_the_console_is_audited(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock, "lea", role="marketer")
    builders.add_customer(db, clock)
    await log_in(client, "lea")
    page = await client.get("/console/customers", headers=HTML)
    assert "lea.martin@example.com" in page.text
    with db.transaction() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "customer.listed" in actions
    assert "user.login" in actions


async def test_logout_ends_the_session(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    await log_in(client)
    home = await client.get("/console/", headers=HTML)
    out = await client.post(
        "/console/logout", data={"csrf_token": csrf_in(home.text)}, headers=HTML
    )
    assert out.status_code == 303
    assert (await client.get("/console/", headers=HTML)).status_code == 303


async def test_login_never_redirects_off_site(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.user(db, clock)
    form = await client.get("/console/login", headers=HTML)
    response = await client.post(
        "/console/login",
        data={
            "username": "camille",
            "password": builders.PASSWORD,
            "csrf_token": csrf_in(form.text),
            "next": "//evil.example/x",
        },
        headers=HTML,
    )
    assert response.headers["location"] == "/console/"
