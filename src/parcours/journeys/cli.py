"""The `parcours journeys` command group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState
from parcours.core.errors import InvalidInput, NotFound

out = Console()
app = typer.Typer(help="Automated customer journeys.", no_args_is_help=True)


def _file(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Cannot read the journey in {path}: {exc}") from None
    if not isinstance(found, dict) or not isinstance(found.get("definition"), dict):
        raise InvalidInput(
            f"{path} must hold a JSON object with key, name and definition (docs/journeys.md)."
        )
    return found


@app.command("list")
def list_command() -> None:
    """List the journeys with their status, version and people inside."""
    from parcours.journeys import service

    table = Table("key", "name", "status", "version", "people inside")
    with CliState.database().transaction() as session:
        for j in service.list_journeys(session):
            table.add_row(j.key, j.name, j.status, str(j.version), str(j.active_instances))
    out.print(table)


@app.command("show")
def show_command(key: Annotated[str, typer.Argument(help="The journey's key.")]) -> None:
    """Show a journey's definition and its counts per step."""
    from parcours.journeys import service

    with CliState.database().transaction() as session:
        journey = service.get_journey(session, key)
        stats = service.journey_stats(session, key)
    out.print(f"{journey.key} — {journey.name} ({journey.status}, version {journey.version})")
    table = Table("step", "type", "entered", "waiting", "done", "exited")
    for s in stats.steps:
        table.add_row(s.step_id, s.type, str(s.entered), str(s.waiting), str(s.done), str(s.exited))
    out.print(table)
    out.print(json.dumps(journey.definition, indent=2, ensure_ascii=False), soft_wrap=True)


@app.command("add")
def add_command(
    file: Annotated[Path, typer.Argument(help="A JSON file: {key, name, definition}.")],
) -> None:
    """Save the journey in FILE: a new journey (draft), or a new version of an existing one."""
    from parcours.journeys import service

    data = _file(file)
    now = SYSTEM_CLOCK.now()
    key, name = str(data.get("key", "")), str(data.get("name", ""))
    with CliState.database().transaction() as session:
        try:
            service.get_journey(session, key)
        except NotFound:
            made = service.create_journey(session, now, CLI_ACTOR, key, name, data["definition"])
            out.print(f"Journey {made.key} saved (draft, version 1).")
            return
        changed = service.update_journey(
            session, now, CLI_ACTOR, key, data["definition"], name or None
        )
    out.print(f"Journey {changed.key} saved: version {changed.version}.")


@app.command("activate")
def activate_command(key: Annotated[str, typer.Argument(help="The journey's key.")]) -> None:
    """Start entering people into a journey."""
    from parcours.journeys import service

    with CliState.database().transaction() as session:
        service.set_status(session, SYSTEM_CLOCK.now(), CLI_ACTOR, key, "active")
    out.print(f"Journey {key} is active.")


@app.command("pause")
def pause_command(key: Annotated[str, typer.Argument(help="The journey's key.")]) -> None:
    """Stop entering people (those inside go on to the end)."""
    from parcours.journeys import service

    with CliState.database().transaction() as session:
        service.set_status(session, SYSTEM_CLOCK.now(), CLI_ACTOR, key, "paused")
    out.print(f"Journey {key} is paused.")


@app.command("install-ready-made")
def install_command(
    activate: Annotated[bool, typer.Option(help="Switch on the journeys installed.")] = False,
) -> None:
    """Install the ready-made journeys with their FR/EN templates, promotions and segment."""
    from parcours.journeys.ready_made import install_ready_made

    with CliState.database().transaction() as session:
        done = install_ready_made(session, SYSTEM_CLOCK.now(), CLI_ACTOR, activate=activate)
    out.print(f"Journeys: {', '.join(done.journeys) or 'none new'}.")
    out.print(f"Templates: {', '.join(done.templates) or 'none new'}.")
    out.print(f"Promotions: {', '.join(done.promotions) or 'none new'}.")
    out.print(f"Segments: {', '.join(done.segments) or 'none new'}.")


@app.command("run-due")
def run_due_command() -> None:
    """Do once what the worker does: read new events, enter date triggers, advance due
    instances."""
    from parcours.journeys.worker import run_all

    done = run_all(CliState.database(), SYSTEM_CLOCK)
    out.print(f"{done} journey steps and entries.")
