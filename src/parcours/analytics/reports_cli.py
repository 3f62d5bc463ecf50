"""`parcours analytics reports …`: who receives the weekly or monthly KPI email."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState

out = Console()
reports_app = typer.Typer(
    help="Scheduled report emails: add, list, remove subscriptions; send the due ones.",
    no_args_is_help=True,
)


@reports_app.command("add")
def add_command(
    email: Annotated[str, typer.Argument(help="Who receives the report.")],
    every: Annotated[str, typer.Option("--every", help="weekly or monthly.")] = "weekly",
    locale: Annotated[str, typer.Option("--locale", help="fr or en.")] = "fr",
    channel: Annotated[str, typer.Option("--channel", help="Only this channel.")] = "",
    store: Annotated[str, typer.Option("--store", help="Only this store (code).")] = "",
) -> None:
    """Send EMAIL the KPI report of each past week (Monday to Sunday) or month."""
    from parcours.analytics.reports import subscribe
    from parcours.core.audit import CLI_ACTOR

    with CliState.database().transaction() as session:
        subscription = subscribe(
            session,
            email,
            every,
            locale=locale,
            channel=channel,
            store=store,
            created_by=CLI_ACTOR.label,
            now=SYSTEM_CLOCK.now(),
        )
        out.print(f"Subscribed {subscription.email} ({every}); id {subscription.id}.")


@reports_app.command("list")
def list_command() -> None:
    """List the report subscriptions."""
    from parcours.analytics.reports import subscriptions

    table = Table("id", "email", "every", "locale", "channel", "store", "last period sent")
    with CliState.database().transaction() as session:
        for s in subscriptions(session):
            table.add_row(
                str(s.id), s.email, s.frequency, s.locale, s.channel, s.store,
                s.last_period_start.isoformat(),
            )  # fmt: skip
    out.print(table)


@reports_app.command("remove")
def remove_command(subscription_id: Annotated[str, typer.Argument(help="Its id.")]) -> None:
    """Stop a subscription."""
    from parcours.analytics.reports import unsubscribe

    try:
        key = uuid.UUID(subscription_id)
    except ValueError:
        raise typer.BadParameter("not a subscription id", param_hint="ID") from None
    with CliState.database().transaction() as session:
        unsubscribe(session, key)
    out.print("Removed.")


@reports_app.command("send-due")
def send_due_command() -> None:
    """Send the reports whose period is over now (the worker does this every hour)."""
    from parcours.analytics.reports import send_due_reports
    from parcours.core.mail import mailer_for

    settings = CliState.settings()
    sent = send_due_reports(CliState.database(), SYSTEM_CLOCK, mailer_for(settings), settings)
    out.print(f"Sent {sent} report(s).")


def register(analytics_app: typer.Typer, export_app: typer.Typer, import_app: typer.Typer) -> None:
    """Add `parcours analytics reports`."""
    analytics_app.add_typer(reports_app, name="reports")
