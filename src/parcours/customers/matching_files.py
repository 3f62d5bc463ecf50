"""Matching people's own files: read one or two CSV files, map their columns to the
fields the engine compares, score the pairs and write `id_a,id_b,probability`.

Every problem with the input is an `InvalidInput` whose message fits on one line and
names the file and the column, so the command line can print it as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]

from parcours.core.errors import InvalidInput
from parcours.customers.matching_engine import EngineOptions, Scored, score_pairs
from parcours.customers.matching_records import FIELDS, detect_columns, standardise

_SAMPLE_BYTES = 65536
_ENCODINGS = ("utf-8-sig", "cp1252")


@dataclass(frozen=True)
class MatchInput:
    """One file as read: its name, its fields and the columns each came from."""

    name: str
    records: int
    mapping: dict[str, list[str]]
    table: pd.DataFrame


@dataclass(frozen=True)
class FileMatch:
    """What a file match did: the inputs, the engine's answer and where it was written."""

    inputs: list[MatchInput]
    scored: Scored
    out: Path


def read_table(path: Path) -> pd.DataFrame:
    """A CSV file as text columns (delimiter `,` `;` tab or `|`, UTF-8 or Windows-1252)."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror}).") from None
    if b"\x00" in raw[:_SAMPLE_BYTES]:
        raise InvalidInput(f"{path}: not a text file (CSV expected).")
    text = _decode(path, raw)
    try:
        delimiter = csv.Sniffer().sniff(text[:_SAMPLE_BYTES], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_values=[""]
        )
    except pd.errors.EmptyDataError:
        raise InvalidInput(f"{path}: the file is empty (a header line is expected).") from None
    except pd.errors.ParserError as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise InvalidInput(f"{path}: not a readable CSV file ({reason}).") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _decode(path: Path, raw: bytes) -> str:
    for encoding in _ENCODINGS:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(f"{path}: not UTF-8 nor Windows-1252 text.")


def parse_mapping(items: Sequence[str]) -> list[tuple[str, str]]:
    """`COLUMN=FIELD` options as (column, field) pairs, in the order given."""
    pairs = []
    for item in items:
        column, sep, field = item.rpartition("=")
        column, field = column.strip(), field.strip()
        if not sep or not column or not field:
            raise InvalidInput(f"--map {item!r}: write COLUMN=FIELD, e.g. --map prenom=first_name.")
        if field not in FIELDS:
            raise InvalidInput(f"--map {item!r}: unknown field {field!r}; use {', '.join(FIELDS)}.")
        pairs.append((column, field))
    return pairs


def parse_blocking(items: Sequence[str]) -> tuple[tuple[str, ...], ...] | None:
    """`--blocking first_name,last_name` options as rules; None when none given."""
    if not items:
        return None
    rules = []
    for item in items:
        rule = tuple(name.strip() for name in item.split(",") if name.strip())
        unknown = [name for name in rule if name not in FIELDS]
        if not rule or unknown:
            raise InvalidInput(
                f"--blocking {item!r}: name fields separated by commas, among {', '.join(FIELDS)}."
            )
        rules.append(rule)
    return tuple(rules)


def column_mapping(
    columns: list[str], explicit: Sequence[tuple[str, str]], id_column: str
) -> dict[str, list[str]]:
    """Field -> the columns that fill it: the `--map` ones first, then recognised names.

    Several columns mapped to one field are joined with a space (`street_number` and
    `address_1` make the address). A field named by `--map` is not guessed.
    """
    mapping: dict[str, list[str]] = {}
    for column, field in explicit:
        if column in columns:
            mapping.setdefault(field, []).append(column)
    mapped_fields = {field for _, field in explicit}
    used = {column for cols in mapping.values() for column in cols} | {id_column}
    for field, found in detect_columns([c for c in columns if c not in used]).items():
        if field not in mapped_fields:
            mapping[field] = found
    return {field: mapping[field] for field in FIELDS if field in mapping}


def load_input(path: Path, id_column: str, explicit: Sequence[tuple[str, str]]) -> MatchInput:
    """Read, map and clean one file."""
    return prepare_table(read_table(path), str(path), path.name, id_column, explicit)


def prepare_table(
    frame: pd.DataFrame,
    where: str,
    name: str,
    id_column: str,
    explicit: Sequence[tuple[str, str]],
) -> MatchInput:
    """Map and clean a table of text columns; `where` names it in error messages."""
    columns = [str(c) for c in frame.columns]
    if id_column not in columns:
        raise InvalidInput(
            f"{where}: no column {id_column!r} (given by --id-column); "
            f"its columns are {', '.join(columns)}."
        )
    ids = frame[id_column]
    if ids.isna().any():
        row = int(ids.isna().to_numpy().argmax()) + 2
        raise InvalidInput(f"{where}: line {row} has no value in the id column {id_column!r}.")
    duplicated = ids[ids.duplicated()]
    if not duplicated.empty:
        raise InvalidInput(
            f"{where}: the id column {id_column!r} repeats {duplicated.iloc[0]!r}; "
            "each row needs its own id."
        )
    mapping = column_mapping(columns, explicit, id_column)
    raw = pd.DataFrame(
        {field: _joined(frame, cols) for field, cols in mapping.items()}, index=frame.index
    )
    return MatchInput(name, len(frame), mapping, standardise(raw, ids))


def _joined(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One column as it is, or several joined with spaces (empty parts skipped)."""
    if len(columns) == 1:
        return frame[columns[0]]
    parts = frame[columns].fillna("").astype(str)
    joined = parts.iloc[:, 0].str.cat([parts[c] for c in columns[1:]], sep=" ")
    return joined.str.split().str.join(" ")


def match_files(
    file_a: Path,
    file_b: Path | None,
    id_column: str,
    out: Path,
    options: EngineOptions,
    explicit: Sequence[tuple[str, str]] = (),
    id_column_b: str | None = None,
    details: bool = False,
) -> FileMatch:
    """Link `file_a` with `file_b`, or de-duplicate `file_a` alone; write the pairs at or
    above the threshold to `out` (`id_a,id_b,probability`, best first)."""
    inputs = [load_input(file_a, id_column, explicit)]
    if file_b is not None:
        inputs.append(load_input(file_b, id_column_b or id_column, explicit))
    _check_explicit_columns(explicit, [file_a] + ([file_b] if file_b else []), inputs)
    for item in inputs:
        if not item.mapping:
            raise InvalidInput(
                f"{item.name}: no column to compare was recognised; name them with --map "
                f"COLUMN=FIELD (fields: {', '.join(FIELDS)})."
            )
    right = inputs[1].table if len(inputs) > 1 else None
    scored = score_pairs(inputs[0].table, right, options)
    write_pairs(scored, out, details)
    return FileMatch(inputs, scored, out)


def _check_explicit_columns(
    explicit: Sequence[tuple[str, str]], paths: list[Path], inputs: list[MatchInput]
) -> None:
    known = {c for item in inputs for cols in item.mapping.values() for c in cols}
    for column, _ in explicit:
        if column not in known:
            names = " nor ".join(p.name for p in paths)
            raise InvalidInput(f"--map names column {column!r}, which is not in {names}.")


def write_pairs(scored: Scored, out: Path, details: bool = False) -> None:
    """`id_a,id_b,probability` (and each field's agreement with `details`)."""
    columns = ["id_a", "id_b", "probability"] + (list(scored.fields) if details else [])
    frame = scored.pairs[columns].copy()
    frame["probability"] = frame["probability"].round(6)
    try:
        frame.to_csv(out, index=False)
    except OSError as exc:
        raise InvalidInput(f"{out}: cannot be written ({exc.strerror}).") from None
