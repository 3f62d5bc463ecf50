"""`parcours webhooks`: add, list and disable endpoints, read their delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from parcours.core import audit, webhooks
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState

app = typer.Typer(help="Signed outgoing webhooks: endpoints and deliveries.", no_args_is_help=True)
out = Console()


@app.command("add")
def add_command(
    url: Annotated[str, typer.Argument(help="The receiver's http(s) URL.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="An event type to send (repeat); none: every event."),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
) -> None:
    """Add an endpoint and print its signing secret (shown this once)."""
    now = SYSTEM_CLOCK.now()
    with CliState.database().transaction() as session:
        created = webhooks.create_endpoint(session, now, url, list(event or []), description)
        audit.record(
            session, now, audit.CLI_ACTOR, "webhooks.create", "webhook_endpoint",
            str(created.endpoint.id),
        )  # fmt: skip
        endpoint_id = created.endpoint.id
    out.print(f"Endpoint {endpoint_id} added for {url}.")
    out.print(f"Signing secret (shown once, keep it): {created.secret}")


@app.command("list")
def list_command() -> None:
    """List the endpoints."""
    table = Table("id", "url", "events", "active")
    with CliState.database().transaction() as session:
        for e in webhooks.list_endpoints(session):
            events = ", ".join(e.event_types) or "all"
            table.add_row(str(e.id), e.url, events, "yes" if e.active else "no")
    out.print(table)


@app.command("disable")
def disable_command(endpoint_id: Annotated[uuid.UUID, typer.Argument(help="Endpoint id.")]) -> None:
    """Stop sending events to an endpoint (its delivery log is kept)."""
    now = SYSTEM_CLOCK.now()
    with CliState.database().transaction() as session:
        webhooks.disable_endpoint(session, endpoint_id)
        audit.record(
            session, now, audit.CLI_ACTOR, "webhooks.disable", "webhook_endpoint", str(endpoint_id)
        )
    out.print(f"Endpoint {endpoint_id} disabled.")


@app.command("deliveries")
def deliveries_command(
    endpoint_id: Annotated[uuid.UUID, typer.Argument(help="Endpoint id.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
) -> None:
    """The delivery log of an endpoint, newest first."""
    table = Table("delivery", "event", "status", "attempts", "last code", "last error", "next")
    with CliState.database().transaction() as session:
        for d in webhooks.list_deliveries(session, endpoint_id, limit):
            table.add_row(
                str(d.id), d.event_type, d.status, str(d.attempts),
                str(d.last_status_code or ""), d.last_error or "",
                d.next_attempt_at.isoformat() if d.status == "pending" else "",
            )  # fmt: skip
    out.print(table)
