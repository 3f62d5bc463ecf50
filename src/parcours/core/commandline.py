"""What every command-line group shares: settings and database, opened on first use.

It lives in core so that each context's `cli.py` can open the database itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from parcours.core.errors import ParcoursError
from parcours.core.imports import RowError

if TYPE_CHECKING:
    # SQLAlchemy, Alembic and pydantic are imported on first use, not when a command
    # module is loaded: `--help` and `--version` need none of them.
    from parcours.core.db import Database
    from parcours.core.settings import Settings


class CliState:
    """Settings and database, opened on first use so `--help` needs neither."""

    _db: Database | None = None

    @classmethod
    def settings(cls) -> Settings:
        from parcours.core.settings import get_settings

        return get_settings()

    @classmethod
    def database(cls, migrated: bool = True) -> Database:
        from parcours.core.db import Database
        from parcours.core.migrate import pending

        if cls._db is None:
            db = Database.connect(cls.settings().resolved_database_url)
            db.ping()
            cls._db = db
        if migrated and pending(cls._db):
            raise ParcoursError("The database schema is not up to date: run `parcours init` first.")
        return cls._db


def print_row_errors(console: Console, errors: Sequence[RowError], limit: int = 50) -> None:
    """The bad rows of an import as a table (the first `limit`, then how many more)."""
    table = Table("row", "column", "problem")
    for error in errors[:limit]:
        table.add_row(str(error.row), error.column, error.message)
    console.print(table)
    if len(errors) > limit:
        console.print(f"… and {len(errors) - limit} more problems.")
