"""Where the metrics run: one Ibis expression, three engines.

- `live`: the application database itself (SQLite file or PostgreSQL), each fact being
  the owning context's select compiled for the dialect and wrapped with `con.sql`.
  For a small shop: no export, always current.
- `duckdb`: DuckDB over a Parquet export (`parcours export parquet DIR`), loaded into
  DuckDB's in-memory tables when the engine opens.
- `spark`: Ibis on PySpark over the same Parquet export, in the process's one local
  Spark session (a cluster in production).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend
from sqlalchemy import Select
from sqlalchemy.engine import make_url

from parcours.analytics.facts import (
    FACT_COLUMNS,
    FACT_NAMES,
    Facts,
    conform,
    fact_selects,
    facts_of,
)
from parcours.analytics.names import ENGINES
from parcours.core.db import Database
from parcours.core.errors import FieldError, InvalidInput
from parcours.core.settings import Settings
from parcours.core.spark import spark_session


@dataclass(frozen=True)
class Engine:
    """A backend and the facts on it."""

    name: str
    backend: BaseBackend
    facts: Facts

    def rows(self, expr: ir.Table) -> list[dict[str, Any]]:
        """Run `expr` and return plain rows: dates as ISO strings, never NaN or inf."""
        return [
            {key: _plain(value) for key, value in row.items()}
            for row in expr.to_pyarrow().to_pylist()
        ]

    def release(self) -> None:
        """Drop the temporary tables made for this engine's queries."""
        self.facts.release()


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    return value


def compiled(select: Select[Any], dialect: Any) -> str:
    """A select as one SQL string with its values inlined (what `con.sql` takes)."""
    return str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _live_backend(database: Database) -> BaseBackend:
    url = database.engine.url
    if url.get_backend_name() == "sqlite":
        return ibis.sqlite.connect(url.database or ":memory:")
    if url.get_backend_name() == "postgresql":
        import psycopg

        conninfo = make_url(str(url.render_as_string(hide_password=False))).set(
            drivername="postgresql"
        )
        connection = psycopg.connect(conninfo.render_as_string(hide_password=False))
        connection.execute("SET TIME ZONE 'UTC'")
        return ibis.postgres.from_connection(connection)
    raise InvalidInput(
        f"The live engine runs on SQLite or PostgreSQL, not {url.get_backend_name()}."
    )


def live_engine(database: Database) -> Engine:
    """The metrics on the application database itself."""
    backend = _live_backend(database)
    dialect = database.engine.dialect
    # The schema is given, not inferred: SQLite cannot type an expression column of an
    # empty table.
    tables = {
        name: backend.sql(compiled(select, dialect), schema=ibis.schema(FACT_COLUMNS[name]))
        for name, select in fact_selects(dialect.name).items()
    }
    return Engine("live", backend, facts_of(tables))


def _fact_path(directory: Path, name: str) -> Path:
    folder = directory / name
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        raise InvalidInput(
            f"No {name} facts in {directory}: run `parcours export parquet {directory}` first.",
            [FieldError("no Parquet export here", parameter="parquet")],
        )
    return folder


def duckdb_engine(directory: Path) -> Engine:
    """The metrics on DuckDB over a Parquet export directory.

    Each fact is read from its Parquet files once, here, into an in-memory DuckDB table
    (conformed to the fact's types): every query after that scans DuckDB's own columnar
    storage instead of opening, decoding and casting the Parquet files again. About
    1.3 GB of memory for 10M events and 1M orders (docs/analytics-metrics.md)."""
    backend = ibis.duckdb.connect()
    # Metrics aggregate and order what they return: rows need not keep the file order,
    # which lets DuckDB load in parallel with less memory.
    backend.raw_sql("SET preserve_insertion_order = false")
    tables = {}
    for name in FACT_NAMES:
        files = backend.read_parquet(
            str(_fact_path(directory, name) / "*.parquet"), table_name=f"{name}_parquet"
        )
        tables[name] = backend.create_table(name, conform(name, files))
    return Engine("duckdb", backend, facts_of(tables))


_SPARK_TYPES = {
    "string": "STRING",
    "int64": "BIGINT",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP_NTZ",
}
# Each fact's schema as Spark reads it: the types the export writes.
_SPARK_SCHEMAS = {
    name: ", ".join(f"`{c}` {_SPARK_TYPES[t]}" for c, t in FACT_COLUMNS[name].items())
    for name in FACT_NAMES
}


def spark_engine(directory: Path) -> Engine:
    """The metrics on Spark (the process's local session) over a Parquet export.

    Each fact is read with its schema given: Spark would otherwise run a schema-inference
    job per fact every time an engine opens. Its view is named after the export folder,
    so opening again replaces it instead of adding one to the session's catalogue."""
    session = spark_session()
    backend = ibis.pyspark.connect(session)
    folder = uuid.uuid5(uuid.NAMESPACE_URL, str(directory.resolve())).hex
    tables = {}
    for name in FACT_NAMES:
        frame = session.read.schema(_SPARK_SCHEMAS[name]).parquet(str(_fact_path(directory, name)))
        view = f"parcours_{name}_{folder}"
        frame.createOrReplaceTempView(view)
        tables[name] = backend.table(view)
    return Engine("spark", backend, facts_of(tables))


@contextmanager
def open_engine(
    name: str, *, database: Database | None = None, parquet: Path | None = None
) -> Iterator[Engine]:
    """An engine by name; `live` needs the database, the others a Parquet directory.
    The connection is closed on exit (the Spark session stays for the process)."""
    if name not in ENGINES:
        raise InvalidInput(
            f"Unknown engine {name!r}: use {', '.join(ENGINES)}.",
            [FieldError(f"must be one of {', '.join(ENGINES)}", parameter="engine")],
        )
    if name == "live":
        if database is None:
            raise InvalidInput("The live engine needs the application database.")
        engine = live_engine(database)
    else:
        if parquet is None:
            raise InvalidInput(
                f"The {name} engine reads a Parquet export: give its directory (--parquet DIR).",
                [FieldError("required with this engine", parameter="parquet")],
            )
        engine = duckdb_engine(parquet) if name == "duckdb" else spark_engine(parquet)
    try:
        yield engine
    finally:
        engine.release()
        if name != "spark":
            engine.backend.disconnect()


@contextmanager
def configured_engine(name: str, database: Database, settings: Settings) -> Iterator[Engine]:
    """An engine by name for the API and console: the application database, or the
    export directory the settings name (`PARCOURS_ANALYTICS_PARQUET`); a client never
    names a server directory."""
    parquet = Path(settings.analytics_parquet) if settings.analytics_parquet else None
    with open_engine(name, database=database, parquet=parquet) as engine:
        yield engine
