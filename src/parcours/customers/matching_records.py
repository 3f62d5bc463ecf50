"""The records probabilistic matching compares: canonical fields, column names, cleaning.

Files and profiles arrive with their own column names and spellings; matching needs one
shape. Each source becomes a table with `unique_id` and some of `FIELDS`, cleaned the
same way (lower case, no accents or punctuation, ISO dates, E.164 phones), column by
column with pandas: never a Python loop over pairs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

from parcours.customers.identity import normalise

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]

# The fields the engine knows how to compare, in the order they are shown.
FIELDS = (
    "first_name",
    "last_name",
    "birth_date",
    "address",
    "postcode",
    "city",
    "phone",
    "email",
)

ENGINES = ("duckdb", "spark")
# How weights are set: learnt when there are enough records (auto), always learnt (em),
# or the built-in prior weights (priors).
TRAINING = ("auto", "em", "priors")
# A blocking rule: the fields a pair must agree on exactly to be compared at all.
Rule = tuple[str, ...]

# Column names recognised without a --map, compared after folding case, accents,
# spaces, dashes and underscores (so "Prénom", "PRENOM" and "pre_nom" all match "prenom").
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstname", "given_name", "forename", "prenom"),
    "last_name": ("last_name", "lastname", "surname", "family_name", "nom", "nom_de_famille"),
    "birth_date": (
        "birth_date",
        "date_of_birth",
        "birthdate",
        "dob",
        "date_naissance",
        "date_de_naissance",
    ),
    "address": ("address", "address_1", "address1", "address_line_1", "street", "adresse"),
    "postcode": ("postcode", "postal_code", "post_code", "zip", "zip_code", "code_postal", "cp"),
    "city": ("city", "suburb", "town", "locality", "ville", "commune"),
    "phone": ("phone", "phone_number", "telephone", "mobile", "tel", "portable"),
    "email": ("email", "e_mail", "email_address", "mail", "courriel"),
}

# Dates of birth are read day first when ambiguous (French files): 03/04/1980 is 3 April.
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d")


def fold_name(column: str) -> str:
    """A column name folded for comparison: `Date de naissance` -> `datedenaissance`."""
    return re.sub(r"[\s_\-.]+", "", _strip_accents(column).lower())


def _strip_accents(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def detect_columns(columns: list[str]) -> dict[str, list[str]]:
    """Field -> the file's column(s) recognised for it by name (the first alias found)."""
    by_folded = {fold_name(c): c for c in reversed(columns)}
    found: dict[str, list[str]] = {}
    for field, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            column = by_folded.get(fold_name(alias))
            if column is not None:
                found[field] = [column]
                break
    return found


def clean_text(values: pd.Series) -> pd.Series:
    """Lower case, no accents, punctuation as spaces, single spaces; empty -> missing."""
    text = values.astype("string").str.normalize("NFKD")
    text = text.str.encode("ascii", "ignore").str.decode("ascii").astype("string")
    text = text.str.lower().str.replace(r"[^a-z0-9']+", " ", regex=True)
    text = text.str.replace("'", "", regex=False).str.strip()
    return _missing_if_empty(text)


def clean_postcode(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)
    return _missing_if_empty(text)


def clean_date(values: pd.Series) -> pd.Series:
    """ISO `YYYY-MM-DD` strings; unreadable or impossible dates become missing."""
    import pandas as pd

    text = values.astype("string").str.strip()
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in _DATE_FORMATS:
        todo = parsed.isna() & text.notna()
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return parsed.dt.strftime("%Y-%m-%d").astype("string")


def clean_identifier(values: pd.Series, kind: str) -> pd.Series:
    """Emails and phones in the identity graph's normal form; blocked values (shared
    test addresses, 0000000000) become missing, so they never make two people one."""
    text = values.astype("string").str.strip()
    distinct = text.dropna().unique()
    forms = {value: normalise(kind, value) for value in distinct}
    return text.map(forms, na_action="ignore").astype("string")


def _missing_if_empty(text: pd.Series) -> pd.Series:
    import pandas as pd

    return text.mask(text == "", pd.NA)


CLEANERS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "first_name": clean_text,
    "last_name": clean_text,
    "birth_date": clean_date,
    "address": clean_text,
    "postcode": clean_postcode,
    "city": clean_text,
    "phone": lambda values: clean_identifier(values, "phone"),
    "email": lambda values: clean_identifier(values, "email"),
}


def standardise(raw: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """A table of `unique_id` plus each field of `raw` (columns named after FIELDS),
    cleaned; a field with no value at all is dropped (there is nothing to compare)."""
    import pandas as pd

    table = pd.DataFrame({"unique_id": ids.astype("string").to_numpy()})
    for field in FIELDS:
        if field not in raw.columns:
            continue
        cleaned = CLEANERS[field](raw[field])
        if cleaned.notna().any():
            table[field] = cleaned.to_numpy()
    return table
