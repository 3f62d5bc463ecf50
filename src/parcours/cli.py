"""The `parcours` command line: init, serve, worker, demo, keys, users."""

from __future__ import annotations

import sys
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError

from parcours import (
    __version__,
    analytics,
    catalog,
    customers,
    engagement,
    inventory,
    loyalty,
    orders,
    registry,
    segments,
    stores,
)
from parcours.core import auth
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState
from parcours.core.db import DatabaseUnavailable, safe_url
from parcours.core.errors import ParcoursError
from parcours.core.events import consumer_status, drain, run_due_jobs, run_worker
from parcours.core.migrate import upgrade
from parcours.core.settings import SettingsError
from parcours.core.webhooks_cli import app as webhooks_app
from parcours.demo.cli import app as demo_app
from parcours.runtime import run_server

app = typer.Typer(
    name="parcours",
    help="Parcours: one customer, one catalogue, one stock and one voice on every channel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Manage console users.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(demo_app, name="demo")
app.add_typer(inventory.cli_app(), name="inventory")
app.add_typer(stores.cli_app(), name="stores")
app.add_typer(catalog.cli_app(), name="catalog")
app.add_typer(customers.cli_app(registry.personal_data_handlers), name="customers")
app.add_typer(orders.cli_app(), name="orders")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(segments.cli_app(), name="segments")
app.add_typer(engagement.cli_app(), name="engagement")
app.add_typer(loyalty.cli_app(), name="loyalty")
for _name, _group in analytics.cli_apps().items():
    app.add_typer(_group, name=_name)

out = Console()
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"parcours {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Parcours command line."""


@app.command()
def init() -> None:
    """Create or upgrade the database schema (idempotent; safe to run twice at once)."""
    db = CliState.database(migrated=False)
    before, after = upgrade(db)
    where = safe_url(str(db.engine.url))
    if before == after:
        out.print(f"Database at {where} is already up to date (revision {after}).")
    else:
        out.print(f"Database at {where} migrated from {before or 'empty'} to {after}.")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (PARCOURS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (PARCOURS_PORT).")] = None,
    worker: Annotated[
        bool | None, typer.Option("--worker/--no-worker", help="Run event consumers in-process.")
    ] = None,
) -> None:
    """Serve the API and the console."""
    run_server(host, port, worker)


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Process what is pending, then exit.")] = False,
    status: Annotated[bool, typer.Option(help="Show each consumer's position and lag.")] = False,
) -> None:
    """Run the event consumers (segments, journeys, profiles…) until interrupted."""
    from parcours.core.logs import configure_logging

    settings = CliState.settings()
    db = CliState.database()
    consumers = registry.consumers()
    if status:
        table = Table("consumer", "position", "lag", "last error")
        with db.transaction() as session:
            for row in consumer_status(session, consumers):
                table.add_row(row.consumer, str(row.position), str(row.lag), row.last_error or "")
        out.print(table if consumers else "No consumer is registered yet.")
        return
    if once:
        moved = drain(db, consumers, SYSTEM_CLOCK)
        done = run_due_jobs(db, SYSTEM_CLOCK, registry.periodic_jobs(), 0.0)
        out.print(f"Processed {moved} event positions and {done} periodic job items.")
        return
    configure_logging(settings.log_level, settings.log_format)
    stop = threading.Event()
    try:
        run_worker(
            db, consumers, SYSTEM_CLOCK, stop, settings.worker_poll_s, registry.periodic_jobs()
        )
    except KeyboardInterrupt:
        stop.set()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key, e.g. 'web shop'.")],
    kind: Annotated[str, typer.Option(help="write (public, tracking only) or secret.")] = "secret",
    scope: Annotated[
        list[str] | None, typer.Option(help="Scope of a secret key; repeat for several.")
    ] = None,
    store: Annotated[list[str] | None, typer.Option(help="Limit the key to a store code.")] = None,
) -> None:
    """Create an API key and print its secret once."""
    db = CliState.database()
    with db.transaction() as session:
        issued = auth.create_api_key(
            session, SYSTEM_CLOCK.now(), CLI_ACTOR, name, kind, scope or [], store or []
        )
    out.print(f"Created {issued.kind} key {issued.name!r} with scopes {', '.join(issued.scopes)}.")
    out.print("Copy the key now, it will not be shown again:")
    print(issued.secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (prefixes only; secrets are never stored)."""
    db = CliState.database()
    table = Table("prefix", "name", "kind", "scopes", "created", "revoked")
    table.columns[0].no_wrap = True  # the prefix is what `keys revoke` needs: never cut it
    with db.transaction() as session:
        for key in auth.list_api_keys(session):
            table.add_row(
                key.prefix,
                key.name,
                key.kind,
                ", ".join(key.scopes),
                key.created_at.isoformat(timespec="seconds"),
                key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
            )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, e.g. sk_1a2b3c4d5e6f.")],
) -> None:
    """Revoke an API key; requests using it are refused from now on."""
    db = CliState.database()
    with db.transaction() as session:
        auth.revoke_api_key(session, SYSTEM_CLOCK.now(), CLI_ACTOR, prefix)
    out.print(f"Revoked {prefix}.")


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin, marketer or staff.")] = "admin",
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters."
        ),
    ] = "",
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    store: Annotated[
        list[str] | None, typer.Option(help="Store code (staff); repeat for several.")
    ] = None,
    locale: Annotated[str | None, typer.Option(help="Console language: fr or en.")] = None,
) -> None:
    """Create a console user."""
    db = CliState.database()
    with db.transaction() as session:
        user = auth.create_user(
            session,
            SYSTEM_CLOCK.now(),
            CLI_ACTOR,
            username,
            password,
            role,
            name,
            store or [],
            locale,
        )
    out.print(f"Created {user.role} {user.username!r}.")


@users_app.command("list")
def users_list() -> None:
    """List console users."""
    db = CliState.database()
    table = Table("user name", "name", "role", "stores", "active")
    with db.transaction() as session:
        for user in auth.list_users(session):
            table.add_row(
                user.username,
                user.display_name,
                user.role,
                ", ".join(user.store_ids),
                str(user.active),
            )
    out.print(table)


@users_app.command("set-password")
def users_set_password(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters."
        ),
    ] = "",
) -> None:
    """Set a user's password and end their open sessions."""
    db = CliState.database()
    with db.transaction() as session:
        auth.set_password(session, SYSTEM_CLOCK.now(), CLI_ACTOR, username, password)
    out.print(f"Password of {username!r} changed; their sessions were closed.")


def main() -> None:
    """Entry point: turn every expected failure into one clear line and an exit code."""
    try:
        app()
    except SettingsError as exc:
        err.print(f"[red]Configuration error[/red] — {exc}", highlight=False)
        sys.exit(2)
    except DatabaseUnavailable as exc:
        err.print(
            f"[red]Database unavailable[/red] — {exc}\n"
            "Check PARCOURS_DATABASE_URL and that the server is running.",
            highlight=False,
        )
        sys.exit(3)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        err.print(f"[red]Database error[/red] — {reason}", highlight=False)
        sys.exit(3)
    except ParcoursError as exc:
        err.print(f"[red]Error[/red] — {exc.detail}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
