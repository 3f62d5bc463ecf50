"""Database engine, sessions and the column types every context shares.

SQLite (WAL, busy timeout, foreign keys) is the embedded default; PostgreSQL through
psycopg 3 is the production database. Both run the same models and migrations.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Insert,
    MetaData,
    String,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator, Uuid

from parcours.core.memo import Expiring

SQLITE_BUSY_TIMEOUT_MS = 10_000

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names are stable for migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone, so values are normalised to UTC on the way in and tagged
    UTC on the way out; PostgreSQL stores `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Parcours stores UTC-aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
UUIDType = Uuid(as_uuid=True)


def flushed_connection(session: Session) -> Connection:
    """The session's connection once its pending objects are written: what the ORM's
    execute would have flushed, for Core statements run straight on the connection (a
    hot path's statements, built once, skip the ORM's per-execution work)."""
    session.flush()
    return session.connection()


def bulk_insert(model: type[Base]) -> Insert:
    """An INSERT for many rows at once (`session.execute(bulk_insert(M), rows)`).

    NULLs are rendered rather than columns dropped, so rows with different missing fields
    still share one statement and reach the driver as a single executemany batch.
    """
    return insert(model).execution_options(render_nulls=True)


def among(
    session: Session, column: ColumnElement[Any] | QueryableAttribute[Any], texts: Sequence[str]
) -> ColumnElement[bool]:
    """`column IN texts` with all the texts in one bound parameter, however many: a
    JSON array read by `json_each` on SQLite, an array (`= ANY`) on PostgreSQL. One
    query for 29,977 SKUs takes half the time of six IN lists of 5,000 parameters."""
    if session.get_bind().dialect.name == "sqlite":
        listed = bindparam(None, json.dumps(list(texts)), type_=String)
        return column.in_(select(literal_column("value")).select_from(func.json_each(listed)))
    return column == any_(bindparam(None, list(texts), type_=ARRAY(String)))


# Rows per INSERT statement on SQLite (fewer when a build allows fewer bound values).
SQLITE_ROWS_PER_INSERT = 500


@dataclass(frozen=True)
class Same:
    """One value for every row of a column given to `insert_columns_sqlite`: bound once
    per statement instead of once per row."""

    value: Any


def insert_columns_sqlite(
    session: Session,
    table: str,
    columns: Mapping[str, Sequence[Any] | Same],
    *,
    skip_conflicts: bool = False,
) -> int:
    """Insert rows given as columns (lists of one length, values as the sqlite3 driver
    takes them, or `Same` for a value shared by all rows) through the session's own
    SQLite connection, many rows per INSERT: SQLite then opens the table and each of its
    indexes once per statement instead of once per row (185,000 order lines: median
    1.5 s instead of 2.1 s), and a shared value is bound once per statement (the same
    lines, three columns shared: 0.54-0.59 s instead of 0.63-0.66 s). `table` and the
    column names must be the models' own, never input. With `skip_conflicts`, a row that
    would break a unique constraint is left out (ON CONFLICT DO NOTHING). How many rows
    were inserted."""
    varying = [name for name, column in columns.items() if not isinstance(column, Same)]
    values = [column for column in columns.values() if not isinstance(column, Same)]
    if not values:
        raise ValueError("insert_columns_sqlite needs one column of values per row")
    count = len(values[0])
    if not count:
        return 0
    shared = [value.value for value in columns.values() if isinstance(value, Same)]
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(shared)
    per = max(1, min(SQLITE_ROWS_PER_INSERT, limit // len(varying)))
    whole = count - count % per
    inserted = 0
    cursor = driver.cursor()
    if whole:
        blocks = _flat_rows(values, range(0, whole, per), per)
        cursor.executemany(
            _multirow_insert(table, list(columns), varying, per, skip_conflicts),
            (shared + block for block in blocks) if shared else blocks,
        )
        inserted += cursor.rowcount  # summed over the statements
    if whole < count:
        cursor.execute(
            _multirow_insert(table, list(columns), varying, count - whole, skip_conflicts),
            shared + next(_flat_rows(values, [whole], count - whole)),
        )
        inserted += cursor.rowcount
    return inserted


def insert_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows that all give the same columns of `table`, every column with a
    Python-side default among them (the driver would not apply it, so both databases
    store the same): on SQLite through the driver (`insert_values_sqlite`), elsewhere as
    SQLAlchemy's executemany (identity for 2,111 new customers: 0.070 s instead of
    0.100 s)."""
    if not rows:
        return
    names = rows[0].keys()
    missing = [c.name for c in table.columns if c.default is not None and c.name not in names]
    if missing:
        raise ValueError(f"rows for {table.name} must give {missing}: they have a default")
    if any(row.keys() != names for row in rows):
        raise ValueError(f"rows for {table.name} must all give the same columns")
    session.flush()
    if session.get_bind().dialect.name != "sqlite":
        session.execute(insert(table), rows)
        return
    insert_values_sqlite(session, table, {name: [row[name] for row in rows] for name in names})


def insert_rows_sqlite(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_conflicts: bool = False,
) -> int:
    """`insert_values_sqlite` for rows that each give every column of `table`."""
    columns = {column.name: [row[column.name] for row in rows] for column in table.columns}
    return insert_values_sqlite(session, table, columns, skip_conflicts=skip_conflicts)


def insert_values_sqlite(
    session: Session,
    table: Table,
    columns: Mapping[str, list[Any] | Same],
    *,
    skip_conflicts: bool = False,
) -> int:
    """`insert_columns_sqlite` for values as the models hold them (UUIDs, aware
    datetimes, dicts): each column's values go through its type's own bind processor,
    column by column, so what is stored is what SQLAlchemy's insert stores, without its
    per-row bookkeeping. A column left out is NULL, or its server default."""
    dialect = session.get_bind().dialect
    processed: dict[str, list[Any] | Same] = {}
    for name, values in columns.items():
        process = table.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        if isinstance(values, Same):
            processed[name] = Same(process(values.value) if process else values.value)
        else:
            processed[name] = _processed(values, process)
    given = next((name for name, v in columns.items() if not isinstance(v, Same)), None)
    if given is not None and all(isinstance(v, Same) for v in processed.values()):
        shared = processed[given]
        assert isinstance(shared, Same)
        processed[given] = [shared.value] * len(columns[given])  # type: ignore[arg-type]
    return insert_columns_sqlite(session, table.name, processed, skip_conflicts=skip_conflicts)


def _processed(values: list[Any], process: Callable[[Any], Any] | None) -> list[Any] | Same:
    """The values through their type's bind processor, if any; `Same` for a column
    whose rows all hold the same value (a time of import, an empty JSON object, a
    brand), which bulk imports' columns often do: processed and bound once."""
    first = values[0] if values else None
    if len(values) > 1 and all(_same(value, first) for value in values):
        return Same(process(first) if process else first)
    return [process(value) for value in values] if process else values


def _same(value: Any, first: Any) -> bool:
    """Whether `value` is stored as `first` is: the same object, an equal value of a type
    whose equal values are stored alike, or an empty dict or list like it (inside a
    container 1 == True, yet JSON writes 1 and true)."""
    if value is first:
        return True
    kind = type(first)
    if type(value) is not kind:
        return False
    if kind is dict or kind is list:
        return not value and not first
    return kind in _PLAIN_TYPES and bool(value == first)


_PLAIN_TYPES = (str, int, bool, uuid.UUID, datetime)


def _multirow_insert(
    table: str, names: list[str], varying: list[str], rows: int, skip_conflicts: bool
) -> str:
    """`INSERT INTO table (names) VALUES (...), ...` for `rows` rows of the `varying`
    columns; the others, one parameter each, are taken by a SELECT over the VALUES, as
    SQLite names their columns (column1, column2, ...)."""
    one = "(" + ", ".join("?" for _ in varying) + ")"
    many = ", ".join(itertools.repeat(one, rows))
    into = f"INSERT INTO {table} ({', '.join(names)}) "  # the models' names, never input
    if len(varying) == len(names):
        sql = f"{into}VALUES {many}"
    else:
        position = {name: index for index, name in enumerate(varying, start=1)}
        picked = ", ".join(f"column{position[n]}" if n in position else "?" for n in names)
        # WHERE true: SQLite's grammar needs it between a SELECT and ON CONFLICT.
        sql = f"{into}SELECT {picked} FROM (VALUES {many}) WHERE true"  # noqa: S608
    return sql + (" ON CONFLICT DO NOTHING" if skip_conflicts else "")


def _flat_rows(columns: list[Sequence[Any]], starts: Any, per: int) -> Iterator[list[Any]]:
    """The parameters of `per` rows from each start, row after row."""
    for start in starts:
        block = zip(*(column[start : start + per] for column in columns), strict=True)
        yield list(itertools.chain.from_iterable(block))


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the message says where and why, without password."""


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 opens transactions lazily and lets SQLAlchemy drive BEGIN; WAL lets
    # readers proceed during a write, and the busy timeout makes writers queue, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Bulk writes (the event log, imports) dirty pages of several random-key indexes: a
    # 64 MB page cache and checkpoints every ~40 MB of WAL instead of 4 MB took tracking
    # ingestion from ~2,000 to ~2,900 events/s (python -m bench tracking_ingest).
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def _begin_immediate(conn: Any) -> None:
    # A write transaction that takes the lock up front cannot deadlock on upgrade;
    # SQLite would otherwise fail a reader-turned-writer with "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`, with the SQLite pragmas Parcours relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            poolclass=NullPool if database in ("", ":memory:") else None,
        )
        event.listen(engine, "connect", _configure_sqlite)
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are disabled).
        event.listen(engine, "connect", _disable_pysqlite_autobegin)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _disable_pysqlite_autobegin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


@dataclass
class Database:
    """An engine and its session factory; one per process (tests make their own).

    `memo` holds the process's short-lived caches of this database's rows, by name
    (`memo.Expiring`, see `cache`)."""

    engine: Engine
    sessions: sessionmaker[Session]
    memo: dict[str, Expiring[Any, Any]] = field(default_factory=dict, repr=False, compare=False)

    def cache(self, name: str, seconds: float) -> Expiring[Any, Any]:
        """The cache `name` of this database, made on first use, entries kept `seconds`."""
        found = self.memo.get(name)
        if found is None:
            found = self.memo.setdefault(name, Expiring(seconds))
        return found

    @classmethod
    def connect(cls, url: str) -> Database:
        engine = make_engine(url)
        return cls(engine, sessionmaker(engine, expire_on_commit=False))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any exception."""
        with self.sessions.begin() as session:
            yield session

    def ping(self) -> None:
        """Raise `DatabaseUnavailable` unless a trivial query succeeds."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailable(
                f"cannot reach the database at {safe_url(str(self.engine.url))}: {reason}"
            ) from None

    def dispose(self) -> None:
        self.engine.dispose()
