"""Subject access export and erasure everywhere, with tombstones, on both databases."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from parcours import customers
from parcours.core import memo
from parcours.core.audit import SYSTEM_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, NotFound
from parcours.core.models import AuditEntry
from parcours.customers import consent, identity, privacy
from parcours.customers.models import (
    Consent,
    Customer,
    Erasure,
    ErasureTombstone,
    TrackedEvent,
)
from tests import builders
from tests.builders import event_row
from tests.web.test_console import HTML, csrf_in, log_in

pytestmark = pytest.mark.anyio


def person(db: Database, clock: ManualClock, email: str = "lea.martin@example.com") -> Any:
    """Léa: a web account with a cookie, a consent and two events; her id."""
    lea = builders.known_person(
        db,
        clock,
        traits={"first_name": "Léa", "last_name": "Martin"},
        email=email,
        user_id=f"web-{email}",
        anonymous_id=f"anon-{email}",
        phone="06 12 34 56 78" if email.startswith("lea") else "06 98 76 54 32",
    )
    builders.log_events(
        db,
        event_row(clock.now(), user_id=f"web-{email}", event="Order Completed"),
        event_row(clock.now(), anonymous_id=f"anon-{email}", type="page", event="Home"),
    )
    with db.transaction() as session:
        customers.add_consents(
            session,
            [
                {
                    "customer_id": lea,
                    "purpose": "marketing",
                    "channel": "sms",
                    "granted": True,
                    "at": clock.now(),
                    "source": "store_pos",
                    "proof": "signed on the tablet",
                }
            ],
        )
    return lea


def export(db: Database, clock: ManualClock, profile_id: Any, *handlers: Any) -> Any:
    with db.transaction() as session:
        return privacy.export_person(session, clock.now(), SYSTEM_ACTOR, profile_id, handlers)


def erase(db: Database, clock: ManualClock, profile_id: Any, *handlers: Any) -> Any:
    with db.transaction() as session:
        return privacy.erase_person(session, clock.now(), SYSTEM_ACTOR, profile_id, handlers)


class Orders:
    """A context above customers, as orders will be: it keeps amounts, drops the person."""

    def __init__(self) -> None:
        self.orders = {"o-1": {"number": "o-1", "total_cents": 8990, "name": "Léa Martin"}}
        self.handler = privacy.PersonalDataHandler("orders", self.export, self.erase)

    def export(self, session: Any, profile_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
        return {"orders": list(self.orders.values())}

    def erase(self, session: Any, now: Any, profile_id: uuid.UUID) -> int:
        for order in self.orders.values():
            order["name"] = None
        return len(self.orders)


# ------------------------------------------------------------------ export


def test_the_export_holds_everything_about_the_person_and_is_audited(
    db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    zoe = person(db, clock, "zoe@example.com")
    orders = Orders()
    done = export(db, clock, lea, orders.handler)
    tables = done.tables
    assert tables["profile"][0]["first_name"] == "Léa"
    assert {i["kind"] for i in tables["identity_identifiers"]} == {
        "email",
        "phone",
        "user_id",
        "anonymous_id",
    }
    assert sorted(e["event"] for e in tables["events"]) == ["Home", "Order Completed"]
    assert [c["source"] for c in tables["consents"]] == ["store_pos"]
    assert tables["orders"][0]["total_cents"] == 8990
    assert "zoe@example.com" not in json.dumps(tables)
    with db.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.exported")
        ).one()
        assert entry.target_id == str(lea)
        assert entry.detail["rows"]["events"] == 2
    again = export(db, clock, lea)  # the first export is now in the person's audit trail
    assert "customer.exported" in {a["action"] for a in again.tables["audit_log"]}
    assert zoe != lea


def test_the_zip_has_one_json_document_and_one_csv_per_table(
    db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    archive = zipfile.ZipFile(io.BytesIO(privacy.export_zip(export(db, clock, lea))))
    names = set(archive.namelist())
    assert {"person.json", "profile.csv", "events.csv", "consents.csv", "audit_log.csv"} <= names
    document = json.loads(archive.read("person.json"))
    assert document["profile_id"] == str(lea)
    rows = list(csv.DictReader(io.StringIO(archive.read("events.csv").decode())))
    assert len(rows) == 2
    assert json.loads(rows[0]["context"]) == {"channel": "web"}


def test_exporting_an_unknown_profile_is_not_found(db: Database, clock: ManualClock) -> None:
    with pytest.raises(NotFound):
        export(db, clock, uuid.uuid4())


# ------------------------------------------------------------------ erasure


def test_erasure_removes_the_person_everywhere_but_keeps_a_proof(
    db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    zoe = person(db, clock, "zoe@example.com")
    orders = Orders()
    clock.advance(timedelta(days=2))
    report = erase(db, clock, lea, orders.handler)
    assert report.counts["events"] == 2
    assert report.counts["orders"] == 1
    assert report.counts["consents"] == 1
    assert report.tombstones >= 4
    assert orders.orders["o-1"] == {"number": "o-1", "total_cents": 8990, "name": None}
    with db.transaction() as session:
        row = session.get(Customer, lea)
        assert row is not None
        assert (row.email, row.phone, row.first_name, row.last_name) == (None, None, None, None)
        assert row.erased_at == clock.now()
        assert identity.resolve(session, "email", "lea.martin@example.com") is None
        assert session.scalar(select(func.count()).select_from(Consent)) == 1  # Zoé's
        events = session.scalars(select(TrackedEvent.user_id)).all()
        assert "web-lea.martin@example.com" not in events
        assert "web-zoe@example.com" in events
        proof = session.scalars(select(Erasure)).one()
        assert (proof.customer_id, proof.actor) == (lea, "system:parcours")
        assert "lea" not in json.dumps(proof.counts)
        erased = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "customer.erased")
        ).one()
        assert erased.target_id == str(lea)
        assert consent.can_contact(session, lea, "marketing", "sms", clock.now()).reason == "erased"
        assert consent.can_contact(session, zoe, "marketing", "sms", clock.now()).allowed
        digests = session.scalars(select(ErasureTombstone.digest)).all()
        assert all(len(d) == 64 and "lea" not in d for d in digests)


def test_erased_identifiers_are_blocked_and_others_are_not(
    db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    erase(db, clock, lea)
    asked = {
        ("email", "lea.martin@example.com"),
        ("phone", "+33612345678"),
        ("anonymous_id", "anon-lea.martin@example.com"),
        ("email", "zoe@example.com"),
    }
    with db.transaction() as session:
        blocked = privacy.erased_identifiers(session, asked)
    assert blocked == asked - {("email", "zoe@example.com")}


def test_nothing_is_blocked_before_any_erasure(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session:
        assert privacy.erased_identifiers(session, {("email", "a@b.example")}) == set()
        assert not privacy.erasures_in_force(session)
    erase(db, clock, person(db, clock))
    with db.transaction() as session:
        assert privacy.erasures_in_force(session)


def test_the_tombstones_a_process_holds_follow_every_change(
    db: Database, clock: ManualClock
) -> None:
    memory: memo.Expiring[str, tuple[int, frozenset[str]]] = memo.Expiring(3600.0)
    statements: list[str] = []

    def blocked() -> frozenset[str]:
        with db.transaction() as session:
            return privacy.blocked_digests(session, memory)

    assert blocked() == frozenset()
    erase(db, clock, person(db, clock))
    first = blocked()
    assert len(first) >= 3  # email, phone, user and anonymous ids
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert blocked() == first
    assert not [s for s in statements if "FROM erasure_tombstones" in s]  # not read again
    with db.transaction() as session:
        assert privacy.clear_tombstone(session, "email", "lea.martin@example.com")
    assert len(blocked()) == len(first) - 1


def test_erasing_twice_is_a_conflict_and_an_unknown_profile_is_not_found(
    db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    erase(db, clock, lea)
    with pytest.raises(Conflict, match="already erased"):
        erase(db, clock, lea)
    with pytest.raises(NotFound):
        erase(db, clock, uuid.uuid4())


def test_erasing_a_merged_profile_erases_the_whole_person(db: Database, clock: ManualClock) -> None:
    web = person(db, clock)
    with db.transaction() as session:
        [store] = customers.add_customers(
            session,
            clock.now(),
            [{"customer_number": "C-7", "first_name": "Léa", "phone": "+33655555555"}],
        )
        identity.merge_profiles(session, clock.now(), SYSTEM_ACTOR, web, store, "same person")
    report = erase(db, clock, store)  # the old id of the absorbed profile
    assert report.profile_id == web
    assert report.counts["profiles"] == 2
    with db.transaction() as session:
        rows = session.scalars(select(Customer).where(Customer.id.in_([web, store]))).all()
        assert {(r.first_name, r.customer_number, r.erased_at is not None) for r in rows} == {
            (None, None, True)
        }
        assert privacy.erased_identifiers(session, {("customer_number", "C-7")})


def test_a_new_double_opt_in_lifts_the_block_on_that_address_only(
    db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    erase(db, clock, lea)
    outbox: list[Any] = []

    class Mailer:
        def send_email(self, message: Any) -> str:
            outbox.append(message)
            return "<1@test>"

    opt_in = consent.DoubleOptIn(Mailer(), "https://shop.example", timedelta(hours=72))
    item = consent.ConsentInput("marketing", "email", True, "web_footer", "nl-5")
    clock.advance(timedelta(days=30))
    with db.transaction() as session:
        consent.request_email_confirmation(
            session, clock.now(), SYSTEM_ACTOR, "Lea.Martin@example.com", item, opt_in
        )
        # Asking is not enough: someone else may have typed her address.
        assert privacy.erased_identifiers(session, {("email", "lea.martin@example.com")})
    token = outbox[0].text.split("/consent/confirm/")[1].split("?")[0]
    with db.transaction() as session:
        done = consent.confirm(session, clock.now(), token, {"ip": "198.51.100.1"})
        assert done.profile_id != lea
        assert consent.can_contact(session, done.profile_id, "marketing", "email", clock.now())
        pairs = {("email", "lea.martin@example.com"), ("phone", "+33612345678")}
        assert privacy.erased_identifiers(session, pairs) == {("phone", "+33612345678")}


async def test_a_replayed_event_of_an_erased_person_is_refused(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    erase(db, clock, lea)
    key = builders.api_key(db, clock, kind="write")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    replay = await client.post(
        "/v1/track",
        json={
            "userId": "web-lea.martin@example.com",
            "event": "Order Completed",
            "messageId": "replayed-1",
        },
        headers=basic,
    )
    assert replay.status_code == 422
    assert "erased" in replay.text
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(TrackedEvent)) == 0


async def test_a_person_erased_after_the_process_met_their_ids_is_refused_at_once(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    """The server remembers identifiers' forms and digests between requests, never
    whether they are blocked."""
    key = builders.api_key(db, clock, kind="write")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    zoe = person(db, clock, "zoe@example.com")
    erase(db, clock, zoe)  # an erasure in force: every batch is checked
    lea = person(db, clock)

    async def sent(message_id: str) -> httpx.Response:
        message = {"userId": "web-lea.martin@example.com", "event": "Viewed"}
        return await client.post(
            "/v1/track", json={**message, "messageId": message_id}, headers=basic
        )

    assert (await sent("before")).status_code == 200
    erase(db, clock, lea)
    after = await sent("after")
    assert after.status_code == 422
    assert "erased" in after.text


# ------------------------------------------------------------------ API, console, CLI


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_export_and_erasure_through_the_api(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    admin = builders.api_key(db, clock, "privacy:admin")
    writer = builders.api_key(db, clock, "customers:write")
    forbidden = await client.get(f"/v1/customers/{lea}/export", headers=auth(writer))
    assert forbidden.status_code == 403
    exported = await client.get(f"/v1/customers/{lea}/export", headers=auth(admin))
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/zip"
    assert "person.json" in zipfile.ZipFile(io.BytesIO(exported.content)).namelist()
    missing = await client.get(f"/v1/customers/{uuid.uuid4()}/export", headers=auth(admin))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    erased = await client.post(
        f"/v1/customers/{lea}/erasure", json={"reason": "email of 12 March"}, headers=auth(admin)
    )
    assert erased.status_code == 201, erased.text
    assert erased.json()["counts"]["events"] == 2
    again = await client.post(f"/v1/customers/{lea}/erasure", headers=auth(admin))
    assert again.status_code == 409
    unknown = await client.post(f"/v1/customers/{uuid.uuid4()}/erasure", headers=auth(admin))
    assert unknown.status_code == 404


async def test_an_admin_exports_and_erases_from_the_console(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    builders.user(db, clock)
    await log_in(client)
    page = await client.get(f"/console/customers/{lea}/privacy", headers=HTML)
    token = csrf_in(page.text)
    download = await client.post(
        f"/console/customers/{lea}/export", data={"csrf_token": token}, headers=HTML
    )
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    unticked = await client.post(
        f"/console/customers/{lea}/erase", data={"csrf_token": token}, headers=HTML
    )
    assert unticked.status_code == 422
    erased = await client.post(
        f"/console/customers/{lea}/erase",
        data={"csrf_token": token, "confirm": "yes", "reason": "letter"},
        headers=HTML,
    )
    assert erased.status_code == 303
    after = await client.get(erased.headers["location"], headers=HTML)
    assert "was erased" in after.text
    with db.transaction() as session:
        proof = session.scalars(select(Erasure)).one()
        assert proof.reason == "letter"


async def test_a_marketer_can_neither_export_nor_erase(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    lea = person(db, clock)
    builders.user(db, clock, "marion", role="marketer")
    await log_in(client, "marion")
    page = await client.get(f"/console/customers/{lea}/privacy", headers=HTML)
    assert page.status_code == 200
    assert "Erase the customer" not in page.text
    token = csrf_in(page.text)
    for action in ("export", "erase"):
        refused = await client.post(
            f"/console/customers/{lea}/{action}",
            data={"csrf_token": token, "confirm": "yes"},
            headers=HTML,
        )
        assert refused.status_code == 403


def test_export_and_erase_from_the_command_line(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_cli import parcours_in_process

    parcours = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    lea = person(sqlite_db, ManualClock(builders.utc(2026, 3, 14, 9, 30)))
    out = tmp_path / "lea.zip"
    exported = parcours("customers", "export", str(lea), "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "person.json" in zipfile.ZipFile(out).namelist()
    declined = parcours("customers", "erase", str(lea), input="n\n")
    assert declined.returncode == 1
    erased = parcours("customers", "erase", str(lea), "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "identifiers blocked" in erased.stdout
    again = parcours("customers", "erase", str(lea), "--yes")
    assert again.returncode == 1
    assert "already erased" in again.stderr
    unknown = parcours("customers", "export", str(uuid.uuid4()), "--out", str(out))
    assert unknown.returncode == 1
    assert "No customer" in unknown.stderr
