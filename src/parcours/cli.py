"""The `parcours` command line: init, serve, worker, demo, keys, users.

Starting it must stay quick (every command, `--version` and `--help` included, pays for
it): this module imports no context at load time. Each context's command group is
loaded when it is run (see `_GROUPS`); the commands below import what they use.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup
from typer.main import get_group_from_info
from typer.models import TyperInfo

from parcours import __version__

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter


def _demo() -> typer.Typer:
    from parcours.demo.cli import app as demo_app

    return demo_app


def _inventory() -> typer.Typer:
    from parcours import inventory

    return inventory.cli_app()


def _stores() -> typer.Typer:
    from parcours import stores

    return stores.cli_app()


def _catalog() -> typer.Typer:
    from parcours import catalog

    return catalog.cli_app()


def _customers() -> typer.Typer:
    from parcours import customers, registry

    return customers.cli_app(registry.personal_data_handlers)


def _orders() -> typer.Typer:
    from parcours import orders

    return orders.cli_app()


def _webhooks() -> typer.Typer:
    from parcours.core.webhooks_cli import app as webhooks_app

    return webhooks_app


def _segments() -> typer.Typer:
    from parcours import segments

    return segments.cli_app()


def _engagement() -> typer.Typer:
    from parcours import engagement

    return engagement.cli_app()


def _journeys() -> typer.Typer:
    from parcours import journeys

    return journeys.cli_app()


def _loyalty() -> typer.Typer:
    from parcours import loyalty

    return loyalty.cli_app()


def _analytics(name: str) -> Callable[[], typer.Typer]:
    def load() -> typer.Typer:
        from parcours import analytics

        return analytics.cli_apps()[name]

    return load


#: The command groups loaded on demand, in the order `parcours --help` lists them: name,
#: help (shown by `parcours --help` without loading the group; tests/test_cli.py checks it
#: is the group's own) and the function returning the group.
_GROUPS: dict[str, tuple[str, Callable[[], typer.Typer]]] = {
    "demo": ("Run or generate the demo retailer.", _demo),
    "inventory": ("Stock: counts from store files and stock per location.", _inventory),
    "stores": ("The store network: list, locate, import.", _stores),
    "catalog": ("Import and export the product catalogue.", _catalog),
    "customers": ("Customer profiles: import, match, export, erase.", _customers),
    "orders": ("Orders: marketplace imports, POS receipt files.", _orders),
    "webhooks": ("Signed outgoing webhooks: endpoints and deliveries.", _webhooks),
    "segments": ("Segments: define, preview, refresh and export audiences.", _segments),
    "engagement": ("Messages and campaigns on every channel.", _engagement),
    "journeys": ("Automated customer journeys.", _journeys),
    "loyalty": ("Promotions, promo codes and the loyalty programme.", _loyalty),
    "analytics": (
        "KPIs, funnels, paths, attribution, cohorts and lifetime value.",
        _analytics("analytics"),
    ),
    "export": ("Export data for analytics engines.", _analytics("export")),
    "import": ("Import history from other systems.", _analytics("import")),
}


class _Deferred(TyperGroup):
    """Stands for a group of `_GROUPS` until it is loaded: its name and help only."""


class _RootGroup(TyperGroup):
    """The root group: the groups of `_GROUPS` are loaded the first time they are asked
    for (to run them, complete them or show their help), not to list them in `--help`."""

    def __init__(self, **attrs: object) -> None:
        super().__init__(**attrs)  # type: ignore[arg-type]
        self._listing = False
        for name, (help_text, _) in _GROUPS.items():
            self.commands[name] = _Deferred(name=name, help=help_text)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Deferred) and not self._listing:
            command = self.commands[cmd_name] = self._load(cmd_name)
        return command

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def _load(self, name: str) -> TyperGroup:
        group = _GROUPS[name][1]()
        return get_group_from_info(
            TyperInfo(group, name=name),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            suggest_commands=app.suggest_commands,
        )


app = typer.Typer(
    name="parcours",
    help="Parcours: one customer, one catalogue, one stock and one voice on every channel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_RootGroup,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Manage console users.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")

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
    from parcours.core.commandline import CliState
    from parcours.core.db import safe_url
    from parcours.core.migrate import upgrade

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
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the port (more than 1: run `parcours worker` "
            "alongside for the event consumers).",
        ),
    ] = 1,
) -> None:
    """Serve the API and the console."""
    from parcours.runtime import run_server

    run_server(host, port, worker, processes)


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Process what is pending, then exit.")] = False,
    status: Annotated[bool, typer.Option(help="Show each consumer's position and lag.")] = False,
) -> None:
    """Run the event consumers (segments, journeys, profiles…) until interrupted."""
    from parcours import registry
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.core.commandline import CliState
    from parcours.core.events import consumer_status, drain, run_due_jobs, run_worker
    from parcours.core.logs import configure_logging

    settings = CliState.settings()
    db = CliState.database()
    consumers = registry.consumers()
    if status:
        from parcours import customers

        table = Table("consumer", "position", "lag", "last error")
        with db.transaction() as session:
            readers = customers.log_readers(session)
            for row in consumer_status(session, consumers):
                table.add_row(row.consumer, str(row.position), str(row.lag), row.last_error or "")
        out.print(table if consumers else "No consumer is registered yet.")
        if readers:
            logged = Table("tracking log reader", "position", "lag", "last error")
            for row in readers:
                logged.add_row(row.consumer, str(row.position), str(row.lag), row.last_error or "")
            out.print(logged)
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
    from parcours.core import auth
    from parcours.core.audit import CLI_ACTOR
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.core.commandline import CliState

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
    from parcours.core import auth
    from parcours.core.commandline import CliState

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
    from parcours.core import auth
    from parcours.core.audit import CLI_ACTOR
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.core.commandline import CliState

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
    from parcours.core import auth
    from parcours.core.audit import CLI_ACTOR
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.core.commandline import CliState

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
    from parcours.core import auth
    from parcours.core.commandline import CliState

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
    from parcours.core import auth
    from parcours.core.audit import CLI_ACTOR
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.core.commandline import CliState

    db = CliState.database()
    with db.transaction() as session:
        auth.set_password(session, SYSTEM_CLOCK.now(), CLI_ACTOR, username, password)
    out.print(f"Password of {username!r} changed; their sessions were closed.")


def main() -> None:
    """Entry point: turn every expected failure into one clear line and an exit code."""
    try:
        app()
    except Exception as exc:
        code = _explained(exc)
        if code is None:
            raise
        sys.exit(code)


def _explained(exc: Exception) -> int | None:
    """Print an expected failure as one line and return its exit code (None when the
    failure is unexpected). The exception types are imported here, not at start-up:
    they bring SQLAlchemy and pydantic."""
    from sqlalchemy.exc import OperationalError

    from parcours.core.db import DatabaseUnavailable
    from parcours.core.errors import ParcoursError
    from parcours.core.settings import SettingsError

    if isinstance(exc, SettingsError):
        err.print(f"[red]Configuration error[/red] — {exc}", highlight=False)
        return 2
    if isinstance(exc, DatabaseUnavailable):
        err.print(
            f"[red]Database unavailable[/red] — {exc}\n"
            "Check PARCOURS_DATABASE_URL and that the server is running.",
            highlight=False,
        )
        return 3
    if isinstance(exc, OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        err.print(f"[red]Database error[/red] — {reason}", highlight=False)
        return 3
    if isinstance(exc, ParcoursError):
        err.print(f"[red]Error[/red] — {exc.detail}", highlight=False)
        return 1
    return None


if __name__ == "__main__":
    main()
