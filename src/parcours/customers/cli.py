"""`parcours customers …`: imports, matching, export and erasure from the command line."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from parcours.core.commandline import CliState, print_row_errors
from parcours.core.imports import RowError
from parcours.customers.privacy import PersonalDataHandler

app = typer.Typer(help="Customer profiles: import, match, export, erase.", no_args_is_help=True)
_out = Console()


# ------------------------------------------------------------------ import, export, erase
# (owner: imports.py, privacy.py)

_WIRING: dict[str, Callable[[], Sequence[PersonalDataHandler]]] = {"handlers": tuple}


def use_personal_data_handlers(factory: Callable[[], Sequence[PersonalDataHandler]]) -> None:
    """Wire the other contexts' part of exports and erasures (the registry calls this)."""
    _WIRING["handlers"] = factory


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV or JSON customer file.")],
    source: Annotated[
        str, typer.Option("--source", help="Name of the file's origin, e.g. pos_lyon, web.")
    ],
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="COLUMN=FIELD, repeatable (e.g. --map 'Code postal=postcode')."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="Named mapping: pos_loyalty, web_accounts or call_centre_crm."),
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="csv or json (default: from the extension).")
    ] = None,
    keep_good_rows: Annotated[
        bool, typer.Option("--keep-good-rows", help="Import the good rows, report the bad ones.")
    ] = False,
    errors: Annotated[
        Path | None, typer.Option("--errors", help="Write the row-level error report (CSV) here.")
    ] = None,
    chunk_size: Annotated[int, typer.Option(help="Rows per committed chunk.")] = 1000,
) -> None:
    """Import a customer file through the identity graph (resumable; all-or-nothing)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from parcours.core import imports as core_imports
    from parcours.core.audit import CLI_ACTOR
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.customers import imports

    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    plan = imports.ImportPlan(
        source=source,
        fmt=core_imports.format_of(file, format),
        mapping=imports.parse_mapping(mapping or []),
        preset=preset,
        keep_good_rows=keep_good_rows,
        chunk_size=chunk_size,
    )
    db = CliState.database()
    columns = (
        TextColumn("import"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=_out) as bar, file.open("rb") as stream:
            task = bar.add_task("import", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = imports.import_customers(
                db, SYSTEM_CLOCK, CLI_ACTOR, stream, file.name, plan, progress
            )
    except core_imports.ImportRejected as exc:
        _print_row_errors(exc.row_errors, errors)
        raise
    if report.already_done:
        _out.print(f"{file.name} was already imported with these settings: nothing to do.")
    elif report.resumed_from:
        _out.print(f"Resumed after row {report.resumed_from} of {report.rows_total}.")
    _out.print(
        f"Imported {report.rows_imported} of {report.rows_total} rows from {file.name} "
        f"(source import:{report.source}); {report.rows_rejected} rejected."
    )
    if report.rows_rejected:
        with db.transaction() as session:
            every_error = imports.import_errors(session, report.id)
        _print_row_errors(every_error, errors)
        raise typer.Exit(1)


def _print_row_errors(row_errors: list[RowError], target: Path | None) -> None:
    from parcours.customers import imports

    print_row_errors(_out, row_errors)
    if target is not None:
        with target.open("w", encoding="utf-8", newline="") as stream:
            imports.write_error_report(row_errors, stream)
        _out.print(f"Error report written to {target}.")


@app.command("export")
def export_command(
    customer_id: Annotated[uuid.UUID, typer.Argument(help="The profile id.")],
    out: Annotated[Path, typer.Option("--out", help="Zip file to write (JSON + CSV).")],
) -> None:
    """Write everything Parcours holds about a person (subject access request)."""
    from parcours.core.audit import CLI_ACTOR
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.customers import privacy

    db = CliState.database()
    with db.transaction() as session:
        export = privacy.export_person(
            session, SYSTEM_CLOCK.now(), CLI_ACTOR, customer_id, _WIRING["handlers"]()
        )
    out.write_bytes(privacy.export_zip(export))
    rows = sum(len(r) for r in export.tables.values())
    _out.print(f"Wrote {rows} rows in {len(export.tables)} tables to {out}.")


@app.command("erase")
def erase_command(
    customer_id: Annotated[uuid.UUID, typer.Argument(help="The profile id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    reason: Annotated[
        str, typer.Option(help="Why (kept with the proof of erasure; no personal data).")
    ] = "request of the person",
) -> None:
    """Erase a person everywhere (right to erasure); cannot be undone."""
    from parcours.core.audit import CLI_ACTOR
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.customers import privacy

    db = CliState.database()
    if not yes:
        typer.confirm(
            f"Erase customer {customer_id} everywhere? This cannot be undone.", abort=True
        )
    with db.transaction() as session:
        report = privacy.erase_person(
            session, SYSTEM_CLOCK.now(), CLI_ACTOR, customer_id, _WIRING["handlers"](), reason
        )
    counts = ", ".join(f"{name} {count}" for name, count in report.counts.items())
    _out.print(
        f"Customer {customer_id} erased ({counts}); {report.tombstones} identifiers blocked.",
        soft_wrap=True,  # one line however many contexts report, so scripts can read it
    )


# ------------------------------------------------------------------ profiles
# (owner: profile_traits.py)


@app.command("refresh-traits")
def refresh_traits_command(
    profile: Annotated[
        list[uuid.UUID] | None,
        typer.Option("--profile", help="Refresh only this profile id (repeatable)."),
    ] = None,
) -> None:
    """Recompute the computed traits and RFM scores now (all profiles, or some)."""
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.customers import profile_traits

    db = CliState.database()
    if profile:
        with db.transaction() as session:
            done = profile_traits.refresh_profiles(session, SYSTEM_CLOCK.now(), profile)
    else:
        done = profile_traits.refresh_everyone(db, SYSTEM_CLOCK)
    _out.print(f"Computed traits refreshed for {done} profiles.")


# ------------------------------------------------------------------ matching
# (owner: matching.py, matching_files.py)

_MATCH_MAP_HELP = "COLUMN=FIELD, repeatable; several columns for one field are joined."
_BLOCKING_HELP = (
    "Fields that must agree for a pair to be compared, comma-separated; repeatable "
    "(default: pairs of personal fields, see docs/matching.md)."
)


def _refuse(message: str) -> typer.Exit:
    """Bad input to a matching command: one line on stderr, exit code 2."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]Error[/red] — {message}")
    return typer.Exit(2)


@app.command("match")
def match_command(
    file_a: Annotated[Path, typer.Argument(help="CSV file (A).", show_default=False)],
    id_column: Annotated[str, typer.Option("--id-column", help="Column holding each row's id.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write id_a,id_b,probability.")],
    file_b: Annotated[
        Path | None, typer.Argument(help="CSV file to link with A; without it, A is de-duplicated.")
    ] = None,
    id_column_b: Annotated[
        str | None, typer.Option("--id-column-b", help="B's id column, if named otherwise.")
    ] = None,
    threshold: Annotated[float, typer.Option(help="Lowest match probability written (0-1).")] = 0.9,
    engine: Annotated[str, typer.Option(help="duckdb (embedded) or spark (local mode).")] = (
        "duckdb"
    ),
    blocking: Annotated[list[str] | None, typer.Option("--blocking", help=_BLOCKING_HELP)] = None,
    mapping: Annotated[list[str] | None, typer.Option("--map", help=_MATCH_MAP_HELP)] = None,
    training: Annotated[
        str, typer.Option(help="auto (EM from 1,000 records), em, or priors.")
    ] = "auto",
    seed: Annotated[
        int, typer.Option(help="Seed of the random sampling (same seed, same pairs).")
    ] = 42,
    details: Annotated[
        bool, typer.Option("--details", help="Also write each field's agreement.")
    ] = False,
) -> None:
    """Link two files of people (or de-duplicate one) by probabilistic matching."""
    from parcours.core.errors import InvalidInput
    from parcours.customers import matching_files
    from parcours.customers.matching_engine import EngineOptions

    try:
        options = EngineOptions(
            threshold=threshold,
            blocking=matching_files.parse_blocking(blocking or []),
            engine=engine,
            training=training,
            seed=seed,
        )
        result = matching_files.match_files(
            file_a,
            file_b,
            id_column,
            out,
            options,
            matching_files.parse_mapping(mapping or []),
            id_column_b,
            details,
        )
    except InvalidInput as exc:
        raise _refuse(exc.detail) from None
    for item in result.inputs:
        columns = "; ".join(f"{f} ← {' + '.join(c)}" for f, c in item.mapping.items())
        _out.print(f"{item.name}: {item.records} rows; {columns}", highlight=False)
    scored = result.scored
    how = "weights learnt by EM" if scored.trained else "prior weights (small input)"
    _out.print(
        f"Compared on {', '.join(scored.fields)}; blocking "
        f"{' | '.join(','.join(rule) for rule in scored.blocking)}; {how}.",
        highlight=False,
    )
    _out.print(
        f"{len(scored.pairs)} pairs at or above {threshold} written to {out} "
        f"in {scored.seconds:.1f} s.",
        highlight=False,
    )


@app.command("match-profiles")
def match_profiles_command(
    source_a: Annotated[
        str | None, typer.Option("--source-a", help="Source of one side, e.g. import:pos.")
    ] = None,
    source_b: Annotated[
        str | None, typer.Option("--source-b", help="Source of the other side, e.g. web.")
    ] = None,
    lower: Annotated[float, typer.Option(help="Pairs from this probability are reviewed.")] = 0.5,
    upper: Annotated[
        float, typer.Option(help="Pairs from this probability are sure (merged with --auto-merge).")
    ] = 0.95,
    auto_merge: Annotated[
        bool, typer.Option("--auto-merge", help="Merge the sure pairs without review.")
    ] = False,
    engine: Annotated[str, typer.Option(help="duckdb or spark.")] = "duckdb",
    blocking: Annotated[list[str] | None, typer.Option("--blocking", help=_BLOCKING_HELP)] = None,
    training: Annotated[str, typer.Option(help="auto, em or priors.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the random sampling.")] = 42,
) -> None:
    """Match the profiles of two sources (or all profiles) and fill the review queue."""
    from parcours.core.audit import CLI_ACTOR
    from parcours.core.clock import SYSTEM_CLOCK
    from parcours.core.errors import InvalidInput
    from parcours.customers import matching, matching_files

    try:
        request = matching.RunRequest(
            source_a=source_a,
            source_b=source_b,
            lower=lower,
            upper=upper,
            auto_merge=auto_merge,
            engine=engine,
            blocking=matching_files.parse_blocking(blocking or []),
            training=training,
            seed=seed,
        )
        db = CliState.database()
        with db.transaction() as session:
            run = matching.run_matching(session, SYSTEM_CLOCK.now(), CLI_ACTOR, request)
            figures = (
                f"{run.profiles_a} + {run.profiles_b} profiles"
                if run.source_a
                else f"{run.profiles_a} profiles"
            )
            summary = (
                f"Run {run.id}: {figures} compared; {run.pairs_found} pairs from {lower}, "
                f"{run.pairs_known} already proposed before; {run.queued} queued for review, "
                f"{run.merged} merged, {run.merge_refused} merges refused by the identity "
                f"rules ({run.seconds:.1f} s)."
            )
    except InvalidInput as exc:
        details = "; ".join(e.detail for e in exc.errors) if exc.errors else ""
        raise _refuse(f"{exc.detail} {details}".strip()) from None
    _out.print(summary, highlight=False)
