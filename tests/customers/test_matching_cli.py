"""`parcours customers match` and `match-profiles` as an operator runs them."""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parcours.cli import app
from parcours.core.db import Database
from tests.customers.test_matching import CRM, LOYALTY, TRUE_DUPLICATES, TRUE_LINKS, WEB
from tests.test_cli import parcours_in_process


def pairs_in(path: Path) -> set[tuple[str, str]]:
    with path.open(encoding="utf-8") as stream:
        return {(row["id_a"], row["id_b"]) for row in csv.DictReader(stream)}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "loyalty.csv").write_text(LOYALTY, encoding="utf-8")
    (tmp_path / "web.csv").write_text(WEB.replace("account,", "carte,"), encoding="utf-8")
    (tmp_path / "crm.csv").write_text(CRM, encoding="utf-8")
    return tmp_path


Parcours = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def parcours(files: Path, sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> Parcours:
    """`parcours` run in-process in the folder of the files, on a migrated database."""
    return parcours_in_process(sqlite_db, files, monkeypatch)


def test_two_files_are_linked_from_the_command_line(files: Path, parcours: Parcours) -> None:
    result = parcours(
        "customers", "match", "loyalty.csv", "web.csv", "--id-column", "carte",
        "--out", "pairs.csv", "--threshold", "0.9",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pairs_in(files / "pairs.csv") == TRUE_LINKS
    assert "first_name ← Prénom" in result.stdout
    assert "4 pairs at or above 0.9 written to pairs.csv" in result.stdout


def test_one_file_is_deduplicated_with_details_and_a_blocking_rule(
    files: Path, parcours: Parcours
) -> None:
    result = parcours(
        "customers", "match", "crm.csv", "--id-column", "id", "--out", "dups.csv",
        "--blocking", "first_name,birth_date", "--blocking", "email", "--details",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pairs_in(files / "dups.csv") == TRUE_DUPLICATES
    with (files / "dups.csv").open(encoding="utf-8") as stream:
        header = next(csv.reader(stream))
    assert header[:3] == ["id_a", "id_b", "probability"]
    assert "birth_date" in header
    assert "blocking first_name,birth_date | email" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["crm.csv", "--id-column", "client"], "crm.csv: no column 'client'"),
        (["crm.csv", "--id-column", "id", "--map", "prenom=first_name"], "'prenom'"),
        (["nowhere.csv", "--id-column", "id"], "nowhere.csv: no such file"),
        (["crm.csv", "--id-column", "id", "--blocking", "shoe_size"], "--blocking 'shoe_size'"),
        (["crm.csv", "--id-column", "id", "--engine", "oracle"], "Unknown engine 'oracle'"),
        (["crm.csv", "--id-column", "id", "--threshold", "1.5"], "threshold must be above 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    files: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(files)
    result = CliRunner().invoke(app, ["customers", "match", *args, "--out", "out.csv"])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (files / "out.csv").exists()


def test_an_unreadable_file_is_refused(files: Path, parcours: Parcours) -> None:
    (files / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00")
    result = parcours("customers", "match", "photo.csv", "--id-column", "id", "--out", "o.csv")
    assert result.returncode == 2
    assert "photo.csv: not a text file" in result.stderr


def test_profiles_are_matched_from_the_command_line(parcours: Parcours) -> None:
    result = parcours("customers", "match-profiles", "--lower", "0.6", "--upper", "0.95")
    assert result.returncode == 0, result.stderr
    assert "0 profiles compared" in result.stdout
    refused = parcours("customers", "match-profiles", "--source-a", "web")
    assert refused.returncode == 2
    assert "give both sources" in refused.stderr
