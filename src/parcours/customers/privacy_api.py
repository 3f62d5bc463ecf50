"""REST endpoints of consent and privacy: record and read consents, double opt-in,
subject access export, erasure, customer file imports."""

from __future__ import annotations

import io
import tempfile
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from parcours.core import imports as core_imports
from parcours.core.audit import Actor
from parcours.core.auth import require_scope, verify_api_key
from parcours.core.db import Database
from parcours.core.deps import (
    ClockDep,
    DbSession,
    IdempotencyKey,
    SettingsDep,
    api_caller,
    get_database,
    presented_key,
    respond_once,
)
from parcours.customers import consent, imports, privacy

router = APIRouter(tags=["consent and privacy"])
Reader = Annotated[Actor, Depends(api_caller("customers:read"))]
Writer = Annotated[Actor, Depends(api_caller("customers:write"))]
PrivacyAdmin = Annotated[Actor, Depends(api_caller("privacy:admin"))]


def get_personal_data_handlers(request: Request) -> Sequence[privacy.PersonalDataHandler]:
    handlers: Sequence[privacy.PersonalDataHandler] = request.app.state.personal_data_handlers
    return handlers


Handlers = Annotated[Sequence[privacy.PersonalDataHandler], Depends(get_personal_data_handlers)]


# ------------------------------------------------------------------ shapes


class ConsentIn(BaseModel):
    purpose: str = Field(max_length=32, description=f"One of {', '.join(consent.PURPOSES)}.")
    channel: str = Field(max_length=16, description=f"One of {', '.join(consent.CHANNELS)}.")
    granted: bool = Field(description="true: the person agrees; false: they refuse or withdraw.")
    source: str = Field(min_length=1, max_length=64, description="Where: web_signup, store_pos…")
    wording_version: str | None = Field(
        default=None, max_length=64, description="Version of the text the person saw."
    )
    proof: str | None = Field(default=None, max_length=500, description="How it was given.")
    form_text: str | None = Field(
        default=None, max_length=20_000, description="The text shown; only its SHA-256 is kept."
    )
    ip: str | None = Field(default=None, max_length=64, description="The person's IP address.")
    user_agent: str | None = Field(default=None, max_length=500)
    page_url: str | None = Field(default=None, max_length=500)
    email: str | None = Field(
        default=None,
        max_length=254,
        description="Address a double opt-in is sent to (default: the profile's).",
    )

    def as_input(self) -> consent.ConsentInput:
        evidence = {"ip": self.ip, "user_agent": self.user_agent, "page_url": self.page_url}
        return consent.ConsentInput(
            purpose=self.purpose,
            channel=self.channel,
            granted=self.granted,
            source=self.source,
            wording_version=self.wording_version,
            proof=self.proof,
            form_text=self.form_text,
            evidence={k: v for k, v in evidence.items() if v},
            email=self.email,
        )


class ConsentsIn(BaseModel):
    consents: list[ConsentIn] = Field(min_length=1, max_length=50)


class ConsentOut(BaseModel):
    id: uuid.UUID
    purpose: str
    channel: str
    granted: bool
    at: datetime
    source: str
    wording_version: str | None
    proof: str | None
    evidence: dict[str, Any]


class PendingOut(BaseModel):
    id: uuid.UUID
    purpose: str
    channel: str
    email: str
    requested_at: datetime
    expires_at: datetime


class ConsentOutcomeOut(BaseModel):
    recorded: list[ConsentOut]
    pending: list[PendingOut] = Field(description="Grants waiting for a double opt-in.")


class CurrentConsentOut(BaseModel):
    purpose: str
    channel: str
    granted: bool | None = Field(description="null: no decision (contact is not allowed).")
    at: datetime | None
    source: str | None
    wording_version: str | None


class ConsentStateOut(BaseModel):
    profile_id: uuid.UUID
    erased: bool
    current: list[CurrentConsentOut]
    history: list[ConsentOut]
    pending: list[PendingOut]


class DecisionOut(BaseModel):
    allowed: bool
    reason: str = Field(description="granted, withdrawn, no_consent, erased or unknown_profile.")


class ConfirmationIn(BaseModel):
    email: str = Field(max_length=254)
    purpose: str = Field(default="marketing", max_length=32)
    channel: str = Field(default="email", max_length=16)
    source: str = Field(min_length=1, max_length=64)
    wording_version: str | None = Field(default=None, max_length=64)
    proof: str | None = Field(default=None, max_length=500)
    form_text: str | None = Field(default=None, max_length=20_000)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    page_url: str | None = Field(default=None, max_length=500)
    locale: str = Field(default="fr", pattern="^(fr|en)$")


class ErasureIn(BaseModel):
    reason: str = Field(
        default="request of the person", min_length=1, max_length=200, description="No PII."
    )


class ErasureOut(BaseModel):
    erasure_id: uuid.UUID
    profile_id: uuid.UUID
    erased_at: datetime
    counts: dict[str, int]
    tombstones: int = Field(description="Identifiers now refused by tracking and imports.")


class RowErrorOut(BaseModel):
    row: int
    column: str
    message: str


class ImportOut(BaseModel):
    id: uuid.UUID
    file_name: str
    source: str
    status: str
    rows_total: int
    rows_done: int
    rows_imported: int
    rows_rejected: int
    rows_linked: int
    resumed_from: int
    already_done: bool
    errors: list[RowErrorOut] = Field(description="The first 1,000 rejected rows.")


def _consent_out(record: consent.ConsentRecord) -> ConsentOut:
    return ConsentOut(**record.__dict__)


def _pending_out(pending: consent.PendingConfirmation) -> PendingOut:
    return PendingOut(
        id=pending.id,
        purpose=pending.purpose,
        channel=pending.channel,
        email=pending.email,
        requested_at=pending.requested_at,
        expires_at=pending.expires_at,
    )


# ------------------------------------------------------------------ consents


@router.post(
    "/v1/customers/{customer_id}/consents",
    response_model=ConsentOutcomeOut,
    status_code=201,
    summary="Record consent decisions (email marketing grants start a double opt-in)",
)
def record_consents(
    customer_id: uuid.UUID,
    body: ConsentsIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()

    def action() -> dict[str, Any]:
        outcome = consent.record_consents(
            session,
            now,
            caller,
            customer_id,
            [item.as_input() for item in body.consents],
            consent.DoubleOptIn.from_settings(settings),
        )
        out = ConsentOutcomeOut(
            recorded=[_consent_out(r) for r in outcome.recorded],
            pending=[_pending_out(p) for p in outcome.pending],
        )
        return out.model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, action)


@router.get(
    "/v1/customers/{customer_id}/consents",
    response_model=ConsentStateOut,
    summary="A profile's consents: in force, history, pending (the read is audited)",
)
def read_consents(
    customer_id: uuid.UUID, session: DbSession, clock: ClockDep, caller: Reader
) -> ConsentStateOut:
    state = consent.consent_state(session, clock.now(), caller, customer_id)
    current = [
        CurrentConsentOut(
            purpose=purpose,
            channel=channel,
            granted=record.granted if record else None,
            at=record.at if record else None,
            source=record.source if record else None,
            wording_version=record.wording_version if record else None,
        )
        for (purpose, channel), record in state.current.items()
    ]
    return ConsentStateOut(
        profile_id=state.profile_id,
        erased=state.erased,
        current=current,
        history=[_consent_out(r) for r in state.history],
        pending=[_pending_out(p) for p in state.pending],
    )


@router.get(
    "/v1/customers/{customer_id}/can-contact",
    response_model=DecisionOut,
    summary="May this profile be contacted for a purpose on a channel (the sending rule)",
)
def can_contact(
    customer_id: uuid.UUID,
    session: DbSession,
    clock: ClockDep,
    caller: Reader,
    purpose: Annotated[str, Query(max_length=32)],
    channel: Annotated[str, Query(max_length=16)],
) -> DecisionOut:
    decision = consent.can_contact(session, customer_id, purpose, channel, clock.now())
    return DecisionOut(allowed=decision.allowed, reason=decision.reason)


@router.post(
    "/v1/consents/confirmations",
    response_model=PendingOut,
    status_code=202,
    summary="Start a double opt-in for an email address (a sign-up form)",
)
def request_confirmation(
    body: ConfirmationIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()
    item = ConsentIn(
        purpose=body.purpose,
        channel=body.channel,
        granted=True,
        source=body.source,
        wording_version=body.wording_version,
        proof=body.proof,
        form_text=body.form_text,
        ip=body.ip,
        user_agent=body.user_agent,
        page_url=body.page_url,
    ).as_input()

    def action() -> dict[str, Any]:
        pending = consent.request_email_confirmation(
            session,
            now,
            caller,
            body.email,
            item,
            consent.DoubleOptIn.from_settings(settings),
            body.locale,
        )
        return _pending_out(pending).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, action, 202)


# ------------------------------------------------------------------ export and erasure


@router.get(
    "/v1/customers/{customer_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
    summary="Subject access export: everything about a person, as a zip of JSON and CSV",
)
def export_person(
    customer_id: uuid.UUID,
    session: DbSession,
    clock: ClockDep,
    caller: PrivacyAdmin,
    handlers: Handlers,
) -> Response:
    export = privacy.export_person(session, clock.now(), caller, customer_id, handlers)
    return Response(
        privacy.export_zip(export),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="customer-{customer_id}.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/v1/customers/{customer_id}/erasure",
    response_model=ErasureOut,
    status_code=201,
    summary="Erase a person everywhere (events, identity, consents, other contexts)",
)
def erase_person(
    customer_id: uuid.UUID,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: PrivacyAdmin,
    handlers: Handlers,
    body: ErasureIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()
    body = body or ErasureIn()

    def action() -> dict[str, Any]:
        report = privacy.erase_person(session, now, caller, customer_id, handlers, body.reason)
        return ErasureOut(**report.__dict__).model_dump(mode="json")

    return respond_once(request, session, now, caller, idempotency_key, body, action)


# ------------------------------------------------------------------ imports


def import_caller(request: Request, db: Annotated[Database, Depends(get_database)]) -> Actor:
    """The API key, checked in its own short transaction: an import commits chunk by
    chunk, which must not wait behind a transaction held for the whole request."""
    with db.transaction() as session:
        actor = verify_api_key(session, presented_key(request))
    require_scope(actor, "customers:write")
    return actor


@router.post(
    "/v1/customer-imports",
    response_model=ImportOut,
    summary="Import a customer file (CSV or JSON upload); resumable, all-or-nothing by default",
)
def import_file(
    db: Annotated[Database, Depends(get_database)],
    clock: ClockDep,
    caller: Annotated[Actor, Depends(import_caller)],
    file: Annotated[UploadFile, File(description="The customer file (CSV or JSON, UTF-8).")],
    source: Annotated[str, Form(description="Name of the file's origin, e.g. pos_lyon.")],
    mapping: Annotated[
        list[str] | None, Form(alias="map", description="COLUMN=FIELD, repeatable.")
    ] = None,
    preset: Annotated[str | None, Form()] = None,
    format: Annotated[str | None, Form(description="csv or json (default: from the name).")] = None,
    keep_good_rows: Annotated[bool, Form()] = False,
) -> ImportOut:
    name = file.filename or "upload.csv"
    plan = imports.ImportPlan(
        source=source,
        fmt=core_imports.format_of(Path(name), format),
        mapping=imports.parse_mapping(mapping or []),
        preset=preset or None,
        keep_good_rows=keep_good_rows,
    )
    with tempfile.TemporaryFile() as copy:  # a seekable copy, whatever the upload's storage
        while block := file.file.read(1 << 20):
            copy.write(block)
        report = imports.import_customers(db, clock, caller, copy, name, plan)
    return _import_out(report)


def _import_out(report: imports.ImportReport) -> ImportOut:
    return ImportOut(
        **{k: v for k, v in report.__dict__.items() if k != "errors"},
        errors=[RowErrorOut(row=e.row, column=e.column, message=e.message) for e in report.errors],
    )


@router.get(
    "/v1/customer-imports/{import_id}",
    response_model=ImportOut,
    summary="The state of a customer import",
)
def get_import(import_id: uuid.UUID, session: DbSession, caller: Reader) -> ImportOut:
    return _import_out(imports.get_import(session, import_id))


@router.get(
    "/v1/customer-imports/{import_id}/errors",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
    summary="The row-level error report of an import, as CSV",
)
def import_error_report(import_id: uuid.UUID, session: DbSession, caller: Reader) -> Response:
    imports.get_import(session, import_id)
    buffer = io.StringIO()
    imports.write_error_report(imports.import_errors(session, import_id), buffer)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )
