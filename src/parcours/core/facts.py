"""Portable column shapes for the fact selects contexts publish to analytics: ids as
text, timestamps as UTC without a zone (what Parquet, DuckDB and Spark read alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, func
from sqlalchemy.sql.elements import ColumnElement


def utc_timestamp(column: Any, dialect: str) -> ColumnElement[Any]:
    """A UTC timestamp column as a zone-less timestamp in UTC (SQLite stores it so;
    PostgreSQL's `timestamptz` is converted with `timezone('UTC', …)`)."""
    if dialect == "postgresql":
        return func.timezone("UTC", column)
    return column  # type: ignore[no-any-return]


def id_text(column: Any) -> ColumnElement[str]:
    """An id (UUID or other) as text."""
    return cast(column, String)
