"""Schema migrations (Alembic), applied by `parcours init`.

Idempotent, and safe when two processes run it at once: PostgreSQL serialises them with
an advisory lock, SQLite with an exclusive lock on a file beside the database.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from parcours.core.db import Database, DatabaseUnavailable, safe_url

# Any fixed 64-bit number; it names the lock, it is not a secret.
_PG_MIGRATION_LOCK = 0x70617263_6F757273


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "parcours:migrations")
    return config


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """The newest migration(s) shipped with this version of Parcours (read once).

    Usually one; several while contexts developed in parallel have not been merged.
    """
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def head_revision() -> str | None:
    """The single newest migration (the revisions joined with '+' if several)."""
    return "+".join(sorted(head_revisions())) or None


def current_revisions(db: Database) -> frozenset[str]:
    with db.engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def current_revision(db: Database) -> str | None:
    return "+".join(sorted(current_revisions(db))) or None


@contextmanager
def _sqlite_file_lock(db: Database) -> Iterator[None]:
    database = db.engine.url.database or ""
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database + ".migrate.lock")
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _revision_label(conn: Connection) -> str | None:
    return "+".join(sorted(MigrationContext.configure(conn).get_current_heads())) or None


def _upgrade_on(conn: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "heads")


def upgrade(db: Database) -> tuple[str | None, str | None]:
    """Bring the schema to head; returns (revision before, revision after)."""
    try:
        if db.dialect == "postgresql":
            with db.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    before = _revision_label(conn)
                    conn.commit()
                    with conn.begin():
                        _upgrade_on(conn)
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                    conn.commit()
        else:
            with _sqlite_file_lock(db), db.engine.connect() as conn:
                before = _revision_label(conn)
                conn.commit()
                with conn.begin():
                    _upgrade_on(conn)
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(
            f"cannot migrate the database at {safe_url(str(db.engine.url))}: {reason}"
        ) from None
    return before, current_revision(db)


def pending(db: Database) -> bool:
    """True when the schema is behind the code (run `parcours init`)."""
    return current_revisions(db) != head_revisions()
