"""Admin endpoints of the shared kernel: API keys and the audit log (scope `admin`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from parcours.core import audit, auth
from parcours.core.audit import Actor
from parcours.core.deps import ClockDep, DbSession, api_caller
from parcours.core.schemas import ApiKeyCreate, ApiKeyIssued, ApiKeyOut, AuditEntryOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Admin = Annotated[Actor, Depends(api_caller("admin"))]


@router.get("/keys", response_model=list[ApiKeyOut], summary="List API keys")
def list_keys(session: DbSession, _admin: Admin) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(k) for k in auth.list_api_keys(session)]


@router.post(
    "/keys",
    response_model=ApiKeyIssued,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (its secret is returned once)",
)
def create_key(
    body: ApiKeyCreate, session: DbSession, clock: ClockDep, admin: Admin
) -> ApiKeyIssued:
    issued = auth.create_api_key(
        session, clock.now(), admin, body.name, body.kind, body.scopes, body.store_ids
    )
    key = auth.get_api_key(session, issued.id)
    return ApiKeyIssued(**ApiKeyOut.model_validate(key).model_dump(), secret=issued.secret)


@router.delete("/keys/{prefix}", response_model=ApiKeyOut, summary="Revoke an API key")
def revoke_key(prefix: str, session: DbSession, clock: ClockDep, admin: Admin) -> ApiKeyOut:
    return ApiKeyOut.model_validate(auth.revoke_api_key(session, clock.now(), admin, prefix))


@router.get("/audit", response_model=list[AuditEntryOut], summary="Latest audit entries")
def audit_log(
    session: DbSession, _admin: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[AuditEntryOut]:
    return [AuditEntryOut.model_validate(e) for e in audit.recent_entries(session, limit)]
