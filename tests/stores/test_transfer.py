"""Importing a store network from a file: every bad row reported, nothing half-applied."""

import io
import json
from pathlib import Path

import pytest

from parcours import stores
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.geo import GeoPoint
from parcours.core.imports import ImportRejected, read_rows
from parcours.stores.transfer import import_stores
from tests import builders
from tests.test_cli import parcours_in_process

HEADER = "code,name,kind,address,postcode,city,lat,lon,timezone,services,mon,tue,sat\n"
GOOD = [
    "LYO-9,Lavande Lyon Part-Dieu,store,17 rue du Dr Bouchut,69003,Lyon,45.7606,4.8590,"
    'Europe/Paris,click_and_collect|drive,"10:00-19:00","09:30-12:30, 14:00-19:00",09:30-19:30\n',
    "WH-9,Entrepôt Corbas,warehouse,ZI Corbas,69960,Corbas,45.6680,4.9020,Europe/Paris,,,,\n",
]
BAD = [
    "BAD-1,Bad lat,store,1 rue X,69001,Lyon,north,4.8,Europe/Paris,,,,\n",
    'BAD-2,Overlap,store,1 rue Y,69001,Lyon,45.7,4.8,Europe/Paris,,"09:00-13:00, 12:00-18:00",,\n',
    "LYO-9,Twice,store,1 rue Z,69001,Lyon,45.7,4.8,Europe/Paris,teleport,,,\n",
]


def _import(db: Database, clock: ManualClock, text: str, fmt: str = "csv", keep: bool = False):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return import_stores(
            session, clock.now(), CLI_ACTOR, read_rows(io.StringIO(text), fmt), fmt, keep
        )


def test_a_clean_file_creates_the_network_and_the_locator_sees_it(
    db: Database, clock: ManualClock
) -> None:
    report = _import(db, clock, HEADER + "".join(GOOD))
    assert (report.rows, report.created, report.errors) == (2, 2, [])
    with db.transaction() as session:
        store = stores.get_store_by_code(session, "LYO-9")
        found = stores.nearest_store_rows(session, GeoPoint(45.76, 4.86), 1)
    assert store.opening_hours["tue"] == [["09:30", "12:30"], ["14:00", "19:00"]]
    assert store.services == ["click_and_collect", "drive"]
    assert [hit.code for _, hit in found] == ["LYO-9"]  # warehouses are not in the locator


def test_every_bad_row_is_reported_and_nothing_is_created(db: Database, clock: ManualClock) -> None:
    with pytest.raises(ImportRejected) as caught:
        _import(db, clock, HEADER + "".join(GOOD + BAD))
    problems = {(e.row, e.column) for e in caught.value.row_errors}
    assert (4, "lat") in problems
    assert (5, "opening_hours") in problems
    assert (6, "code") in problems
    assert (6, "services") in problems
    assert caught.value.status == 422
    with db.transaction() as session:
        assert stores.count_stores(session) == 0


def test_keep_good_rows_creates_the_valid_stores(db: Database, clock: ManualClock) -> None:
    builders.add_store(db, clock, "WH-9")  # already exists: refused, the rest goes in
    report = _import(db, clock, HEADER + "".join(GOOD + BAD), keep=True)
    assert report.created == 1
    assert {e.row for e in report.errors} == {3, 4, 5, 6}


def test_a_json_network_file_is_accepted(db: Database, clock: ManualClock) -> None:
    rows = [builders.store_row("JSON-1"), builders.store_row("JSON-2", lat=48.85, lon=2.35)]
    assert _import(db, clock, json.dumps(rows), "json").created == 2


def test_the_command_line_imports_lists_and_locates(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parcours = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    network = tmp_path / "network.csv"
    network.write_text(HEADER + "".join(GOOD), encoding="utf-8")
    imported = parcours("stores", "import", str(network))
    assert imported.returncode == 0, imported.stderr
    assert "2 of 2 stores created" in imported.stdout
    assert "LYO-9" in parcours("stores", "list").stdout
    nearest = parcours("stores", "nearest", "--postcode", "69003", "--limit", "1")
    assert nearest.returncode == 0, nearest.stderr
    assert "LYO-9" in nearest.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + BAD[0], encoding="utf-8")
    refused = parcours("stores", "import", str(bad))
    assert refused.returncode == 1
    assert "lat" in refused.stderr
    assert "nothing was imported" in refused.stderr
