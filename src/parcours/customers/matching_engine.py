"""Probabilistic record linkage with Splink: the one module that knows Splink and Spark.

A model of the Fellegi-Sunter kind scores every candidate pair that a blocking rule lets
through: each field adds the weight of its agreement level (exact, close, different,
missing). The weights are learnt from the data when there is enough of it — u by random
sampling of pairs with a fixed seed, m by expectation-maximisation on a few blocking
rules — and taken from prior values otherwise (a hand-made file of twenty rows teaches
nothing). The same SQL runs on DuckDB, embedded, or on Spark for large files.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import ColumnExpression, DuckDBAPI, Linker, SettingsCreator, block_on

from parcours.core.errors import InvalidInput
from parcours.core.spark import spark_session as spark_session
from parcours.customers.matching_records import ENGINES, FIELDS, TRAINING, Rule

# Splink reports each step at INFO: the summary of a run is ours to print.
logging.getLogger("splink").setLevel(logging.WARNING)

# Below this many records in all inputs together, "auto" uses the priors: EM needs
# enough true and false pairs in its training blocks to tell them apart.
MIN_TRAINING_RECORDS = 1000

# Candidate pairs must agree exactly on every field of at least one rule. Each rule
# pairs two personal fields so that blocks stay small in a large customer file.
DEFAULT_BLOCKING: tuple[Rule, ...] = (
    ("first_name", "last_name"),
    ("last_name", "birth_date"),
    ("first_name", "birth_date"),
    ("postcode", "birth_date"),
    ("postcode", "last_name"),
    ("postcode", "first_name"),
    ("city", "last_name"),
    ("city", "first_name"),
    ("city", "birth_date"),
    ("address", "postcode"),
    ("address", "city"),
    ("email",),
    ("phone",),
)
# Rules for EM: each session learns m for the fields outside its rule.
_TRAINING_RULES: tuple[Rule, ...] = (
    ("first_name", "last_name"),
    ("birth_date",),
    ("postcode",),
    ("city",),
    ("email",),
    ("phone",),
)
# Pairs these rules find are taken as near-certain matches when estimating how likely
# two random records are the same person.
_DETERMINISTIC_RULES: tuple[Rule, ...] = (
    ("first_name", "last_name", "birth_date"),
    ("email",),
    ("phone",),
)
_DETERMINISTIC_RECALL = 0.7
# Used when nothing is learnt: about one chance in 10,000 that two records are one person.
_PRIOR_MATCH_PROBABILITY = 1e-4


@dataclass(frozen=True)
class EngineOptions:
    """How to score pairs. `threshold` is the lowest match probability returned."""

    threshold: float = 0.9
    blocking: tuple[Rule, ...] | None = None  # None: DEFAULT_BLOCKING on fields present
    engine: str = "duckdb"
    training: str = "auto"
    seed: int = 42
    u_sample_pairs: float = 2e6


@dataclass(frozen=True)
class Scored:
    """The pairs at or above the threshold, best first.

    `pairs` has `id_a`, `id_b`, `probability`, `match_weight` and, per compared field,
    its agreement (`exact`, `close`, `different` or `missing`). In a link `id_a` comes
    from the first input; in a de-duplication `id_a < id_b`.
    """

    pairs: pd.DataFrame
    fields: tuple[str, ...]
    blocking: tuple[Rule, ...]
    trained: bool
    records: int
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------ comparisons
# Per field: its levels after the null level, best first, each with prior (m, u).
# m: how often a true match lands on the level; u: how often two different people do.
# The priors are cautious about places: people of one household share the address,
# postcode and city, so those agree far more often between different people than
# independent fields would, while a different first name or date of birth weighs a lot.


def _levels(name: str, fields: Sequence[str]) -> list[tuple[Any, float, float]]:
    other_name = {"first_name": "last_name", "last_name": "first_name"}.get(name)
    if name in ("first_name", "last_name"):
        levels: list[tuple[Any, float, float]] = [(cll.ExactMatchLevel(name), 0.80, 0.004)]
        if other_name is not None and other_name in fields:  # first and last names swapped
            levels.append((cll.ColumnsReversedLevel(name, other_name), 0.02, 0.0005))
        levels += [
            (cll.JaroWinklerLevel(name, 0.92), 0.10, 0.002),
            (cll.JaroWinklerLevel(name, 0.8), 0.06, 0.02),
        ]
        return levels
    if name == "birth_date":
        return [
            (cll.ExactMatchLevel(name), 0.87, 0.0003),
            (cll.LevenshteinLevel(name, 1), 0.10, 0.004),
            (
                cll.AbsoluteDateDifferenceLevel(
                    name, input_is_string=True, threshold=1, metric="year"
                ),
                0.02,
                0.02,
            ),
        ]
    if name == "address":
        return [
            (cll.ExactMatchLevel(name), 0.60, 0.002),
            (cll.LevenshteinLevel(name, 3), 0.15, 0.002),
            (cll.JaroWinklerLevel(name, 0.8), 0.05, 0.01),
        ]
    if name == "postcode":
        return [
            (cll.ExactMatchLevel(name), 0.75, 0.02),
            (cll.LevenshteinLevel(name, 1), 0.07, 0.05),
        ]
    if name == "city":
        return [
            (cll.ExactMatchLevel(name), 0.80, 0.05),
            (cll.JaroWinklerLevel(name, 0.9), 0.07, 0.01),
        ]
    if name == "phone":
        return [
            (cll.ExactMatchLevel(name), 0.70, 1e-5),
            (cll.LevenshteinLevel(name, 1), 0.05, 1e-4),
        ]
    if name == "email":
        username = cll.ExactMatchLevel(ColumnExpression(name).regex_extract("^[^@]+"))
        return [
            (cll.ExactMatchLevel(name), 0.70, 1e-5),
            (username, 0.05, 1e-4),
            (cll.JaroWinklerLevel(name, 0.88), 0.05, 1e-3),
        ]
    raise ValueError(f"no comparison for {name}")


def _comparison(name: str, fields: Sequence[str], term_frequencies: bool) -> Any:
    levels = _levels(name, fields)
    configured: list[Any] = [cll.NullLevel(name)]
    for index, (level, m, u) in enumerate(levels):
        options: dict[str, Any] = {"m_probability": m, "u_probability": u}
        # Agreeing on a rare name says more than agreeing on a common one.
        if index == 0 and term_frequencies and name in ("first_name", "last_name", "city"):
            options["tf_adjustment_column"] = name
        configured.append(level.configure(**options))
    m_else = 1 - sum(m for _, m, _ in levels)
    u_else = 1 - sum(u for _, _, u in levels)
    configured.append(cll.ElseLevel().configure(m_probability=m_else, u_probability=u_else))
    return cl.CustomComparison(configured, output_column_name=name)


def _top_level(name: str, fields: Sequence[str]) -> int:
    """The comparison vector value of a field's exact level (the else level is 0)."""
    return len(_levels(name, fields))


# ------------------------------------------------------------------ blocking


def present_rules(rules: Sequence[Rule], fields: Sequence[str]) -> tuple[Rule, ...]:
    return tuple(rule for rule in rules if all(f in fields for f in rule))


def check_blocking(rules: Sequence[Rule], fields: Sequence[str]) -> None:
    """Refuse a blocking rule naming an unknown field or one absent from the inputs."""
    for rule in rules:
        if not rule:
            raise InvalidInput("A blocking rule needs at least one field.")
        for name in rule:
            if name not in FIELDS:
                raise InvalidInput(
                    f"Unknown field {name!r} in blocking rule {','.join(rule)}: "
                    f"use {', '.join(FIELDS)}."
                )
            if name not in fields:
                raise InvalidInput(
                    f"Blocking rule {','.join(rule)} uses {name}, which the input "
                    f"does not have (fields compared: {', '.join(fields)})."
                )


def _training_rules(fields: Sequence[str]) -> list[Rule]:
    """The fewest EM rules that, together, teach the m of every field."""
    chosen: list[Rule] = []
    untaught = set(fields)
    for rule in present_rules(_TRAINING_RULES, fields):
        if untaught - set(rule):
            chosen.append(rule)
            untaught &= set(rule)
        if not untaught:
            break
    return chosen


# ------------------------------------------------------------------ engines


def _database_api(engine: str) -> Any:
    if engine == "duckdb":
        return DuckDBAPI()
    if engine == "spark":
        from splink.backends.spark import SparkAPI

        return SparkAPI(  # type: ignore[no-untyped-call]
            spark_session=spark_session(),
            break_lineage_method="persist",
            num_partitions_on_repartition=2,
        )
    raise InvalidInput(f"Unknown engine {engine!r}: use {' or '.join(ENGINES)}.")


def _release(api: Any, engine: str) -> None:
    """Drop what the run left in the engine: its tables, and on Spark the cached
    (persisted) steps, which would otherwise stay in the shared session's memory."""
    api.delete_tables_created_by_splink_from_db()
    if engine == "duckdb":
        api.duckdb_con.close()
    else:
        api.spark.catalog.clearCache()


# ------------------------------------------------------------------ scoring


def score_pairs(left: pd.DataFrame, right: pd.DataFrame | None, options: EngineOptions) -> Scored:
    """Score the candidate pairs of `left` against `right`, or within `left` when
    `right` is None; both are `matching_records.standardise` tables.

    Deterministic for a seed on one engine. Fields only one input has are not compared.
    """
    started = time.perf_counter()
    _check_options(options)
    tables = [left] if right is None else [left, right]
    records = sum(len(t) for t in tables)
    if min(len(t) for t in tables) == 0 or (right is None and len(left) < 2):
        # Nobody to compare with: no pairs, whatever the fields.
        return Scored(_empty_pairs(()), (), (), False, records, time.perf_counter() - started)
    fields = tuple(f for f in FIELDS if all(f in t.columns for t in tables))
    if not fields:
        raise InvalidInput(
            "The inputs have no field in common to compare: name the columns with --map "
            f"COLUMN=FIELD (fields: {', '.join(FIELDS)})."
        )
    blocking = _blocking(options, fields)
    trained = options.training == "em" or (
        options.training == "auto" and records >= MIN_TRAINING_RECORDS
    )
    api = _database_api(options.engine)
    try:
        predictions, notes = _run_model(api, tables, fields, blocking, trained, options)
    finally:
        _release(api, options.engine)
    pairs = _pairs(predictions, fields, right is None)
    return Scored(pairs, fields, blocking, trained, records, time.perf_counter() - started, notes)


def _check_options(options: EngineOptions) -> None:
    if options.engine not in ENGINES:
        raise InvalidInput(f"Unknown engine {options.engine!r}: use {' or '.join(ENGINES)}.")
    if options.training not in TRAINING:
        raise InvalidInput(f"Unknown training {options.training!r}: use {', '.join(TRAINING)}.")
    if not 0 < options.threshold <= 1:
        raise InvalidInput(f"The threshold must be above 0 and at most 1, not {options.threshold}.")


def _blocking(options: EngineOptions, fields: Sequence[str]) -> tuple[Rule, ...]:
    if options.blocking is None:
        return present_rules(DEFAULT_BLOCKING, fields) or tuple((f,) for f in fields)
    check_blocking(options.blocking, fields)
    return tuple(options.blocking)


def _run_model(
    api: Any,
    tables: list[pd.DataFrame],
    fields: tuple[str, ...],
    blocking: tuple[Rule, ...],
    trained: bool,
    options: EngineOptions,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    run = uuid.uuid4().hex[:12]
    names = ["a", "b"][: len(tables)]
    registered = [
        api.register(_for_engine(t, fields), dataset_display_name=n, table_name=f"pm_{n}_{run}")
        for t, n in zip(tables, names, strict=True)
    ]
    settings = SettingsCreator(
        link_type="dedupe_only" if len(tables) == 1 else "link_only",
        comparisons=[_comparison(f, fields, trained) for f in fields],
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in blocking],
        probability_two_random_records_match=_PRIOR_MATCH_PROBABILITY,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(registered if len(tables) > 1 else registered[0], settings, log_level=None)
    notes: tuple[str, ...] = ()
    if trained:
        notes = _train(linker, fields, options)
    result = linker.inference.predict(threshold_match_probability=options.threshold)
    frame: pd.DataFrame = result.as_pandas_dataframe()  # type: ignore[no-untyped-call]
    return frame, notes


def _for_engine(table: pd.DataFrame, fields: Sequence[str]) -> pd.DataFrame:
    """Plain object columns with None for missing values: what every engine reads alike."""
    subset = table[["unique_id", *fields]].astype(object)
    return subset.where(subset.notna(), None)


def _train(linker: Any, fields: Sequence[str], options: EngineOptions) -> tuple[str, ...]:
    notes = []
    deterministic = present_rules(_DETERMINISTIC_RULES, fields)
    if deterministic:
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*rule) for rule in deterministic], recall=_DETERMINISTIC_RECALL
        )
    linker.training.estimate_u_using_random_sampling(
        max_pairs=options.u_sample_pairs, seed=options.seed
    )
    for rule in _training_rules(fields):
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
        notes.append(f"EM on {','.join(rule)}")
    return tuple(notes)


def _empty_pairs(fields: Sequence[str]) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "id_a": pd.Series(dtype="string"),
        "id_b": pd.Series(dtype="string"),
        "probability": pd.Series(dtype="float64"),
        "match_weight": pd.Series(dtype="float64"),
    }
    columns.update({f: pd.Series(dtype="string") for f in fields})
    return pd.DataFrame(columns)


def _pairs(predictions: pd.DataFrame, fields: Sequence[str], dedupe: bool) -> pd.DataFrame:
    """Splink's predictions as pairs: ids oriented, agreement labels, best first."""
    if predictions.empty:
        return _empty_pairs(fields)
    left = predictions["unique_id_l"].astype("string")
    right = predictions["unique_id_r"].astype("string")
    if dedupe:
        swap = (left > right).to_numpy()
    else:
        swap = (predictions["source_dataset_l"] != "a").to_numpy()
    out = pd.DataFrame(
        {
            "id_a": np.where(swap, right, left),
            "id_b": np.where(swap, left, right),
            "probability": predictions["match_probability"].astype("float64").to_numpy(),
            "match_weight": predictions["match_weight"].astype("float64").to_numpy(),
        }
    )
    for name in fields:
        gamma = predictions[f"gamma_{name}"].astype("int64").to_numpy()
        labels = np.select(
            [gamma == _top_level(name, fields), gamma > 0, gamma == 0],
            ["exact", "close", "different"],
            default="missing",
        )
        out[name] = pd.Series(labels, dtype="string")
    out = out.astype({"id_a": "string", "id_b": "string"})
    # Several blocking rules can find one pair; Splink scores it once, but keep it safe.
    out = out.drop_duplicates(["id_a", "id_b"])
    return out.sort_values(
        ["probability", "id_a", "id_b"], ascending=[False, True, True], ignore_index=True
    )
