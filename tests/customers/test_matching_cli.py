"""`parcours customers match` and `match-profiles` as an operator runs them."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from parcours.cli import app
from tests.customers.test_matching import CRM, LOYALTY, TRUE_DUPLICATES, TRUE_LINKS, WEB


def parcours(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARCOURS_")}
    environment.update({"PARCOURS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "parcours", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
    )


def pairs_in(path: Path) -> set[tuple[str, str]]:
    with path.open(encoding="utf-8") as stream:
        return {(row["id_a"], row["id_b"]) for row in csv.DictReader(stream)}


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "loyalty.csv").write_text(LOYALTY, encoding="utf-8")
    (tmp_path / "web.csv").write_text(WEB.replace("account,", "carte,"), encoding="utf-8")
    (tmp_path / "crm.csv").write_text(CRM, encoding="utf-8")
    return tmp_path


def test_two_files_are_linked_from_the_command_line(files: Path) -> None:
    result = parcours(
        files, "customers", "match", "loyalty.csv", "web.csv", "--id-column", "carte",
        "--out", "pairs.csv", "--threshold", "0.9",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pairs_in(files / "pairs.csv") == TRUE_LINKS
    assert "first_name ← Prénom" in result.stdout
    assert "4 pairs at or above 0.9 written to pairs.csv" in result.stdout


def test_one_file_is_deduplicated_with_details_and_a_blocking_rule(files: Path) -> None:
    result = parcours(
        files, "customers", "match", "crm.csv", "--id-column", "id", "--out", "dups.csv",
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


def test_an_unreadable_file_is_refused(files: Path) -> None:
    (files / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00")
    result = parcours(
        files, "customers", "match", "photo.csv", "--id-column", "id", "--out", "o.csv"
    )
    assert result.returncode == 2
    assert "photo.csv: not a text file" in result.stderr


def test_profiles_are_matched_from_the_command_line(files: Path) -> None:
    assert parcours(files, "init").returncode == 0
    result = parcours(files, "customers", "match-profiles", "--lower", "0.6", "--upper", "0.95")
    assert result.returncode == 0, result.stderr
    assert "0 profiles compared" in result.stdout
    refused = parcours(files, "customers", "match-profiles", "--source-a", "web")
    assert refused.returncode == 2
    assert "give both sources" in refused.stderr
