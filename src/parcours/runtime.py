"""What the command line shares: settings and database opened on first use, the server."""

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


def run_server(
    host: str | None = None, port: int | None = None, worker: bool | None = None
) -> None:
    """Serve the API and console with uvicorn until interrupted."""
    import uvicorn
    from rich.console import Console

    from parcours.app import create_app
    from parcours.core.logs import configure_logging

    settings = CliState.settings()
    db = CliState.database()
    configure_logging(settings.log_level, settings.log_format)
    in_process = settings.worker_in_process if worker is None else worker
    application = create_app(settings, db, run_consumers=in_process)
    bind_host, bind_port = host or settings.host, port or settings.port
    Console(stderr=True).print(f"Parcours console: http://{bind_host}:{bind_port}/console/")
    uvicorn.run(application, host=bind_host, port=bind_port, log_config=None, access_log=False)
