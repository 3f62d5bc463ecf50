"""The store network: opening, changing and closing stores, and their dated exceptions."""

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from parcours import stores
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput, NotFound
from parcours.core.models import AuditEntry
from parcours.stores.models import StoreException
from tests import builders


def test_a_store_is_opened_with_contact_hours_and_services(
    db: Database, clock: ManualClock
) -> None:
    row = builders.store_row(
        "LYO-2",
        phone="+33 4 72 00 00 00",
        email="lyon@maison-lavande.example",
        opening_hours={"mon": [["09:30", "12:30"], ["14:00", "19:00"]]},
        services=["click_and_collect", "drive"],
    )
    with db.transaction() as session:
        created = stores.create_store(session, clock.now(), CLI_ACTOR, row)
    with db.transaction() as session:
        store = stores.get_store_by_code(session, "LYO-2")
        assert store.id == created.id
        assert store.email == "lyon@maison-lavande.example"
        assert store.services == ["click_and_collect", "drive"]
        assert store.active
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions == ["store.create"]


def test_a_store_with_overlapping_hours_is_refused_and_nothing_is_saved(
    db: Database, clock: ManualClock
) -> None:
    row = builders.store_row(opening_hours={"sat": [["09:00", "13:00"], ["12:00", "19:00"]]})
    with db.transaction() as session, pytest.raises(InvalidInput) as caught:
        stores.create_store(session, clock.now(), CLI_ACTOR, row)
    assert caught.value.errors[0].pointer == "#/opening_hours/sat/1"
    with db.transaction() as session:
        assert stores.count_stores(session) == 0


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        ("email", "not-an-email", "#/email"),
        ("phone", "call me", "#/phone"),
        ("kind", "kiosk", "#/kind"),
        ("services", ["teleportation"], "#/services"),
        ("timezone", "Europe/Atlantis", "#/timezone"),
        ("lat", 123.0, "#/lat"),
        ("name", "", "#/name"),
    ],
)
def test_bad_store_fields_are_pointed_at(
    db: Database, clock: ManualClock, field: str, value: object, pointer: str
) -> None:
    with db.transaction() as session, pytest.raises(InvalidInput) as caught:
        stores.create_store(session, clock.now(), CLI_ACTOR, builders.store_row(**{field: value}))
    assert [e.pointer for e in caught.value.errors] == [pointer]


def test_a_store_code_is_unique(db: Database, clock: ManualClock) -> None:
    builders.add_store(db, clock, "LYO-1")
    with db.transaction() as session, pytest.raises(Conflict, match="LYO-1"):
        stores.create_store(session, clock.now(), CLI_ACTOR, builders.store_row("LYO-1"))


def test_changes_are_checked_whole_before_anything_changes(
    db: Database, clock: ManualClock
) -> None:
    builders.add_store(db, clock, "LYO-1")
    builders.add_store(db, clock, "PAR-1")
    with db.transaction() as session:
        store = stores.get_store_by_code(session, "LYO-1")
        updated = stores.update_store(
            session, clock.now(), CLI_ACTOR, store.id, {"name": "Lyon Bellecour"}
        )
        assert updated.name == "Lyon Bellecour"
    with db.transaction() as session:
        store = stores.get_store_by_code(session, "LYO-1")
        with pytest.raises(InvalidInput):
            stores.update_store(
                session,
                clock.now(),
                CLI_ACTOR,
                store.id,
                {"name": "Lost", "opening_hours": {"mon": [["19:00", "10:00"]]}},
            )
        with pytest.raises(Conflict):
            stores.update_store(session, clock.now(), CLI_ACTOR, store.id, {"code": "PAR-1"})
        with pytest.raises(InvalidInput, match="created_at"):
            stores.update_store(session, clock.now(), CLI_ACTOR, store.id, {"created_at": None})
    with db.transaction() as session:
        assert stores.get_store_by_code(session, "LYO-1").name == "Lyon Bellecour"


def test_a_deactivated_store_stays_but_is_inactive(db: Database, clock: ManualClock) -> None:
    builders.add_store(db, clock, "LYO-1")
    with db.transaction() as session:
        store_id = stores.get_store_by_code(session, "LYO-1").id
        stores.deactivate_store(session, clock.now(), CLI_ACTOR, store_id)
        stores.deactivate_store(session, clock.now(), CLI_ACTOR, store_id)  # idempotent
    with db.transaction() as session:
        assert not stores.get_store(session, store_id).active
        audited = session.scalar(
            select(func.count()).where(AuditEntry.action == "store.deactivate")
        )
    assert audited == 1


def test_exceptions_are_set_replaced_and_removed_per_date(db: Database, clock: ManualClock) -> None:
    builders.add_store(db, clock, "LYO-1")
    new_year = date(2027, 1, 1)
    with db.transaction() as session:
        store_id = stores.get_store_by_code(session, "LYO-1").id
        stores.set_exception(
            session, clock.now(), CLI_ACTOR, store_id, {"day": new_year, "label": "Jour de l'an"}
        )
        stores.set_exception(
            session,
            clock.now(),
            CLI_ACTOR,
            store_id,
            {"day": date(2026, 12, 20), "hours": [["10:00", "18:00"]], "label": "Dimanche de Noël"},
        )
    with db.transaction() as session:
        found = stores.list_exceptions(session, store_id)
        assert [(e.day, e.closed, e.hours, e.label) for e in found] == [
            (date(2026, 12, 20), False, [["10:00", "18:00"]], "Dimanche de Noël"),
            (new_year, True, [], "Jour de l'an"),
        ]
        stores.set_exception(
            session,
            clock.now(),
            CLI_ACTOR,
            store_id,
            {"day": new_year, "hours": [["14:00", "18:00"]], "closed": False},
        )
    with db.transaction() as session:
        assert [e.hours for e in stores.list_exceptions(session, store_id, new_year)] == [
            [["14:00", "18:00"]]
        ]
        stores.remove_exception(session, clock.now(), CLI_ACTOR, store_id, new_year)
        with pytest.raises(NotFound, match="2027-01-01"):
            stores.remove_exception(session, clock.now(), CLI_ACTOR, store_id, new_year)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(StoreException)) == 1


@pytest.mark.parametrize(
    ("row", "pointer"),
    [
        ({"day": "2026-12-25"}, "#/day"),
        ({"day": date(2026, 12, 24), "closed": False}, "#/hours"),
        ({"day": date(2026, 12, 24), "closed": True, "hours": [["10:00", "12:00"]]}, "#/hours"),
        (
            {"day": date(2026, 12, 24), "hours": [["10:00", "12:00"], ["11:00", "13:00"]]},
            "#/hours/1",
        ),
        ({"day": date(2026, 12, 24), "label": "x" * 121}, "#/label"),
    ],
)
def test_bad_exceptions_are_refused(
    db: Database, clock: ManualClock, row: dict[str, object], pointer: str
) -> None:
    builders.add_store(db, clock, "LYO-1")
    with db.transaction() as session:
        store_id = stores.get_store_by_code(session, "LYO-1").id
        with pytest.raises(InvalidInput) as caught:
            stores.set_exception(session, clock.now(), CLI_ACTOR, store_id, row)
    assert [e.pointer for e in caught.value.errors] == [pointer]


def test_an_unknown_store_has_no_exceptions_to_set(db: Database, clock: ManualClock) -> None:
    with db.transaction() as session, pytest.raises(NotFound):
        stores.set_exception(
            session, clock.now(), CLI_ACTOR, uuid.uuid4(), {"day": date(2026, 12, 25)}
        )


def test_the_demo_closes_every_store_on_public_holidays(db: Database) -> None:
    from parcours.demo.generator import STEPS, generate

    # The stores step sets the exceptions; the later ones leave them alone.
    later = [name for name, _ in STEPS if name != "stores"]
    report = generate(db, seed=5, size="tiny", now=datetime(2026, 11, 1, tzinfo=UTC), skip=later)
    assert report["store_exceptions"] > 0
    with db.transaction() as session:
        lyon = stores.get_store_by_code(session, "LYO-69123-1")
        assert lyon.email == "lyon@maison-lavande.example"
        found = {e.day: e for e in stores.list_exceptions(session, lyon.id)}
        schedule = stores.opening_schedule(session, lyon, datetime(2026, 12, 24, tzinfo=UTC))
    assert found[date(2026, 12, 25)].closed
    assert found[date(2026, 12, 25)].label == "Noël"
    assert found[date(2027, 5, 6)].label == "Ascension"  # Easter 2027 is 28 March
    assert not stores.is_open(schedule, datetime(2026, 12, 25, 11, 0, tzinfo=UTC))
