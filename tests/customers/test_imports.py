"""Customer file imports: mapping, validation, erased people, resuming, on both databases."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from parcours.core.audit import CLI_ACTOR, SYSTEM_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.core.imports import ImportRejected, RowError
from parcours.customers import identity, imports, privacy
from parcours.customers.imports import ImportPlan
from parcours.customers.models import CustomerImport
from tests import builders

POS_FILE = """\
N° carte,Nom,Prénom,Email,Mobile,Code postal,Ville,Date de naissance
C-0001,Martin,Léa,Lea.Martin@Example.com,06 12 34 56 78,69002,Lyon,14/07/1990
C-0002,Durand,Zoé,zoe@example.com,,75011,Paris,1985-02-01
C-0003,Petit,Jules,,0698765432,13001,Marseille,
"""

BAD_FILE = """\
N° carte,Nom,Email,Mobile,Code postal,Date de naissance
C-0001,Martin,lea.martin@example.com,0612345678,69002,14/07/1990
C-0002,Durand,zoe-at-example.com,,75011,
C-0003,Petit,,12,1300,
C-0004,Roux,roux@example.com,,69003,31/02/1990
,Blanc,,,,
C-0006,Noir,noir@example.com,,69004,01/01/2030
"""


def plan(**overrides: Any) -> ImportPlan:
    values: dict[str, Any] = {"source": "pos_lyon", "fmt": "csv", "preset": "pos_loyalty"}
    values.update(overrides)
    return ImportPlan(**values)


def run_import(
    db: Database, clock: ManualClock, text: str, name: str = "pos.csv", **overrides: Any
) -> imports.ImportReport:
    stream = io.BytesIO(text.encode("utf-8"))
    return imports.import_customers(db, clock, SYSTEM_ACTOR, stream, name, plan(**overrides))


def profile_of(db: Database, kind: str, value: str) -> Any:
    with db.transaction() as session:
        return identity.resolve(session, kind, value)


def test_a_loyalty_file_becomes_profiles_through_the_identity_graph(
    db: Database, clock: ManualClock
) -> None:
    report = run_import(db, clock, POS_FILE)
    assert (report.rows_total, report.rows_imported, report.rows_rejected) == (3, 3, 0)
    assert report.rows_linked == 3
    assert report.status == "done"
    lea = profile_of(db, "email", "lea.martin@example.com")
    assert lea is not None
    assert profile_of(db, "loyalty_card", "C-0001") == lea
    assert profile_of(db, "phone", "+33612345678") == lea
    with db.transaction() as session:
        traits = identity.traits_of(session, lea)
    assert traits["first_name"].value == "Léa"
    assert traits["postcode"].value == "69002"
    assert traits["birth_date"].value == "1990-07-14"
    assert traits["first_name"].source == "import:pos_lyon"


def test_rows_merge_with_the_profiles_that_hold_their_identifiers(
    db: Database, clock: ManualClock
) -> None:
    existing = builders.add_customer(db, clock, "lea.martin@example.com")
    run_import(db, clock, POS_FILE)
    assert profile_of(db, "loyalty_card", "C-0001") == existing


def test_bad_rows_are_reported_by_row_and_column_and_nothing_is_imported(
    db: Database, clock: ManualClock
) -> None:
    with pytest.raises(ImportRejected) as caught:
        run_import(db, clock, BAD_FILE)
    problems = {(e.row, e.column): e.message for e in caught.value.row_errors}
    assert problems == {
        (3, "Email"): "is not a usable email address",
        (4, "Mobile"): "is not a valid phone number (national numbers are read as French)",
        (4, "Code postal"): "is not a French postcode (5 digits)",
        (5, "Date de naissance"): "is not a date: write YYYY-MM-DD or DD/MM/YYYY",
        (6, "N° carte,Email,Mobile"): (
            "no identifier: a row needs an email, a phone or a customer/card number"
        ),
        (7, "Date de naissance"): "is not a plausible date (between 1900 and today)",
    }
    assert "nothing was imported" in caught.value.detail
    assert profile_of(db, "loyalty_card", "C-0001") is None
    with db.transaction() as session:
        assert session.scalars(select(CustomerImport)).all() == []


def test_keep_good_rows_imports_the_good_ones_and_keeps_the_report(
    db: Database, clock: ManualClock
) -> None:
    report = run_import(db, clock, BAD_FILE, keep_good_rows=True)
    assert (report.rows_total, report.rows_imported, report.rows_rejected) == (6, 1, 5)
    assert profile_of(db, "loyalty_card", "C-0001") is not None
    assert profile_of(db, "loyalty_card", "C-0004") is None
    with db.transaction() as session:
        errors = imports.import_errors(session, report.id)
    assert [e.row for e in errors] == [3, 4, 4, 5, 6, 7]
    out = io.StringIO()
    assert imports.write_error_report(errors, out) == 6
    assert out.getvalue().splitlines()[0] == "row,column,problem"
    assert out.getvalue().splitlines()[1] == "3,Email,is not a usable email address"


def test_an_erased_person_cannot_come_back_through_an_import(
    db: Database, clock: ManualClock
) -> None:
    run_import(db, clock, POS_FILE, source="web")
    lea = profile_of(db, "email", "lea.martin@example.com")
    with db.transaction() as session:
        privacy.erase_person(session, clock.now(), SYSTEM_ACTOR, lea)
    with pytest.raises(ImportRejected) as caught:
        run_import(db, clock, POS_FILE)
    assert caught.value.row_errors == [RowError(2, "N° carte", imports.ERASED_REFUSAL)]
    report = run_import(db, clock, POS_FILE, keep_good_rows=True)
    assert (report.rows_imported, report.rows_rejected) == (2, 1)
    assert "erased" in report.errors[0].message
    assert profile_of(db, "email", "lea.martin@example.com") is None
    assert profile_of(db, "phone", "+33612345678") is None


def test_an_interrupted_import_resumes_after_the_last_committed_chunk(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["Email,Nom"] + [f"client{i}@example.com,Nom{i}" for i in range(7)]
    text = "\n".join(lines) + "\n"
    seen: list[str] = []
    real_observe = identity.observe

    def crashing(session: Any, now: Any, observations: Any) -> Any:
        if len(seen) >= 4:
            raise RuntimeError("the machine lost power")
        seen.extend(o.reference.rsplit(":", 1)[1] for o in observations)
        return real_observe(session, now, observations)

    monkeypatch.setattr(imports.identity, "observe", crashing)
    with pytest.raises(RuntimeError):
        run_import(db, clock, text, preset=None, chunk_size=2)
    with db.transaction() as session:
        run = session.scalars(select(CustomerImport)).one()
        assert (run.status, run.rows_done, run.rows_imported) == ("running", 4, 4)

    def counting(session: Any, now: Any, observations: Any) -> Any:
        seen.extend(o.reference.rsplit(":", 1)[1] for o in observations)
        return real_observe(session, now, observations)

    monkeypatch.setattr(imports.identity, "observe", counting)
    progress: list[tuple[int, int]] = []
    stream = io.BytesIO(text.encode())
    report = imports.import_customers(
        db,
        clock,
        SYSTEM_ACTOR,
        stream,
        "crm.csv",
        plan(preset=None, chunk_size=2),
        lambda done, total: progress.append((done, total)),
    )
    assert report.resumed_from == 4
    assert (report.rows_done, report.rows_imported, report.status) == (7, 7, "done")
    assert seen == ["2", "3", "4", "5", "6", "7", "8"]  # each data line once (header = 1)
    assert progress[0] == (4, 7)
    assert progress[-1] == (7, 7)


def test_importing_a_finished_file_again_does_nothing(db: Database, clock: ManualClock) -> None:
    first = run_import(db, clock, POS_FILE)
    again = run_import(db, clock, POS_FILE)
    assert again.already_done
    assert again.id == first.id
    other_source = run_import(db, clock, POS_FILE, source="pos_paris")
    assert not other_source.already_done


def test_a_json_file_with_an_explicit_mapping(db: Database, clock: ManualClock) -> None:
    rows = [
        {"id": "w-1", "mail": "amel@example.com", "zip": "33000", "lang": "EN"},
        {"id": "w-2", "mail": "yanis@example.com", "zip": 75001, "lang": "fr"},
    ]
    report = run_import(
        db,
        clock,
        json.dumps(rows),
        "web.json",
        fmt="json",
        preset=None,
        mapping=imports.parse_mapping(["id=user_id", "mail=email", "zip=postcode", "lang=locale"]),
    )
    assert report.rows_imported == 2
    amel = profile_of(db, "user_id", "w-1")
    assert amel == profile_of(db, "email", "amel@example.com")
    with db.transaction() as session:
        assert identity.traits_of(session, amel)["locale"].value == "en"


def test_a_bad_mapping_or_plan_is_refused_before_reading_rows(
    db: Database, clock: ManualClock
) -> None:
    with pytest.raises(InvalidInput) as caught:
        imports.parse_mapping(["Courriel=mail", "nothing"])
    assert [e.parameter for e in caught.value.errors] == ["map[0]", "map[1]"]
    with pytest.raises(InvalidInput, match="has no column 'Courriel'"):
        run_import(db, clock, POS_FILE, mapping={"Courriel": "email"})
    with pytest.raises(InvalidInput, match="No column of the file maps to an identifier"):
        run_import(db, clock, "Nom,Ville\nMartin,Lyon\n", preset=None)
    with pytest.raises(InvalidInput) as plan_error:
        run_import(db, clock, POS_FILE, source="pos lyon!", preset="nope")
    assert [e.parameter for e in plan_error.value.errors] == ["source", "preset"]
    latin1 = io.BytesIO("Email\nléa@example.com\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="UTF-8"):
        imports.import_customers(db, clock, CLI_ACTOR, latin1, "x.csv", plan(preset=None))


# ------------------------------------------------------------------ API and CLI


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.anyio
async def test_a_file_is_imported_through_a_multipart_upload(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    writer = builders.api_key(db, clock, "customers:write")
    answer = await client.post(
        "/v1/customer-imports",
        files={"file": ("pos.csv", BAD_FILE.encode(), "text/csv")},
        data={"source": "pos_lyon", "preset": "pos_loyalty", "keep_good_rows": "true"},
        headers=auth(writer),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["rows_imported"], body["rows_rejected"]) == (1, 5)
    assert body["errors"][0] == {
        "row": 3,
        "column": "Email",
        "message": "is not a usable email address",
    }
    reader = builders.api_key(db, clock, "customers:read")
    state = await client.get(f"/v1/customer-imports/{body['id']}", headers=auth(reader))
    assert state.json()["status"] == "done"
    report = await client.get(f"/v1/customer-imports/{body['id']}/errors", headers=auth(reader))
    assert report.headers["content-type"].startswith("text/csv")
    assert report.text.splitlines()[0] == "row,column,problem"


@pytest.mark.anyio
async def test_an_upload_with_bad_rows_is_a_422_naming_them(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    writer = builders.api_key(db, clock, "customers:write")
    answer = await client.post(
        "/v1/customer-imports",
        files={"file": ("pos.csv", BAD_FILE.encode(), "text/csv")},
        data={"source": "pos_lyon", "map": ["Email=email", "Mobile=phone"]},
        headers=auth(writer),
    )
    assert answer.status_code == 422
    assert answer.json()["row_errors"][0] == {
        "row": 3,
        "column": "Email",
        "message": "is not a usable email address",
    }
    reader = builders.api_key(db, clock, "customers:read")
    forbidden = await client.post(
        "/v1/customer-imports",
        files={"file": ("pos.csv", POS_FILE.encode(), "text/csv")},
        data={"source": "pos"},
        headers=auth(reader),
    )
    assert forbidden.status_code == 403


def test_the_command_line_imports_with_a_progress_bar_and_an_error_report(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_cli import parcours_in_process

    parcours = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    source = tmp_path / "pos.csv"
    source.write_text(BAD_FILE, encoding="utf-8")
    report = tmp_path / "errors.csv"
    rejected = parcours(
        "customers",
        "import",
        str(source),
        "--source",
        "pos_lyon",
        "--preset",
        "pos_loyalty",
        "--errors",
        str(report),
    )
    assert rejected.returncode == 1
    assert "nothing was imported" in rejected.stderr
    assert report.read_text().startswith("row,column,problem\n3,Email,")
    kept = parcours(
        "customers",
        "import",
        str(source),
        "--source",
        "pos_lyon",
        "--map",
        "N° carte=loyalty_card",
        "--map",
        "Email=email",
        "--keep-good-rows",
    )
    assert kept.returncode == 1
    assert "Imported 4 of 6 rows" in kept.stdout
    good = tmp_path / "good.csv"
    good.write_text(POS_FILE, encoding="utf-8")
    done = parcours("customers", "import", str(good), "--source", "pos", "--preset", "pos_loyalty")
    assert done.returncode == 0, done.stderr
    assert "Imported 3 of 3 rows" in done.stdout
    again = parcours("customers", "import", str(good), "--source", "pos", "--preset", "pos_loyalty")
    assert "already imported" in again.stdout
