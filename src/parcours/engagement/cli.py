"""The `parcours engagement` command group: templates, sends, the contact policy and
campaigns."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState
from parcours.core.errors import FieldError, InvalidInput

out = Console()
app = typer.Typer(help="Messages and campaigns on every channel.", no_args_is_help=True)
templates_app = typer.Typer(help="Message templates: add, list, preview.", no_args_is_help=True)
campaigns_app = typer.Typer(
    help="Campaigns: create, schedule, list, results.", no_args_is_help=True
)
policy_app = typer.Typer(help="Frequency caps and quiet hours per channel.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(policy_app, name="policy")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold one JSON object.")
    return data


# ------------------------------------------------------------------ templates


@templates_app.command("add")
def add_template(
    file: Annotated[Path, typer.Argument(help="JSON: {key, channel, kind, content}.")],
) -> None:
    """Save a template from FILE.json (checked; a changed content makes a new version)."""
    from parcours.engagement.templates_service import TemplateInput, save_template

    data = _read_json(file)
    template = TemplateInput(
        str(data.get("key", "")), str(data.get("channel", "")), str(data.get("kind", "")),
        dict(data.get("content") or {}),
    )  # fmt: skip
    with CliState.database().transaction() as session:
        saved = save_template(session, SYSTEM_CLOCK.now(), template, CLI_ACTOR.label)
    out.print(f"Template {saved.key} saved: version {saved.version}.")


@templates_app.command("list")
def list_templates() -> None:
    """List the templates at their current version."""
    from parcours.engagement.templates_service import list_templates as listed

    table = Table("key", "channel", "kind", "version", "updated")
    with CliState.database().transaction() as session:
        for t in listed(session):
            table.add_row(t.key, t.channel, t.kind, str(t.version), t.updated_at.isoformat())
    out.print(table)


@templates_app.command("preview")
def preview_template(
    key: Annotated[str, typer.Argument(help="The template's key.")],
    profile: Annotated[uuid.UUID, typer.Option("--profile", help="A customer profile id.")],
) -> None:
    """Render KEY for a real profile, as it would be sent now (nothing is sent)."""
    from parcours.engagement.sending import preview_message

    settings = CliState.settings()
    with CliState.database().transaction() as session:
        rendered = preview_message(
            session, SYSTEM_CLOCK.now(), CLI_ACTOR, key, profile, {},
            settings.resolved_public_url, settings.timezone,
        )  # fmt: skip
    out.print(f"[bold]locale[/bold] {rendered.locale}")
    for name, text in rendered.parts.items():
        out.print(f"[bold]{name}[/bold]")
        out.print(text, markup=False)


# ------------------------------------------------------------------ sending


@app.command("send")
def send(
    key: Annotated[str, typer.Argument(help="The template's key.")],
    profile: Annotated[uuid.UUID, typer.Option("--profile", help="A customer profile id.")],
    idempotency_key: Annotated[
        str, typer.Option("--key", help="Run again with the same key: sent only once.")
    ],
    promo_code: Annotated[str, typer.Option("--promo-code", help="The promo_code variable.")] = "",
) -> None:
    """Send one message through every rule (consent, caps, quiet hours)."""
    from parcours.engagement.channels import Outlets
    from parcours.engagement.sending import SendRequest, send_message

    extras = {"promo_code": promo_code} if promo_code else {}
    request = SendRequest(profile, key, f"cli:{idempotency_key}", None, extras, "cli")
    with CliState.database().transaction() as session:
        outcome = send_message(
            session, SYSTEM_CLOCK.now(), request, Outlets.from_settings(CliState.settings())
        )
    when = f" until {outcome.scheduled_for.isoformat()}" if outcome.scheduled_for else ""
    replay = " (already done with this key)" if outcome.replayed else ""
    out.print(
        f"Delivery {outcome.delivery_id}: {outcome.status}{when}"
        f"{' — ' + outcome.reason if outcome.reason else ''}{replay}."
    )


# ------------------------------------------------------------------ policy


@policy_app.command("list")
def list_policy() -> None:
    """Show the caps and quiet hours in force on each channel."""
    from parcours.engagement.policy import policies

    table = Table("channel", "max messages", "per days", "quiet hours", "quiet days", "edited")
    with CliState.database().transaction() as session:
        for p in policies(session).values():
            quiet = f"{p.quiet_start}-{p.quiet_end}" if p.quiet_start else ""
            cap = "no cap" if p.max_messages is None else str(p.max_messages)
            table.add_row(p.channel, cap, str(p.period_days), quiet, ",".join(p.quiet_days),
                          "yes" if p.customised else "default")  # fmt: skip
    out.print(table)


@policy_app.command("set")
def set_policy(
    channel: Annotated[str, typer.Argument(help="email, sms, push or webhook.")],
    max_messages: Annotated[
        int | None, typer.Option("--max", help="Marketing messages per period (omit: no cap).")
    ] = None,
    days: Annotated[int, typer.Option("--days", help="The period, in days.")] = 7,
    quiet: Annotated[
        str, typer.Option("--quiet", help="Local quiet hours, e.g. 21:00-08:00.")
    ] = "",
    quiet_days: Annotated[
        str, typer.Option("--quiet-days", help="Days without sends, e.g. sun.")
    ] = "",
) -> None:
    """Replace a channel's frequency cap and quiet hours."""
    from parcours.engagement.policy import Policy
    from parcours.engagement.policy import set_policy as save

    start, _, end = quiet.partition("-")
    if quiet and not end:
        raise InvalidInput(
            "Write quiet hours as START-END.", [FieldError("e.g. 21:00-08:00", parameter="--quiet")]
        )
    days_off = tuple(d.strip() for d in quiet_days.split(",") if d.strip())
    wanted = Policy(channel, max_messages, days, start or None, end or None, days_off)
    with CliState.database().transaction() as session:
        saved = save(session, SYSTEM_CLOCK.now(), CLI_ACTOR.label, wanted)
    out.print(f"Policy of {saved.channel} saved.")


# ------------------------------------------------------------------ campaigns


def _schedule_values(at: str, local: str) -> tuple[datetime | None, date | None, str | None]:
    if at:
        return datetime.fromisoformat(at.replace("Z", "+00:00")), None, None
    if local:
        day, _, hour = local.partition(" ")
        return None, date.fromisoformat(day), hour or None
    return None, None, None


@campaigns_app.command("create")
def create_campaign(
    file: Annotated[Path, typer.Argument(help="JSON: {name, segment, channel, variants...}.")],
) -> None:
    """Create a campaign from FILE.json (scheduled at once if it has a send time)."""
    from parcours.engagement.campaigns import CampaignInput, Variant, create_campaign

    data = _read_json(file)
    at, local_date, local_time = _schedule_values(
        str(data.get("send_at") or ""),
        f"{data['local_date']} {data.get('local_time', '')}" if data.get("local_date") else "",
    )
    try:
        variants = [Variant(str(v["name"]), str(v["template"]), int(v["percent"]))
                    for v in data.get("variants", [])]  # fmt: skip
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("Each variant needs a name, a template and a percent.") from None
    campaign = CampaignInput(
        str(data.get("name", "")), str(data.get("segment", "")), str(data.get("channel", "")),
        variants, int(data.get("holdout_percent", 0)), at, local_date, local_time,
    )  # fmt: skip
    with CliState.database().transaction() as session:
        made = create_campaign(session, SYSTEM_CLOCK.now(), CLI_ACTOR.label, campaign)
        out.print(f"Campaign {made.id} created: {made.status}.")


@campaigns_app.command("schedule")
def schedule_campaign(
    campaign_id: Annotated[uuid.UUID, typer.Argument(help="The campaign's id.")],
    at: Annotated[str, typer.Option("--at", help="UTC time, e.g. 2026-04-01T08:00Z.")] = "",
    local: Annotated[
        str,
        typer.Option(
            "--local", help="Local date and time in each customer's zone: '2026-04-01 10:00'."
        ),
    ] = "",
) -> None:
    """Schedule a draft campaign at a UTC time or at a local time in each zone."""
    from parcours.engagement.campaigns import schedule_campaign as schedule

    send_at, local_date, local_time = _schedule_values(at, local)
    with CliState.database().transaction() as session:
        found = schedule(session, SYSTEM_CLOCK.now(), campaign_id, send_at, local_date, local_time)
        out.print(f"Campaign {found.id}: {found.status}.")


@campaigns_app.command("list")
def list_campaigns() -> None:
    """List the campaigns, newest first."""
    from parcours.engagement.campaigns import list_campaigns as listed

    table = Table("id", "name", "segment", "channel", "status", "send at", "audience")
    with CliState.database().transaction() as session:
        for c in listed(session):
            when = c.send_at.isoformat() if c.send_at else f"{c.local_date} {c.local_time} local"
            table.add_row(str(c.id), c.name, c.segment, c.channel, c.status, when,
                          str(c.audience_size or ""))  # fmt: skip
    out.print(table)


@campaigns_app.command("results")
def campaign_results(
    campaign_id: Annotated[uuid.UUID, typer.Argument(help="The campaign's id.")],
    days: Annotated[int, typer.Option(help="Conversion window after the send (days).")] = 7,
) -> None:
    """Results per variant: targeted, sent, refused by reason, opened, clicked; then the
    conversions (orders within --days of the send) per variant and for the holdout."""
    from parcours.core.money import Money
    from parcours.engagement.campaigns import results

    with CliState.database().transaction() as session:
        found = results(session, campaign_id, days)
    table = Table("variant", "targeted", "sent", "deferred", "refused", "opened", "clicked")
    for v in found.variants:
        refused = ", ".join(f"{k} {n}" for k, n in sorted(v.refused.items()))
        table.add_row(v.variant, str(v.targeted), str(v.sent), str(v.deferred), refused,
                      str(v.opened), str(v.clicked))  # fmt: skip
    table.add_row("holdout", str(found.held_out), "", "", "", "", "")
    out.print(f"Campaign {found.campaign_id}: {found.status}.")
    out.print(table)
    sales = Table("group", "people", "converted", "rate", "orders", "revenue", "uplift",
                  "p-value", title=f"Conversions within {found.days} days")  # fmt: skip
    for c in found.conversions:
        revenue = ", ".join(str(Money(n, cur)) for cur, n in c.revenue.items())
        sales.add_row(
            c.group, str(c.people), str(c.converted), _percent(c.rate), str(c.orders), revenue,
            "" if c.uplift is None else f"{c.uplift * 100:+.2f} pts",
            "" if c.p_value is None else f"{c.p_value:.3f}",
        )  # fmt: skip
    out.print(sales)


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.2f} %"
