"""A marketer and store staff drive the activation console in a real Chromium: a segment
built, previewed and saved; a message template refused for its Jinja error, fixed and
previewed for a customer; a campaign on that segment; a promotion with unique codes
downloaded as CSV; a member's points and a reward given at the counter; rewards managed;
a journey created, activated and read with its counts per step. French and English; no
script error and no Content-Security-Policy violation.

One live server serves the whole module; each test builds its own small data through
the services, under keys no other test uses."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from parcours import customers
from parcours.app import create_app
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.engagement import TemplateInput, save_template
from parcours.journeys.ready_made import install_ready_made
from parcours.loyalty import offers, programme, promotions
from parcours.segments import create_segment, refresh_segment
from tests import builders
from tests.conftest import make_settings
from tests.e2e.test_customer_pages import log_in, watch_errors
from tests.journeys.helpers import Worker, track
from tests.live_server import serving

pytestmark = pytest.mark.e2e
ACTIVATION = "/console/activation"
LYON = {"kind": "trait", "field": "city", "operator": "eq", "value": "Lyon"}


@pytest.fixture(scope="module")
def shared_clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 14, 9, 30, tzinfo=UTC))


@pytest.fixture(scope="module")
def shared_db(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    target = tmp_path_factory.mktemp("activation") / "parcours.db"
    shutil.copy(sqlite_template, target)
    database = Database.connect(f"sqlite:///{target}")
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def server(
    shared_db: Database, shared_clock: ManualClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("activation-data"), shared_db)
    with serving(create_app(settings, shared_db, shared_clock)) as url:
        yield url


class Console:
    """A logged-in browser tab and the script errors it meets."""

    def __init__(self, browser: Any, server: str, username: str, locale: str) -> None:
        self.context = browser.new_context(locale=locale, accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(5_000)
        self.errors = watch_errors(self.page)
        self.server = server
        log_in(self.page, server, username)

    def open(self, path: str) -> Any:
        self.page.goto(f"{self.server}{path}")
        return self.page

    def close(self) -> None:
        # A refused form comes back with its errors and a 422 on purpose: not a fault.
        faults = [e for e in self.errors if "status of 422" not in e]
        assert faults == []
        self.context.close()


@pytest.fixture
def open_console(browser: Any, server: str) -> Iterator[Any]:
    opened: list[Console] = []

    def opening(username: str, locale: str = "en-GB") -> Console:
        opened.append(Console(browser, server, username, locale))
        return opened[-1]

    yield opening
    for console in opened:
        console.close()


def customer(
    db: Database, clock: ManualClock, email: str, first_name: str, city: str = "Lyon"
) -> uuid.UUID:
    """A customer who reads French, with the marketing email consent."""
    with db.transaction() as session:
        [profile_id] = customers.add_customers(
            session,
            clock.now(),
            [{"email": email, "first_name": first_name, "last_name": "Martin", "city": city,
              "locale": "fr", "timezone": "Europe/Paris"}],
        )  # fmt: skip
        customers.add_consents(
            session,
            [{"customer_id": profile_id, "purpose": "marketing", "channel": "email",
              "granted": True, "at": clock.now(), "source": "test", "proof": "form"}],
        )  # fmt: skip
    return profile_id


def test_a_marketer_builds_previews_and_saves_a_segment_in_french(
    server: str, shared_db: Database, shared_clock: ManualClock, open_console: Any
) -> None:
    builders.user(shared_db, shared_clock, "seg-marketer", role="marketer")
    customer(shared_db, shared_clock, "lea.seg@example.com", "Léa")
    customer(shared_db, shared_clock, "zoe.seg@example.com", "Zoé")
    customer(shared_db, shared_clock, "tom.seg@example.com", "Tom", city="Paris")
    page = open_console("seg-marketer", "fr-FR").open(f"{ACTIVATION}/segments")

    page.select_option("select[name=kind_0]", "trait")
    page.fill("input[name=field_0]", "city")
    page.fill("input[name=operator_0]", "gt")
    page.fill("input[name=value_0]", "Lyon")
    page.get_by_role("button", name="Aperçu").click()
    refusal = page.get_by_role("alert").inner_text()
    assert "n'est pas valide" in refusal
    assert "#/definition/all/0/operator" in page.locator("ul.error").inner_text()
    assert "ne s'applique pas" in page.locator("ul.error").inner_text()

    page.fill("input[name=operator_0]", "eq")
    page.get_by_role("button", name="Aperçu").click()
    expect(page.locator("#preview")).to_have_attribute("data-count", "2")
    assert page.locator("#preview").inner_text().startswith("2 profils")
    sample = page.locator("#preview + ul li").all_inner_texts()
    assert sorted(sample) == ["Léa Martin", "Zoé Martin"]

    page.fill("input[name=key]", "lyonnais")
    page.fill("input[name=name]", "Clients lyonnais")
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(f"**{ACTIVATION}/segments/lyonnais")
    assert page.locator("h1").inner_text().startswith("Clients lyonnais")
    assert len(page.locator("#members li a").all()) == 2
    assert page.locator("#history tbody tr").count() == 1

    page.goto(f"{server}{ACTIVATION}/segments")
    page.locator("tr[data-segment=lyonnais]").get_by_role("link").click()
    page.wait_for_url(f"**{ACTIVATION}/segments/lyonnais")


def test_a_marketer_fixes_a_template_error_and_previews_it_for_a_customer(
    shared_db: Database, shared_clock: ManualClock, open_console: Any
) -> None:
    builders.user(shared_db, shared_clock, "tpl-marketer", role="marketer")
    lea = customer(shared_db, shared_clock, "lea.tpl@example.com", "Léa")
    page = open_console("tpl-marketer").open(f"{ACTIVATION}/templates?channel=email")

    page.fill("input[name=key]", "spring-sale")
    page.fill("input[name=subject_fr]", "Bonjour {{ customer.first_name }")
    page.fill("input[name=subject_en]", "Hello {{ customer.first_name }}")
    page.fill("textarea[name=text_fr]", "Les soldes de printemps commencent.")
    page.locator("#template-form").get_by_role("button", name="Save").click()
    errors = page.locator("#template-errors")
    assert "#/subject_fr" in errors.inner_text()
    assert "#/exists" not in errors.inner_text()
    assert page.locator("input[name=subject_en]").input_value().startswith("Hello")

    page.fill("input[name=subject_fr]", "Bonjour {{ customer.first_name }}")
    page.locator("#template-form").get_by_role("button", name="Save").click()
    page.wait_for_url(lambda url: url.endswith("/templates?key=spring-sale"))
    assert page.locator("tr[data-template=spring-sale]").is_visible()
    assert page.locator("#template-errors").count() == 0

    page.fill("#preview-form input[name=profile_id]", str(lea))
    page.locator("#preview-form").get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    assert preview.get_attribute("data-locale") == "fr"
    assert "Bonjour Léa" in preview.inner_text()
    assert "Les soldes de printemps commencent." in preview.inner_text()


def test_a_marketer_creates_a_campaign_on_a_segment_and_sees_it_listed(
    shared_db: Database, shared_clock: ManualClock, open_console: Any
) -> None:
    builders.user(shared_db, shared_clock, "camp-marketer", role="marketer")
    customer(shared_db, shared_clock, "lea.camp@example.com", "Léa")
    now = shared_clock.now()
    content = {"subject_fr": "Bonjour", "text_fr": "Nouveautés de la semaine."}
    with shared_db.transaction() as session:
        made = create_segment(session, now, CLI_ACTOR, "campaign-lyon", "Lyon", LYON)
        refresh_segment(session, now, made.id)
        save_template(session, now, TemplateInput("weekly", "email", "marketing", content), "t")
    page = open_console("camp-marketer").open(f"{ACTIVATION}/campaigns")

    form = page.locator("#campaign-form")
    form.locator("input[name=name]").fill("Weekly news")
    form.locator("select[name=segment]").select_option("campaign-lyon")
    form.locator("select[name=channel]").select_option("email")
    form.locator("select[name=template_A]").select_option("weekly")
    form.get_by_role("button", name="Create").click()
    page.wait_for_url(f"**{ACTIVATION}/campaigns/*")
    campaign_id = page.url.rsplit("/", 1)[1]

    page.goto(page.url.rsplit("/", 1)[0])
    row = page.locator(f"tr[data-campaign='{campaign_id}']")
    assert "Weekly news" in row.inner_text()
    assert "campaign-lyon" in row.inner_text()
    assert "draft" in row.inner_text()


def test_a_marketer_creates_a_promotion_and_downloads_its_unique_codes(
    shared_db: Database, shared_clock: ManualClock, open_console: Any, tmp_path: Path
) -> None:
    builders.user(shared_db, shared_clock, "offer-marketer", role="marketer")
    page = open_console("offer-marketer").open(f"{ACTIVATION}/offers")

    page.fill("input[name=key]", "spring-15")
    page.fill("input[name=name_fr]", "Printemps -15 %")
    page.fill("input[name=name_en]", "Spring 15% off")
    page.select_option("select[name=kind]", "percent_off")
    page.fill("input[name=value]", "15")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"**{ACTIVATION}/offers")
    row = page.locator("tr[data-promotion=spring-15]")
    assert "Spring 15% off" in row.inner_text()

    row.locator("input[name=count]").fill("12")
    row.locator("input[name=prefix]").fill("SPR")
    row.get_by_role("button", name="Generate").click()
    page.wait_for_url(lambda url: "/offers?batch=" in url)
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download the CSV").click()
    saved = tmp_path / "codes.csv"
    downloading.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0] == "code"
    assert len(lines) == 13
    assert len(set(lines[1:])) == 12
    assert all(code.startswith("SPR") for code in lines[1:])
    assert page.locator("tr[data-promotion=spring-15] td").nth(4).inner_text() == "12"


def test_store_staff_find_a_member_and_give_a_reward_in_french(
    shared_db: Database, shared_clock: ManualClock, open_console: Any
) -> None:
    member = customer(shared_db, shared_clock, "lea.points@example.com", "Léa")
    now = shared_clock.now()
    with shared_db.transaction() as session:
        programme.add_reward(session, now, {
            "key": "five-euros", "name_fr": "5 € offerts", "name_en": "5 € off",
            "points_cost": 100, "kind": "discount", "amount_off": 500,
        })  # fmt: skip
        programme.award_points(session, now, member, 130, "welcome gift", "gift:points-e2e")
    builders.user(shared_db, shared_clock, "counter-staff", role="staff")
    page = open_console("counter-staff", "fr-FR").open(f"{ACTIVATION}/loyalty")

    page.fill("input[name=q]", "lea.points@example.com")
    page.get_by_role("button", name="Rechercher").click()
    assert page.locator("[data-balance]").inner_text() == "130"
    assert page.locator("[data-tier]").inner_text() == "Bronze"
    page.select_option("select[name=reward]", "five-euros")
    page.get_by_role("button", name="Remettre la récompense").click()
    expect(page.locator("[data-given]")).to_be_visible()
    assert page.locator("[data-balance]").inner_text() == "30"
    assert page.locator("input[name=points_cost]").count() == 0  # staff do not edit rewards

    page.select_option("select[name=reward]", "five-euros")
    page.get_by_role("button", name="Remettre la récompense").click()
    assert "points" in page.get_by_role("alert").inner_text()
    assert page.locator("[data-balance]").inner_text() == "30"


def test_a_marketer_creates_activates_and_reads_a_journey_with_counts_per_step(
    shared_db: Database, shared_clock: ManualClock, open_console: Any
) -> None:
    builders.user(shared_db, shared_clock, "journey-marketer", role="marketer")
    now = shared_clock.now()
    content = {"subject_fr": "Votre panier", "text_fr": "Votre panier vous attend."}
    with shared_db.transaction() as session:
        save_template(
            session, now, TemplateInput("cart-reminder", "email", "marketing", content), "t"
        )
        install_ready_made(session, now, CLI_ACTOR)
    page = open_console("journey-marketer").open(f"{ACTIVATION}/journeys")
    assert page.locator("tr[data-journey]").count() >= 5

    definition = (
        '{"trigger": {"type": "event", "event": "Product Added"},'
        ' "steps": [{"id": "pause", "type": "wait", "hours": 1, "next": "remind"},'
        ' {"id": "remind", "type": "send", "template": "cart-reminder"}],'
        ' "exit": [{"event": "Order Completed"}], "reentry": {"mode": "always"}}'
    )
    form = page.locator("#new-journey")
    form.locator("input[name=key]").fill("cart-e2e")
    form.locator("input[name=name]").fill("Cart reminder")
    form.locator("textarea[name=definition]").fill(definition)
    form.get_by_role("button", name="Save as draft").click()
    page.wait_for_url(f"**{ACTIVATION}/journeys/cart-e2e")
    assert page.locator("#summary").get_attribute("data-status") == "draft"
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url(f"**{ACTIVATION}/journeys/cart-e2e")
    assert page.locator("#summary").get_attribute("data-status") == "active"

    builders.known_person(shared_db, shared_clock, user_id="u-journey", email="j@example.com")
    track(shared_db, now + timedelta(seconds=1), "Product Added", user_id="u-journey")
    shared_clock.advance(timedelta(seconds=5))
    Worker(shared_db, shared_clock).run()
    page.reload()
    assert page.locator("[data-step]").evaluate_all("els => els.map(e => e.dataset.step)") == [
        "pause",
        "remind",
    ]
    waiting = page.locator("[data-step=pause]").inner_text()
    assert "Entered 1" in waiting
    assert "Waiting 1" in waiting
    assert "Entered 0" in page.locator("[data-step=remind]").inner_text()


def test_a_marketer_adds_edits_and_deactivates_a_reward_in_french(
    shared_db: Database, shared_clock: ManualClock, open_console: Any
) -> None:
    builders.user(shared_db, shared_clock, "reward-marketer", role="marketer")
    page = open_console("reward-marketer", "fr-FR").open(f"{ACTIVATION}/loyalty")

    form = page.locator("#new-reward")
    form.locator("input[name=key]").fill("coffee")
    form.locator("input[name=name_fr]").fill("Café offert")
    form.locator("input[name=name_en]").fill("Free coffee")
    form.locator("input[name=points_cost]").fill("40")
    form.locator("select[name=kind]").select_option("discount")
    form.get_by_role("button", name="Ajouter la récompense").click()
    errors = page.locator("#loyalty-errors").inner_text()
    assert "La récompense n'est pas valide ; rien n'a été créé." in errors
    assert "#/amount_off un montant en centimes supérieur à 0" in errors

    form.locator("input[name=key]").fill("coffee")
    form.locator("input[name=name_fr]").fill("Café offert")
    form.locator("input[name=name_en]").fill("Free coffee")
    form.locator("input[name=points_cost]").fill("40")
    form.locator("select[name=kind]").select_option("discount")
    form.locator("input[name=amount_off]").fill("250")
    form.get_by_role("button", name="Ajouter la récompense").click()
    page.wait_for_url(f"**{ACTIVATION}/loyalty#rewards")
    row = page.locator("tr[data-reward=coffee]")
    assert row.get_attribute("data-active") == "1"

    row.locator("input[name=points_cost]").fill("60")
    row.locator("input[name=name_en]").fill("A free coffee")
    row.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(f"**{ACTIVATION}/loyalty#rewards")
    row = page.locator("tr[data-reward=coffee]")
    assert row.locator("input[name=points_cost]").input_value() == "60"
    assert row.locator("input[name=name_en]").input_value() == "A free coffee"

    row.get_by_role("button", name="Désactiver").click()
    page.wait_for_url(f"**{ACTIVATION}/loyalty#rewards")
    assert page.locator("tr[data-reward=coffee]").get_attribute("data-active") == "0"
    with shared_db.transaction() as session:
        assert "coffee" not in {r.key for r in programme.list_rewards(session, active_only=True)}
    page.locator("tr[data-reward=coffee]").get_by_role("button", name="Réactiver").click()
    page.wait_for_url(f"**{ACTIVATION}/loyalty#rewards")
    assert page.locator("tr[data-reward=coffee]").get_attribute("data-active") == "1"


def test_a_till_checks_promo_codes_and_reads_the_refusals_in_french(
    shared_db: Database, shared_clock: ManualClock, open_console: Any
) -> None:
    now = shared_clock.now()
    with shared_db.transaction() as session:
        promotions.add_promotion(session, now, {
            "key": "till-5", "name_fr": "5 € de remise", "name_en": "5 € off",
            "kind": "amount_off", "amount_off": 500, "min_subtotal": 3000,
        })  # fmt: skip
        good = next(
            iter(offers.batch_codes(session, offers.generate_codes(session, now, "till-5", 1).id))
        )
        past = now - timedelta(days=40)
        gone = offers.generate_codes(session, past, "till-5", 1, valid_days=30)
        expired = next(iter(offers.batch_codes(session, gone.id)))
    builders.user(shared_db, shared_clock, "till-staff", role="staff")
    page = open_console("till-staff", "fr-FR").open(f"{ACTIVATION}/loyalty")

    def check(code: str, total: str) -> Any:
        form = page.locator("#check-code")
        form.locator("input[name=code]").fill(code)
        form.locator("input[name=total]").fill(total)
        form.get_by_role("button", name="Vérifier").click()
        return page.locator("#code-result")

    assert check("NOPE-CODE", "50").inner_text() == "Refusé : code inconnu."
    assert check(expired, "50").inner_text() == "Refusé : ce code a expiré."
    below = check(good, "20")
    assert below.get_attribute("data-reason") == "not-valid"
    assert below.inner_text().startswith("Refusé : panier minimum non atteint (30,00")
    valid = check(good, "45.50")
    assert valid.get_attribute("data-valid") == "1"
    assert valid.inner_text().startswith("Valable : 5,00")
