"""The `parcours loyalty` command group: promotions, codes, points and the programme."""

from __future__ import annotations

import csv
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from parcours.core.clock import SYSTEM_CLOCK
from parcours.core.commandline import CliState
from parcours.loyalty import offers, programme, promotions
from parcours.loyalty.promotions import Basket

app = typer.Typer(help="Promotions, promo codes and the loyalty programme.", no_args_is_help=True)
promotions_app = typer.Typer(help="Create and list promotions.", no_args_is_help=True)
codes_app = typer.Typer(help="Generate and check promo codes.", no_args_is_help=True)
settings_app = typer.Typer(help="Show or change the loyalty programme.", no_args_is_help=True)
app.add_typer(promotions_app, name="promotions")
app.add_typer(codes_app, name="codes")
app.add_typer(settings_app, name="settings")
out = Console()


@promotions_app.command("add")
def promotions_add(
    definition: Annotated[
        Path, typer.Argument(help="A JSON file with the promotion (see docs/loyalty.md).")
    ],
) -> None:
    """Create a promotion from a JSON file (the API's fields; cents, UTC)."""
    data: dict[str, Any] = json.loads(definition.read_text(encoding="utf-8"))
    with CliState.database().transaction() as session:
        created = promotions.add_promotion(session, SYSTEM_CLOCK.now(), data)
        out.print(f"Promotion {created.key} created ({created.kind}).")


@promotions_app.command("list")
def promotions_list() -> None:
    """Every promotion with its redemptions."""
    table = Table("key", "kind", "automatic", "active", "redemptions", "discount (cents)")
    with CliState.database().transaction() as session:
        for s in promotions.list_promotions(session):
            p = s.promotion
            table.add_row(
                p.key, p.kind, str(p.automatic), str(p.active), str(s.redemptions),
                str(s.discount_total),
            )  # fmt: skip
    out.print(table)


@codes_app.command("generate")
def codes_generate(
    promotion: Annotated[str, typer.Argument(help="The promotion's key.")],
    count: Annotated[int, typer.Option("--count", help="How many codes.")] = 1,
    prefix: Annotated[str, typer.Option("--prefix", help="Up to 8 symbols.")] = "",
    valid_days: Annotated[int | None, typer.Option("--valid-days", help="Days to expiry.")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the codes as CSV.")] = None,
) -> None:
    """Generate unique single-use codes (printed, or written to --out as CSV)."""
    with CliState.database().transaction() as session:
        batch = offers.generate_codes(
            session, SYSTEM_CLOCK.now(), promotion, count, prefix=prefix, valid_days=valid_days
        )
        listed = offers.batch_codes(session, batch.id)
        if out_file is None:
            writer = csv.writer(sys.stdout)
            writer.writerow(["code"])
            writer.writerows([code] for code in listed)
            return
        with out_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["code"])
            writer.writerows([code] for code in listed)
    Console(stderr=True).print(f"{batch.count:,} codes of {promotion} written to {out_file}.")


@codes_app.command("check")
def codes_check(
    code: Annotated[str, typer.Argument(help="The code as typed.")],
    channel: Annotated[str, typer.Option("--channel")] = "store",
    subtotal: Annotated[int | None, typer.Option("--subtotal", help="Basket in cents.")] = None,
) -> None:
    """Whether a code can be used now (exit code 1 when it cannot)."""
    with CliState.database().transaction() as session:
        basket = Basket(channel=channel, currency="EUR", subtotal_hint=subtotal)
        check = offers.check_code(session, SYSTEM_CLOCK.now(), code, basket)
    if check.valid:
        out.print(f"{check.code}: valid ({check.discount} cents off)")
        return
    out.print(f"{check.code}: {check.message}")
    raise typer.Exit(1)


@app.command("points")
def points(profile_id: Annotated[uuid.UUID, typer.Argument(help="The customer's id.")]) -> None:
    """A member's balance, tier and latest ledger entries."""
    with CliState.database().transaction() as session:
        now = SYSTEM_CLOCK.now()
        status = programme.points_balance(session, now, profile_id)
        entries = programme.recent_entries(session, profile_id, 20)
        out.print(
            f"balance {status.balance} · tier {status.tier['name_en']} · "
            f"expiring within 30 days {status.expiring_soon}"
        )
        table = Table("at", "kind", "points", "reason")
        for e in entries:
            table.add_row(e.created_at.isoformat(), e.kind, str(e.points), e.reason)
    out.print(table)


@app.command("credit-history")
def credit_history(
    since: Annotated[
        datetime,
        typer.Option(formats=["%Y-%m-%d"], help="Credit orders placed from this day (UTC)."),
    ],
) -> None:
    """Credit the points of past orders the ledger does not know yet (an imported history,
    or opening the programme to earlier purchases); running it again credits nothing."""
    with CliState.database().transaction() as session:
        now = SYSTEM_CLOCK.now()
        credited = programme.credit_past_orders(session, now, since.replace(tzinfo=UTC))
    out.print(f"{credited} past orders credited.")


@settings_app.command("show")
def settings_show() -> None:
    """The programme's settings as JSON."""
    with CliState.database().transaction() as session:
        out.print_json(data=programme.programme(session).__dict__)


@settings_app.command("set")
def settings_set(
    points_per_euro: Annotated[int | None, typer.Option("--points-per-euro")] = None,
    expiry_months: Annotated[int | None, typer.Option("--expiry-months")] = None,
    tiers: Annotated[Path | None, typer.Option("--tiers", help="A JSON file of tiers.")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
) -> None:
    """Change the programme's settings."""
    changes: dict[str, Any] = {
        "points_per_euro": points_per_euro,
        "expiry_months": expiry_months,
        "enabled": enabled,
        "tiers": json.loads(tiers.read_text(encoding="utf-8")) if tiers else None,
    }
    with CliState.database().transaction() as session:
        saved = programme.update_programme(session, SYSTEM_CLOCK.now(), changes)
        out.print_json(data=saved.__dict__)
