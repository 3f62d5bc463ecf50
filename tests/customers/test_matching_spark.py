"""The same matching on Spark (local mode): slow to start, so one session for the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from parcours.customers import matching_engine
from parcours.customers.matching_engine import EngineOptions, score_pairs
from parcours.customers.matching_files import load_input
from tests.customers.test_matching import LOYALTY, TRUE_LINKS, WEB

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def spark() -> Any:
    """The process's one Spark session (about 5 s to start), shared by every test."""
    pytest.importorskip("pyspark")
    return matching_engine.spark_session()


def test_spark_finds_the_same_pairs_with_the_same_probabilities_as_duckdb(
    spark: Any, tmp_path: Path
) -> None:
    (tmp_path / "l.csv").write_text(LOYALTY, encoding="utf-8")
    (tmp_path / "w.csv").write_text(WEB, encoding="utf-8")
    loyalty = load_input(tmp_path / "l.csv", "carte", ()).table
    web = load_input(tmp_path / "w.csv", "account", ()).table
    on_spark = score_pairs(loyalty, web, EngineOptions(threshold=0.9, engine="spark"))
    on_duckdb = score_pairs(loyalty, web, EngineOptions(threshold=0.9))
    assert set(zip(on_spark.pairs["id_a"], on_spark.pairs["id_b"], strict=True)) == TRUE_LINKS
    pd.testing.assert_frame_equal(on_spark.pairs, on_duckdb.pairs, atol=1e-9)
