"""`parcours catalog import|export` as an operator runs them."""

from pathlib import Path

import pytest

from parcours.core.db import Database
from tests.test_cli import parcours_in_process


def test_import_reports_bad_rows_and_export_writes_the_catalogue(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parcours = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    source = tmp_path / "catalogue.csv"
    source.write_text(
        "product_code,brand,category,name_fr,sku,gtin,price_web\n"
        "A,nobody,mode,Article A,A-1,3017620422004,12.5\n",
        encoding="utf-8",
    )
    result = parcours("catalog", "import", str(source))
    assert result.returncode == 1
    assert "unknown brand 'nobody'" in result.stdout
    assert "wrong check digit" in result.stdout
    assert "nothing was imported" in result.stderr
    target = tmp_path / "out.json"
    exported = parcours("catalog", "export", str(target))
    assert exported.returncode == 0, exported.stderr
    assert target.read_text() == "[]"
    unknown = parcours("catalog", "export", str(tmp_path / "out.xml"))
    assert unknown.returncode == 1
    assert "--format csv or json" in unknown.stderr
