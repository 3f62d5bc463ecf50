"""`parcours demo`: the demo retailer, generated and served."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from parcours.core.commandline import CliState
from parcours.core.migrate import upgrade
from parcours.runtime import run_server

app = typer.Typer(help="Run or generate the demo retailer.", invoke_without_command=True)
out = Console()

Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same retailer.")]
Size = Annotated[
    str, typer.Option(help="tiny (300 customers), small (2,000), medium (50k) or large (500k).")
]
AsOf = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help="Last day of the simulated history (default: today)."),
]


def _generate(seed: int, size: str, as_of: datetime | None) -> None:
    from parcours.demo.generator import SIZES, generate  # Faker loads only when needed

    if size not in SIZES:
        raise typer.BadParameter(f"choose one of {', '.join(SIZES)}", param_hint="--size")
    db = CliState.database()
    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=out) as bar:

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done)

        now = as_of.replace(tzinfo=UTC) if as_of else None
        report = generate(
            db, seed=seed, size=size, now=now, progress=progress, settings=CliState.settings()
        )
    table = Table("what", "count")
    for name, value in report.items():
        table.add_row(name, str(value))
    out.print(table)


@app.callback()
def demo(
    ctx: typer.Context,
    seed: Seed = 42,
    size: Size = "small",
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Initialise the database, generate the demo retailer if it is empty, and serve it."""
    if ctx.invoked_subcommand is not None:
        return
    from parcours.demo.generator import DEMO_PASSWORD, demo_is_present

    db = CliState.database(migrated=False)
    upgrade(db)
    if demo_is_present(db):
        out.print("Demo data already present: serving it.")
    else:
        _generate(seed, size, None)
    settings = CliState.settings()
    out.print(
        f"\n[bold]Console:[/bold] http://{host or settings.host}:{port or settings.port}/console/"
        f"\n[bold]Log in:[/bold] admin / {DEMO_PASSWORD}  (also marketing, vendeur)\n"
    )
    run_server(host, port)


@app.command("generate")
def generate_command(seed: Seed = 42, size: Size = "small", as_of: AsOf = None) -> None:
    """Fill an empty, initialised database with the demo retailer."""
    _generate(seed, size, as_of)
