"""The server the command line starts (`parcours serve`, `parcours demo`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.core.commandline import CliState
from parcours.core.errors import InvalidInput

if TYPE_CHECKING:
    from fastapi import FastAPI


def run_server(
    host: str | None = None,
    port: int | None = None,
    worker: bool | None = None,
    processes: int = 1,
) -> None:
    """Serve the API and console with uvicorn until interrupted.

    With `processes` > 1, uvicorn runs that many server processes on one socket (each
    builds its app with `served_app`); the event consumers then run in their own
    `parcours worker` process, never inside the servers.
    """
    import uvicorn
    from rich.console import Console

    from parcours.app import create_app
    from parcours.core.logs import configure_logging

    if processes > 1 and worker:
        raise InvalidInput(
            "--worker runs the event consumers inside the server, which needs one "
            "process; with --processes, run `parcours worker` alongside instead."
        )
    settings = CliState.settings()
    db = CliState.database()  # checks the database and its schema before serving
    configure_logging(settings.log_level, settings.log_format)
    bind_host, bind_port = host or settings.host, port or settings.port
    say = Console(stderr=True).print
    if processes > 1:
        db.dispose()
        say(f"Parcours console: http://{bind_host}:{bind_port}/console/ ({processes} processes)")
        if settings.worker_in_process:
            say("Event consumers are not run in-process: run `parcours worker` alongside.")
        uvicorn.run(
            "parcours.runtime:served_app",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=processes,
            log_config=None,
            access_log=False,
        )
        return
    in_process = settings.worker_in_process if worker is None else worker
    application = create_app(settings, db, run_consumers=in_process)
    say(f"Parcours console: http://{bind_host}:{bind_port}/console/")
    uvicorn.run(application, host=bind_host, port=bind_port, log_config=None, access_log=False)


def served_app() -> FastAPI:
    """The app of one server process among several (settings from the environment,
    as the parent read them; no in-process consumers)."""
    from parcours.app import create_app
    from parcours.core.logs import configure_logging

    settings = CliState.settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, CliState.database(), run_consumers=False)
