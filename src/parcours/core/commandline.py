"""What every command-line group shares: settings and database, opened on first use.

It lives in core so that each context's `cli.py` can open the database itself.
"""

from __future__ import annotations

from parcours.core.db import Database
from parcours.core.errors import ParcoursError
from parcours.core.migrate import pending
from parcours.core.settings import Settings, get_settings


class CliState:
    """Settings and database, opened on first use so `--help` needs neither."""

    _db: Database | None = None

    @classmethod
    def settings(cls) -> Settings:
        return get_settings()

    @classmethod
    def database(cls, migrated: bool = True) -> Database:
        if cls._db is None:
            db = Database.connect(cls.settings().resolved_database_url)
            db.ping()
            cls._db = db
        if migrated and pending(cls._db):
            raise ParcoursError("The database schema is not up to date: run `parcours init` first.")
        return cls._db
