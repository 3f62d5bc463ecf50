import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from parcours.core.db import Database, DatabaseUnavailable
from parcours.core.migrate import current_revision, head_revision, pending, upgrade
from parcours.core.models import AuditEntry


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_timestamps_are_stored_in_utc_and_read_back_aware(db: Database) -> None:
    paris_summer = timezone(timedelta(hours=2))
    with db.transaction() as session:
        session.add(
            AuditEntry(
                at=datetime(2026, 7, 14, 12, 0, tzinfo=paris_summer),
                actor="cli:operator",
                action="test",
                target_type="x",
                detail={},
            )
        )
    with db.transaction() as session:
        entry = session.query(AuditEntry).one()
    assert entry.at == datetime(2026, 7, 14, 10, 0, tzinfo=UTC)
    assert entry.at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(db: Database) -> None:
    naive = datetime(2026, 1, 1)
    entry = AuditEntry(at=naive, actor="a", action="b", target_type="c", detail={})
    with db.transaction() as session:
        session.add(entry)
        with pytest.raises(Exception, match="naive datetime"):
            session.flush()
        session.rollback()


def test_init_twice_is_harmless(db: Database) -> None:
    assert not pending(db)
    before, after = upgrade(db)
    assert before == after == head_revision()


def test_two_inits_at_once_both_succeed_and_migrate_once(
    request: pytest.FixtureRequest, tmp_path
) -> None:
    for backend in ("sqlite", "postgres"):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/race.db"
        else:
            make = request.getfixturevalue("postgres_url_factory")
            url = _empty_postgres_database(make())
        script = (
            "import sys; from parcours.core.db import Database;"
            "from parcours.core.migrate import upgrade;"
            "print(upgrade(Database.connect(sys.argv[1])))"
        )
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", script, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [r.communicate(timeout=120) for r in runs]
        assert all(r.returncode == 0 for r in runs), results
        outputs = sorted(out.strip() for out, _ in results)
        head = head_revision()
        # Exactly one process migrated; the other found the schema already at head.
        assert outputs == sorted([f"(None, '{head}')", f"('{head}', '{head}')"]), (backend, outputs)
        database = Database.connect(url)
        assert current_revision(database) == head
        database.dispose()


def _empty_postgres_database(template_clone_url: str) -> str:
    """A brand-new empty database next to a clone (clones are already migrated)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    url = make_url(template_clone_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"{url.database}_empty"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def test_an_unreachable_database_is_reported_without_its_password(tmp_path) -> None:
    db = Database.connect(f"postgresql+psycopg://shop:s3cret@/nowhere?host={tmp_path}")
    with pytest.raises(DatabaseUnavailable) as caught:
        db.ping()
    message = str(caught.value)
    assert "cannot reach the database" in message
    assert "s3cret" not in message
    assert "***" in message


def _stored_both_ways(db: Database, rows: list[dict[str, Any]], columns: str) -> tuple[Any, Any]:
    """`rows` (actor "import") written by `insert_rows_sqlite` and again (actor "orm") by
    SQLAlchemy's insert; `columns` of each set as stored, in insertion order."""
    from sqlalchemy import insert

    from parcours.core.db import insert_rows_sqlite
    from parcours.core.ids import new_id

    table = AuditEntry.__table__
    mirror = [{**row, "id": new_id(), "actor": "orm"} for row in rows]
    with db.transaction() as session:
        insert_rows_sqlite(session, table, rows)  # type: ignore[arg-type]
        session.execute(insert(table), mirror)
    with db.engine.connect() as conn:
        query = f"SELECT {columns} FROM audit_log WHERE actor = ? ORDER BY rowid"
        ours = conn.exec_driver_sql(query, ("import",)).all()
        theirs = conn.exec_driver_sql(query, ("orm",)).all()
        conn.exec_driver_sql("DELETE FROM audit_log")
        conn.commit()
    return ours, theirs


def test_rows_written_through_the_sqlite_driver_are_stored_as_sqlalchemy_stores_them(
    sqlite_db: Database,
) -> None:
    from parcours.core.ids import new_id

    at = datetime(2026, 3, 14, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))
    rows = [
        {"id": new_id(), "at": at + timedelta(seconds=n), "actor": "import", "action": "add",
         "target_type": "product", "target_id": None if n % 2 else f"P{n}",
         "detail": {"n": n, "tags": ["é", None]}}
        for n in range(1_203)  # two full INSERTs of 500 rows and a shorter last one
    ]  # fmt: skip
    columns = "at, action, target_type, target_id, detail, length(id)"
    ours, theirs = _stored_both_ways(sqlite_db, rows, columns)
    assert len(ours) == 1_203
    assert ours == theirs
    assert ours[0][0] == "2026-03-14 09:30:15.123456"  # UTC, as text


def test_a_value_shared_by_every_row_is_stored_as_sqlalchemy_stores_it(
    sqlite_db: Database,
) -> None:
    from parcours.core.ids import new_id

    at = datetime(2026, 3, 14, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))
    cases = [  # the rows' `at` and `detail` in turn
        ([at, at.astimezone(UTC)], [{}, {}]),  # one instant in two zones; empty objects
        ([at, at], [{"n": True}, {"n": 1}]),  # equal objects, stored as true and as 1
        ([at, at], [[], []]),
    ]
    for times, details in cases:
        rows = [
            {"id": new_id(), "at": times[n % 2], "actor": "import", "action": "add",
             "target_type": "product", "target_id": None, "detail": details[n % 2]}
            for n in range(7)
        ]  # fmt: skip
        ours, theirs = _stored_both_ways(sqlite_db, rows, "at, detail")
        assert ours == theirs


def test_rows_alike_and_rows_already_stored_are_inserted_once(sqlite_db: Database) -> None:
    """Shared values are bound once per statement (`core.db.Same`): rows alike in every
    column, or whose columns all but the id are shared, still go in, and rows that would
    break the primary key are skipped and not counted."""
    from sqlalchemy import func, select

    from parcours.core.db import insert_rows_sqlite
    from parcours.core.ids import new_id

    table = AuditEntry.__table__
    row = {"id": new_id(), "at": datetime(2026, 3, 14, tzinfo=UTC), "actor": "import",
           "action": "add", "target_type": "product", "target_id": None, "detail": {}}  # fmt: skip
    others = [{**row, "id": new_id()} for _ in range(2)]
    with sqlite_db.transaction() as session:
        assert insert_rows_sqlite(session, table, [row] * 3, skip_conflicts=True) == 1  # type: ignore[arg-type]
        assert insert_rows_sqlite(session, table, [row, *others], skip_conflicts=True) == 2  # type: ignore[arg-type]
        stored = session.execute(select(AuditEntry.actor, func.count()).group_by(AuditEntry.actor))
        assert stored.all() == [("import", 3)]
        assert {entry.at for entry in session.scalars(select(AuditEntry))} == {row["at"]}


def test_among_finds_texts_in_one_parameter_however_many(db: Database) -> None:
    from sqlalchemy import select

    from parcours.core.db import among
    from parcours.core.ids import new_id

    stored = ['l\'été "chaud"', "back\\slash", "[1]", "null", "Ünïcode", "plain"]
    with db.transaction() as session:
        for action in stored:
            session.add(
                AuditEntry(id=new_id(), at=datetime(2026, 3, 14, tzinfo=UTC), actor="t",
                           action=action, target_type="x", target_id=None, detail={})
            )  # fmt: skip
        session.flush()
        wanted = [*stored[:4], *(f"absent {n}" for n in range(6_000))]
        query = select(AuditEntry.action).where(among(session, AuditEntry.action, wanted))
        assert sorted(session.scalars(query)) == sorted(stored[:4])
        assert list(session.scalars(query.where(among(session, AuditEntry.action, [])))) == []


def test_insert_many_stores_rows_alike_on_both_databases_or_says_what_is_missing(
    db: Database,
) -> None:
    from sqlalchemy import select

    from parcours.core.db import insert_many
    from parcours.core.ids import new_id

    table = AuditEntry.__table__
    at = datetime(2026, 3, 14, 10, tzinfo=timezone(timedelta(hours=1)))
    rows = [
        {"id": new_id(), "at": at, "actor": "many", "action": f"a{n}", "target_type": "x",
         "target_id": None if n else "T0", "detail": {"n": n}}
        for n in range(3)
    ]  # fmt: skip
    with db.transaction() as session:
        insert_many(session, table, rows)  # type: ignore[arg-type]
        insert_many(session, table, [])  # type: ignore[arg-type]
        stored = session.execute(
            select(AuditEntry.action, AuditEntry.at, AuditEntry.target_id, AuditEntry.detail)
            .where(AuditEntry.actor == "many")
            .order_by(AuditEntry.action)
        ).all()
        assert [tuple(row) for row in stored] == [
            (f"a{n}", at, None if n else "T0", {"n": n}) for n in range(3)
        ]
        uneven = [rows[0], {k: v for k, v in rows[1].items() if k != "detail"}]
        with pytest.raises(ValueError, match="same columns"):
            insert_many(session, table, uneven)  # type: ignore[arg-type]
        without_id = [{k: v for k, v in row.items() if k != "id"} for row in rows]
        with pytest.raises(ValueError, match=r"\['id'\]"):  # its default would differ
            insert_many(session, table, without_id)  # type: ignore[arg-type]
