"""The `parcours segments` command group."""

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
from parcours.core.errors import InvalidInput

out = Console()
app = typer.Typer(
    help="Segments: define, preview, refresh and export audiences.", no_args_is_help=True
)
JsonFile = Annotated[Path, typer.Argument(help="A JSON file holding the definition.")]


def _definition(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Cannot read the definition in {path}: {exc}") from None
    if not isinstance(found, dict):
        raise InvalidInput(f"The definition in {path} must be a JSON object.")
    return found


@app.command("create")
def create_command(
    file: JsonFile,
    key: Annotated[str, typer.Option("--key", help="The segment's key (a-z, 0-9, - and _).")],
    name: Annotated[str, typer.Option("--name", help="Its name, for people.")],
    refresh: Annotated[bool, typer.Option(help="Evaluate it right away.")] = True,
) -> None:
    """Save the segment defined in FILE (and evaluate it)."""
    from parcours.segments import service

    now = SYSTEM_CLOCK.now()
    with CliState.database().transaction() as session:
        made = service.create_segment(session, now, CLI_ACTOR, key, name, _definition(file))
        if refresh:
            service.refresh_segment(session, now, made.id)
        out.print(
            f"Segment {made.key} saved: {service.find_segment(session, key).member_count} members."
        )


@app.command("list")
def list_command() -> None:
    """List the segments with their sizes."""
    from parcours.segments import service

    table = Table("key", "name", "members", "version", "last evaluated (UTC)")
    with CliState.database().transaction() as session:
        for s in service.list_segments(session):
            segment = service.get_segment(session, s.key)
            when = segment.last_evaluated_at.isoformat() if segment.last_evaluated_at else "never"
            table.add_row(s.key, s.name, str(s.member_count), str(s.version), when)
    out.print(table)


@app.command("preview")
def preview_command(file: JsonFile) -> None:
    """Count the profiles the definition in FILE keeps now, and show ten (nothing saved)."""
    from parcours.segments import service

    with CliState.database().transaction() as session:
        found = service.preview(session, SYSTEM_CLOCK.now(), _definition(file))
    out.print(f"{found.count} profiles.")
    for profile_id, label in found.sample:
        out.print(f"  {profile_id}  {label}")


@app.command("refresh")
def refresh_command(
    key: Annotated[str, typer.Argument(help="One segment (default: every segment).")] = "",
) -> None:
    """Evaluate one segment, or every segment in dependency order."""
    from parcours.segments import service

    now = SYSTEM_CLOCK.now()
    with CliState.database().transaction() as session:
        if not key:
            count = service.refresh_everything(session, now)
            out.print(f"{count} segments evaluated.")
            return
        segment = service.find_segment(session, key)
        change = service.refresh_segment(session, now, segment.id)
        out.print(
            f"{key}: {len(change.entered)} entered, {len(change.exited)} exited, "
            f"{service.find_segment(session, key).member_count} members."
        )


@app.command("export")
def export_command(
    key: Annotated[str, typer.Argument(help="The segment.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or audience (hashed).")] = "csv",
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the file.")] = Path(
        "segment.csv"
    ),
) -> None:
    """Write a segment's members to a file: contact details (csv) or SHA-256 hashed
    email and phone for ad platforms (audience). The export is audited."""
    from parcours.segments import exports

    with CliState.database().transaction() as session, out_file.open("w", encoding="utf-8") as f:
        rows = -1
        for line in exports.export_lines(session, SYSTEM_CLOCK.now(), CLI_ACTOR, key, fmt):
            f.write(line)
            rows += 1
    out.print(f"{rows} members written to {out_file}.")
