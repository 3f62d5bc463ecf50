"""Customer file imports: POS loyalty files, web accounts, call-centre CRM exports.

A file (CSV or JSON) is read with a column mapping (`COLUMN=FIELD`, or a named preset),
each row validated and normalised (email, phone in E.164, French postcode, dates), then
fed to the identity graph in chunks (`identity.observe`, source `import:<name>`), so
rows merge with the profiles that already hold their identifiers. Rows carrying an
identifier of an erased person are refused.

By default a file with any bad row imports nothing (`ImportRejected`, as for the
catalogue); with keep-good-rows the good rows go in and the bad ones are reported.
Each chunk commits with a checkpoint of the import (keyed by the file's SHA-256 and the
import's settings): running the same import again after a crash continues after the
last committed chunk, and running a finished one again does nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from typing import IO, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from parcours.core import audit
from parcours.core.audit import Actor
from parcours.core.clock import Clock
from parcours.core.db import Database, bulk_insert
from parcours.core.errors import Conflict, FieldError, InvalidInput, NotFound
from parcours.core.ids import new_id
from parcours.core.imports import MAX_REPORTED, ImportRejected, RowError, read_rows
from parcours.customers import identity, privacy
from parcours.customers.consent import usable_email
from parcours.customers.models import CustomerImport, CustomerImportError

IDENTIFIER_FIELDS = (
    "email",
    "phone",
    "customer_number",
    "loyalty_card",
    "pos_customer_id",
    "user_id",
)
TRAIT_FIELDS = (
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "address",
    "postcode",
    "city",
    "country",
    "locale",
    "store_code",
    "customer_since",
)
FIELDS = IDENTIFIER_FIELDS + TRAIT_FIELDS

# Column names of the usual files, matched without regard to case or accents' absence.
PRESETS: dict[str, dict[str, str]] = {
    "pos_loyalty": {
        "N° carte": "loyalty_card",
        "Carte fidélité": "loyalty_card",
        "Code client": "pos_customer_id",
        "Nom": "last_name",
        "Prénom": "first_name",
        "Civilité": "gender",
        "Email": "email",
        "E-mail": "email",
        "Mobile": "phone",
        "Téléphone": "phone",
        "Adresse": "address",
        "Code postal": "postcode",
        "Ville": "city",
        "Pays": "country",
        "Date de naissance": "birth_date",
        "Magasin": "store_code",
        "Date d'adhésion": "customer_since",
    },
    "web_accounts": {
        "account_id": "user_id",
        "customer_id": "user_id",
        "email": "email",
        "first_name": "first_name",
        "last_name": "last_name",
        "phone": "phone",
        "birthdate": "birth_date",
        "address": "address",
        "zip": "postcode",
        "postcode": "postcode",
        "city": "city",
        "country": "country",
        "language": "locale",
        "created_at": "customer_since",
    },
    "call_centre_crm": {
        "N° client": "customer_number",
        "Numéro client": "customer_number",
        "Nom": "last_name",
        "Prénom": "first_name",
        "Tél": "phone",
        "Téléphone": "phone",
        "Email": "email",
        "Adresse": "address",
        "CP": "postcode",
        "Code postal": "postcode",
        "Ville": "city",
        "Pays": "country",
        "Langue": "locale",
    },
}

DEFAULT_CHUNK = 1000
_POSTCODE_FR = re.compile(r"^\d{5}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")
_MAX_TEXT = 200
ERASED_REFUSAL = "belongs to a person whose data was erased: refused until they give a new consent"

Progress = Callable[[int, int], None]


# ------------------------------------------------------------------ plan


@dataclass(frozen=True)
class ImportPlan:
    """How to read a file: the source name, its format and `column -> field` mapping."""

    source: str
    fmt: str
    mapping: Mapping[str, str] = field(default_factory=dict)
    preset: str | None = None
    keep_good_rows: bool = False
    chunk_size: int = DEFAULT_CHUNK
    region: str = "FR"

    def fingerprint(self) -> str:
        """SHA-256 of what changes the outcome (not the chunk size)."""
        shape = {
            "source": self.source,
            "fmt": self.fmt,
            "mapping": sorted(self.mapping.items()),
            "preset": self.preset,
            "keep_good_rows": self.keep_good_rows,
            "region": self.region,
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """`COLUMN=FIELD` items as a mapping; `InvalidInput` names each bad item."""
    mapping: dict[str, str] = {}
    errors = []
    for index, item in enumerate(items):
        column, sep, target = item.rpartition("=")
        column, target = column.strip(), target.strip()
        if not sep or not column:
            errors.append(FieldError(f"{item!r} is not COLUMN=FIELD", parameter=f"map[{index}]"))
        elif target not in FIELDS:
            errors.append(
                FieldError(
                    f"unknown field {target!r}; known: {', '.join(FIELDS)}",
                    parameter=f"map[{index}]",
                )
            )
        else:
            mapping[column] = target
    if errors:
        raise InvalidInput("The column mapping is invalid.", errors)
    return mapping


def check_plan(plan: ImportPlan) -> None:
    errors = []
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,50}", plan.source):
        errors.append(
            FieldError(
                "a source name is 1-50 letters, digits, '_', '.' or '-' (e.g. pos_lyon)",
                parameter="source",
            )
        )
    if plan.preset is not None and plan.preset not in PRESETS:
        errors.append(
            FieldError(
                f"unknown preset {plan.preset!r}; known: {', '.join(PRESETS)}", parameter="preset"
            )
        )
    unknown = sorted(f for f in plan.mapping.values() if f not in FIELDS)
    if unknown:
        errors.append(FieldError(f"unknown field(s) {', '.join(unknown)}", parameter="map"))
    if not 1 <= plan.chunk_size <= 50_000:
        errors.append(FieldError("between 1 and 50,000 rows", parameter="chunk_size"))
    if errors:
        raise InvalidInput("The import settings are invalid.", errors)


def _fold(name: str) -> str:
    return " ".join(name.strip().casefold().split())


def resolve_columns(plan: ImportPlan, columns: Sequence[str]) -> dict[str, str]:
    """`file column -> field` for this file's header: explicit mapping first, then the
    preset, then columns already named like a field. `InvalidInput` when a mapped column
    is missing or nothing identifies a person."""
    by_fold = {_fold(c): c for c in columns}
    chosen: dict[str, str] = {}
    missing = [c for c in plan.mapping if _fold(c) not in by_fold]
    if missing:
        raise InvalidInput(
            f"The file has no column {', '.join(map(repr, missing))}; its columns are: "
            f"{', '.join(columns)}.",
            [FieldError("no such column in the file", parameter="map")],
        )
    for column, target in plan.mapping.items():
        chosen[by_fold[_fold(column)]] = target
    preset = {_fold(k): v for k, v in PRESETS.get(plan.preset or "", {}).items()}
    for column in columns:
        if column in chosen:
            continue
        found = preset.get(_fold(column)) or (_fold(column) if _fold(column) in FIELDS else None)
        if found is not None:
            chosen[column] = found
    if not set(chosen.values()) & set(IDENTIFIER_FIELDS):
        raise InvalidInput(
            "No column of the file maps to an identifier "
            f"({', '.join(IDENTIFIER_FIELDS)}): map one with COLUMN=FIELD.",
            [FieldError("map a column to an identifier", parameter="map")],
        )
    return chosen


# ------------------------------------------------------------------ rows


@dataclass(frozen=True)
class CleanRow:
    """A valid row: normalised identifiers, traits, and where each came from."""

    number: int
    identifiers: dict[str, str]
    traits: dict[str, Any]
    columns: dict[str, str]  # field -> file column, for error reports


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be a text value")
    value = value.strip()
    return value or None


def _parse_date(text: str, today: date) -> date:
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if not date(1900, 1, 1) <= parsed <= today:
            raise ValueError("is not a plausible date (between 1900 and today)")
        return parsed
    raise ValueError("is not a date: write YYYY-MM-DD or DD/MM/YYYY")


def _clean_value(name: str, text: str, country: str, region: str, today: date) -> Any:
    """The stored form of one field, or ValueError with what is wrong."""
    if name == "email":
        email = usable_email(text)
        if email is None:
            raise ValueError("is not a usable email address")
        return email
    if name == "phone":
        phone = identity.normalise("phone", text, region=country if country else region)
        if phone is None:
            raise ValueError("is not a valid phone number (national numbers are read as French)")
        return phone
    if name in IDENTIFIER_FIELDS:
        normal = identity.normalise(name, text)
        if normal is None or len(normal) > 64:
            raise ValueError("is not a usable identifier")
        return normal
    if name in ("birth_date", "customer_since"):
        return _parse_date(text, today).isoformat()
    if name == "postcode":
        compact = text.replace(" ", "")
        if country == "FR" and not _POSTCODE_FR.match(compact):
            raise ValueError("is not a French postcode (5 digits)")
        return compact if country == "FR" else text[:12]
    if name == "country":
        if not _COUNTRY.match(text.upper()):
            raise ValueError("is not a two-letter country code (FR, BE...)")
        return text.upper()
    if name == "locale":
        if text.lower()[:2] not in ("fr", "en"):
            raise ValueError("is not a supported language (fr or en)")
        return text.lower()[:2]
    if len(text) > _MAX_TEXT:
        raise ValueError(f"is longer than {_MAX_TEXT} characters")
    return text


def clean_row(
    number: int, raw: Mapping[str, Any], columns: Mapping[str, str], region: str, today: date
) -> CleanRow | list[RowError]:
    """A row's values through the mapping, validated; the row's errors instead if any."""
    values: dict[str, str] = {}
    where: dict[str, str] = {}
    errors: list[RowError] = []
    for column, target in columns.items():
        try:
            text = _text(raw.get(column))
        except ValueError as exc:
            errors.append(RowError(number, column, str(exc)))
            continue
        if text is not None and target not in values:
            values[target], where[target] = text, column
    country_text = values.get("country", region).upper()
    country = country_text if _COUNTRY.match(country_text) else region
    identifiers: dict[str, str] = {}
    traits: dict[str, Any] = {}
    for name, text in values.items():
        try:
            value = _clean_value(name, text, country, region, today)
        except ValueError as exc:
            errors.append(RowError(number, where[name], str(exc)))
            continue
        (identifiers if name in IDENTIFIER_FIELDS else traits)[name] = value
    if not errors and not identifiers:
        errors.append(
            RowError(
                number,
                ",".join(c for c, t in columns.items() if t in IDENTIFIER_FIELDS),
                "no identifier: a row needs an email, a phone or a customer/card number",
            )
        )
    return errors if errors else CleanRow(number, identifiers, traits, where)


def _refuse_erased(session: Session, rows: list[CleanRow]) -> tuple[list[CleanRow], list[RowError]]:
    """Split rows into those allowed and errors for those carrying an erased identifier."""
    wanted = {(kind, value) for row in rows for kind, value in row.identifiers.items()}
    erased = privacy.erased_identifiers(session, wanted)
    if not erased:
        return rows, []
    kept, refused = [], []
    for row in rows:
        hit = next((k for k, v in row.identifiers.items() if (k, v) in erased), None)
        if hit is None:
            kept.append(row)
        else:
            refused.append(RowError(row.number, row.columns[hit], ERASED_REFUSAL))
    return kept, refused


def _chunks(
    rows: Iterator[tuple[int, dict[str, Any]]], size: int
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _clean_chunk(
    session: Session,
    chunk: list[tuple[int, dict[str, Any]]],
    columns: Mapping[str, str],
    plan: ImportPlan,
    today: date,
) -> tuple[list[CleanRow], list[RowError]]:
    good: list[CleanRow] = []
    errors: list[RowError] = []
    for number, raw in chunk:
        result = clean_row(number, raw, columns, plan.region, today)
        if isinstance(result, CleanRow):
            good.append(result)
        else:
            errors.extend(result)
    good, refused = _refuse_erased(session, good)
    return good, sorted(errors + refused, key=lambda e: e.row)


# ------------------------------------------------------------------ running


@dataclass(frozen=True)
class ImportReport:
    """The state of an import run (after this call)."""

    id: uuid.UUID
    file_name: str
    source: str
    status: str  # running | done
    rows_total: int
    rows_done: int
    rows_imported: int
    rows_rejected: int
    rows_linked: int
    resumed_from: int  # data rows already committed when this call started
    already_done: bool
    errors: list[RowError]


def file_sha256(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    while block := stream.read(1 << 20):
        digest.update(block)
    stream.seek(0)
    return digest.hexdigest()


def _rows(stream: IO[bytes], fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from read_rows(text, fmt)
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text: save it as UTF-8 and try again.") from None
    finally:
        text.detach()


def _header(stream: IO[bytes], fmt: str) -> list[str]:
    if fmt == "csv":
        stream.seek(0)
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            header = next(csv.reader(text), [])
        except UnicodeDecodeError:
            raise InvalidInput("The file is not UTF-8 text: save it as UTF-8.") from None
        finally:
            text.detach()
        return [c for c in header if c]
    columns: dict[str, None] = {}
    for _, row in _rows(stream, fmt):
        columns.update(dict.fromkeys(row))
    return list(columns)


def import_customers(
    db: Database,
    clock: Clock,
    actor: Actor,
    stream: IO[bytes],
    file_name: str,
    plan: ImportPlan,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a customer file (seekable bytes), resuming a run of the same file and
    settings; `ImportRejected` (nothing imported) on bad rows unless keep_good_rows."""
    check_plan(plan)
    digest = file_sha256(stream)
    columns = resolve_columns(plan, _header(stream, plan.fmt))
    total = sum(1 for _ in _rows(stream, plan.fmt))
    with db.transaction() as session:
        run = _find_run(session, digest, plan)
        if run is not None and run.status == "done":
            return _report(session, run, run.rows_done, already_done=True)
    if run is None:
        if not plan.keep_good_rows:
            _validate_all(db, clock, stream, columns, plan, total)
        with db.transaction() as session:
            run = _start_run(session, clock.now(), digest, file_name, plan, total)
    report = _continue(db, clock, stream, run.id, columns, plan, progress)
    with db.transaction() as session:
        audit.record(
            session,
            clock.now(),
            actor,
            "customers.imported",
            "customer_import",
            str(report.id),
            source=plan.source,
            imported=report.rows_imported,
            rejected=report.rows_rejected,
            resumed_from=report.resumed_from,
        )
    return report


def _find_run(session: Session, digest: str, plan: ImportPlan) -> CustomerImport | None:
    return session.scalar(
        select(CustomerImport).where(
            CustomerImport.file_sha256 == digest, CustomerImport.plan_sha256 == plan.fingerprint()
        )
    )


def _start_run(
    session: Session, now: datetime, digest: str, file_name: str, plan: ImportPlan, total: int
) -> CustomerImport:
    run = CustomerImport(
        id=new_id(),
        file_sha256=digest,
        plan_sha256=plan.fingerprint(),
        file_name=file_name[:255],
        source=plan.source,
        options={
            "format": plan.fmt,
            "mapping": dict(plan.mapping),
            "preset": plan.preset,
            "keep_good_rows": plan.keep_good_rows,
        },
        status="running",
        rows_total=total,
        started_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    return run


def _validate_all(
    db: Database,
    clock: Clock,
    stream: IO[bytes],
    columns: Mapping[str, str],
    plan: ImportPlan,
    total: int,
) -> None:
    """The all-or-nothing check: every row, before anything is written."""
    errors: list[RowError] = []
    today = clock.now().date()
    with db.transaction() as session:
        for chunk in _chunks(_rows(stream, plan.fmt), max(plan.chunk_size, 5000)):
            errors.extend(_clean_chunk(session, chunk, columns, plan, today)[1])
    if errors:
        raise ImportRejected(errors, total)


def _continue(
    db: Database,
    clock: Clock,
    stream: IO[bytes],
    run_id: uuid.UUID,
    columns: Mapping[str, str],
    plan: ImportPlan,
    progress: Progress | None,
) -> ImportReport:
    with db.transaction() as session:
        run = session.get(CustomerImport, run_id)
        assert run is not None
        start, total = run.rows_done, run.rows_total
    done = start
    if progress:
        progress(done, total)
    rows = islice(_rows(stream, plan.fmt), start, None)
    for chunk in _chunks(rows, plan.chunk_size):
        with db.transaction() as session:
            now = clock.now()
            good, errors = _clean_chunk(session, chunk, columns, plan, now.date())
            linked = _observe(session, now, good, plan.source, run_id)
            if errors:
                session.execute(
                    bulk_insert(CustomerImportError),
                    [
                        {
                            "import_id": run_id,
                            "row": e.row,
                            "column": e.column[:120],
                            "message": e.message[:500],
                        }
                        for e in errors
                    ],
                )
            rejected = len({e.row for e in errors})
            _checkpoint(session, now, run_id, done, len(chunk), len(good), rejected, linked)
        done += len(chunk)
        if progress:
            progress(done, total)
    with db.transaction() as session:
        run = session.get(CustomerImport, run_id)
        assert run is not None
        run.status = "done"
        run.finished_at = run.updated_at = clock.now()
        return _report(session, run, start, already_done=False)


def _observe(
    session: Session, now: datetime, rows: list[CleanRow], source: str, run_id: uuid.UUID
) -> int:
    observations = [
        identity.Observation(
            identifiers=row.identifiers,
            source=f"import:{source}",
            observed_at=now,
            traits=row.traits,
            reference=f"import:{run_id}:{row.number}",
        )
        for row in rows
    ]
    profiles = identity.observe(session, now, observations) if observations else []
    return sum(1 for p in profiles if p is not None)


def _checkpoint(
    session: Session,
    now: datetime,
    run_id: uuid.UUID,
    done_before: int,
    rows: int,
    imported: int,
    rejected: int,
    linked: int,
) -> None:
    """Advance the checkpoint with the chunk's work, in its transaction; a concurrent
    run of the same import advanced it first: `Conflict`, and this chunk rolls back."""
    result = session.execute(
        update(CustomerImport)
        .where(CustomerImport.id == run_id, CustomerImport.rows_done == done_before)
        .values(
            rows_done=CustomerImport.rows_done + rows,
            rows_imported=CustomerImport.rows_imported + imported,
            rows_rejected=CustomerImport.rows_rejected + rejected,
            rows_linked=CustomerImport.rows_linked + linked,
            updated_at=now,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("This file is being imported by another process at the same time.")


def _report(
    session: Session, run: CustomerImport, resumed_from: int, already_done: bool
) -> ImportReport:
    return ImportReport(
        run.id,
        run.file_name,
        run.source,
        run.status,
        run.rows_total,
        run.rows_done,
        run.rows_imported,
        run.rows_rejected,
        run.rows_linked,
        resumed_from,
        already_done,
        import_errors(session, run.id, MAX_REPORTED),
    )


def import_errors(
    session: Session, import_id: uuid.UUID, limit: int | None = None
) -> list[RowError]:
    """The rejected rows of an import, in file order."""
    stmt = (
        select(CustomerImportError.row, CustomerImportError.column, CustomerImportError.message)
        .where(CustomerImportError.import_id == import_id)
        .order_by(CustomerImportError.row, CustomerImportError.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [RowError(row, column, message) for row, column, message in session.execute(stmt)]


def get_import(session: Session, import_id: uuid.UUID) -> ImportReport:
    run = session.get(CustomerImport, import_id)
    if run is None:
        raise NotFound(f"No customer import has the id {import_id}.")
    return _report(session, run, run.rows_done, already_done=run.status == "done")


def write_error_report(errors: Iterable[RowError], stream: IO[str]) -> int:
    """The row-level error report as CSV (row, column, problem); the number of lines."""
    writer = csv.writer(stream)
    writer.writerow(["row", "column", "problem"])
    count = 0
    for error in errors:
        writer.writerow([error.row, error.column, error.message])
        count += 1
    return count
