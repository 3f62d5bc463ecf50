"""The server the command line starts (`parcours serve`, `parcours demo`)."""

from __future__ import annotations

from parcours.core.commandline import CliState


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
