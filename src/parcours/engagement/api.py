"""REST API of the engagement context (scope `activation:write`): message templates and
their preview, sends through the rules, the delivery log and bounces, the contact
policy, and campaigns. Public, login-free: the click redirect and the open pixel."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from parcours.core.audit import Actor
from parcours.core.deps import (
    ClockDep,
    DbSession,
    IdempotencyKey,
    SettingsDep,
    api_caller,
    respond_once,
)
from parcours.core.errors import FieldError, InvalidInput
from parcours.engagement import campaigns, deliveries, policy, sending
from parcours.engagement.channels import Outlets
from parcours.engagement.sending import SendRequest, send_message
from parcours.engagement.templates_service import (
    TemplateInput,
    TemplateView,
    archive_template,
    get_template,
    list_templates,
    save_template,
)

router = APIRouter(tags=["engagement"])
public_router = APIRouter(include_in_schema=False)
Writer = Annotated[Actor, Depends(api_caller("activation:write"))]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=64, examples=["spring-sale"])
    channel: Literal["email", "sms", "push", "webhook"]
    kind: Literal["marketing", "transactional"]
    content: dict[str, str] = Field(
        description="`<field>_fr` / `<field>_en` Jinja2 texts: email subject, html, text; "
        "sms text; push title, body, deep_link; webhook json (and url).",
        examples=[{"subject_fr": "Bonjour {{ customer.first_name }}", "text_fr": "Les soldes !"}],
    )


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms", "push", "webhook"]
    kind: Literal["marketing", "transactional"]
    content: dict[str, str]


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile_id: uuid.UUID
    context: dict[str, Any] = Field(default_factory=dict, description="Extras: promo_code...")


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile_id: uuid.UUID
    template: str
    purpose: Literal["marketing", "transactional"] | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    source: str = Field(default="api", max_length=100)


class BounceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["hard", "soft"]
    delivery_id: uuid.UUID | None = None
    channel: Literal["email", "sms"] = "email"
    address: str | None = Field(default=None, max_length=320)


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_messages: int | None = Field(default=None, description="None: no cap.")
    period_days: int = 7
    quiet_start: str | None = Field(default=None, examples=["21:00"])
    quiet_end: str | None = Field(default=None, examples=["08:00"])
    quiet_days: list[str] = Field(default_factory=list, examples=[["sun"]])


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=32)
    template: str
    percent: int


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    segment: str = Field(description="The segment's key or id.")
    channel: Literal["email", "sms", "push"]
    variants: list[VariantIn] = Field(min_length=1, max_length=10)
    holdout_percent: int = 0
    send_at: datetime | None = Field(default=None, description="UTC instant.")
    local_date: date | None = Field(
        default=None, description="With local_time: each customer's zone."
    )
    local_time: str | None = Field(default=None, examples=["10:00"])


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    send_at: datetime | None = None
    local_date: date | None = None
    local_time: str | None = None


def template_dict(view: TemplateView) -> dict[str, Any]:
    return {
        "key": view.key,
        "channel": view.channel,
        "kind": view.kind,
        "version": view.version,
        "content": view.content,
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
        "archived": view.archived,
    }


# ------------------------------------------------------------------ templates


@router.post("/v1/templates", status_code=201, summary="Create a message template (checked)")
def create_template(
    body: TemplateIn, session: DbSession, clock: ClockDep, caller: Writer
) -> dict[str, Any]:
    data = TemplateInput(body.key, body.channel, body.kind, body.content)
    return template_dict(save_template(session, clock.now(), data, caller.label, create=True))


@router.put(
    "/v1/templates/{key}", summary="Change a template: a new version when the content changes"
)
def update_template(
    key: str, body: TemplateUpdate, session: DbSession, clock: ClockDep, caller: Writer
) -> dict[str, Any]:
    data = TemplateInput(key, body.channel, body.kind, body.content)
    return template_dict(save_template(session, clock.now(), data, caller.label))


@router.get("/v1/templates", summary="Templates at their current version")
def get_templates(session: DbSession, _: Writer, archived: bool = False) -> dict[str, Any]:
    return {"items": [template_dict(t) for t in list_templates(session, archived)]}


@router.get("/v1/templates/{key}", summary="A template (current or given version)")
def get_one_template(
    key: str, session: DbSession, _: Writer, version: int | None = None
) -> dict[str, Any]:
    return template_dict(get_template(session, key, version))


@router.delete("/v1/templates/{key}", status_code=204, summary="Archive a template")
def delete_template(key: str, session: DbSession, clock: ClockDep, _: Writer) -> Response:
    archive_template(session, clock.now(), key)
    return Response(status_code=204)


@router.post("/v1/templates/{key}/preview", summary="Render a template for a real profile")
def preview(
    key: str, body: PreviewIn, session: DbSession, clock: ClockDep, settings: SettingsDep,
    caller: Writer,
) -> dict[str, Any]:  # fmt: skip
    rendered = sending.preview_message(
        session, clock.now(), caller, key, body.profile_id, body.context,
        settings.resolved_public_url, settings.timezone,
    )  # fmt: skip
    return {"locale": rendered.locale, "parts": rendered.parts}


# ------------------------------------------------------------------ sends and the log


def _outlets(request: Request, settings: Any) -> Outlets:
    injected: Outlets | None = getattr(request.app.state, "engagement_outlets", None)
    return injected or Outlets.from_settings(settings)


@router.post("/v1/messages", status_code=201, summary="Send one message through every rule")
def post_message(
    body: MessageIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    settings: SettingsDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    if not idempotency_key:
        raise InvalidInput(
            "Send an Idempotency-Key header: a retry with the same key never sends twice.",
            [FieldError("is required", parameter="Idempotency-Key")],
        )
    now = clock.now()

    def act() -> dict[str, Any]:
        send = SendRequest(
            body.profile_id, body.template, f"api:{caller.label}:{idempotency_key}",
            body.purpose, body.context, body.source,
        )  # fmt: skip
        outcome = send_message(session, now, send, _outlets(request, settings))
        return {
            "delivery_id": str(outcome.delivery_id),
            "status": outcome.status,
            "reason": outcome.reason,
            "scheduled_for": outcome.scheduled_for.isoformat() if outcome.scheduled_for else None,
        }

    return respond_once(request, session, now, caller, idempotency_key, body, act)


@router.get("/v1/deliveries", summary="The delivery log, filtered, cursor-paged")
def get_deliveries(
    session: DbSession,
    _: Writer,
    status: str | None = None,
    reason: str | None = None,
    channel: str | None = None,
    profile_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    template: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    filters = deliveries.DeliveryFilter(status, reason, channel, profile_id, campaign_id, template)
    page = deliveries.list_deliveries(session, filters, cursor, limit)
    return {
        "items": [deliveries.delivery_dict(r) for r in page.items],
        "next_cursor": page.next_cursor,
    }


@router.post("/v1/deliveries/bounces", summary="Report a hard or soft bounce")
def post_bounce(body: BounceIn, session: DbSession, clock: ClockDep, _: Writer) -> dict[str, Any]:
    report = sending.record_bounce(
        session, clock.now(), hard=body.kind == "hard", delivery_id=body.delivery_id,
        channel=body.channel, address=body.address,
    )  # fmt: skip
    return {
        "delivery_id": str(report.delivery_id) if report.delivery_id else None,
        "hard": report.hard,
        "soft_count": report.soft_count,
    }


# ------------------------------------------------------------------ contact policy


def policy_dict(found: policy.Policy) -> dict[str, Any]:
    return {
        "channel": found.channel,
        "max_messages": found.max_messages,
        "period_days": found.period_days,
        "quiet_start": found.quiet_start,
        "quiet_end": found.quiet_end,
        "quiet_days": list(found.quiet_days),
        "customised": found.customised,
    }


@router.get("/v1/contact-policies", summary="Frequency caps and quiet hours per channel")
def get_policies(session: DbSession, _: Writer) -> dict[str, Any]:
    return {"items": [policy_dict(p) for p in policy.policies(session).values()]}


@router.put("/v1/contact-policies/{channel}", summary="Change a channel's caps and quiet hours")
def put_policy(
    channel: str, body: PolicyIn, session: DbSession, clock: ClockDep, caller: Writer
) -> dict[str, Any]:
    wanted = policy.Policy(
        channel, body.max_messages, body.period_days, body.quiet_start, body.quiet_end,
        tuple(body.quiet_days),
    )  # fmt: skip
    return policy_dict(policy.set_policy(session, clock.now(), caller.label, wanted))


# ------------------------------------------------------------------ campaigns


@router.post("/v1/campaigns", status_code=201, summary="Create a campaign (Idempotency-Key)")
def post_campaign(
    body: CampaignIn,
    request: Request,
    session: DbSession,
    clock: ClockDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    now = clock.now()
    data = campaigns.CampaignInput(
        body.name, body.segment, body.channel,
        [campaigns.Variant(v.name, v.template, v.percent) for v in body.variants],
        body.holdout_percent, body.send_at, body.local_date, body.local_time,
    )  # fmt: skip

    def act() -> dict[str, Any]:
        audience = getattr(request.app.state, "engagement_audience", None)
        created = campaigns.create_campaign(session, now, caller.label, data, audience)
        return campaigns.campaign_dict(created)

    return respond_once(request, session, now, caller, idempotency_key, body, act)


@router.get("/v1/campaigns", summary="Campaigns, newest first")
def get_campaigns(session: DbSession, _: Writer) -> dict[str, Any]:
    return {"items": [campaigns.campaign_dict(c) for c in campaigns.list_campaigns(session)]}


@router.get("/v1/campaigns/{campaign_id}", summary="One campaign")
def get_campaign(campaign_id: uuid.UUID, session: DbSession, _: Writer) -> dict[str, Any]:
    return campaigns.campaign_dict(campaigns.get_campaign(session, campaign_id))


@router.post("/v1/campaigns/{campaign_id}/schedule", summary="Schedule a draft campaign")
def schedule(
    campaign_id: uuid.UUID, body: ScheduleIn, session: DbSession, clock: ClockDep, _: Writer
) -> dict[str, Any]:
    found = campaigns.schedule_campaign(
        session, clock.now(), campaign_id, body.send_at, body.local_date, body.local_time
    )
    return campaigns.campaign_dict(found)


@router.post("/v1/campaigns/{campaign_id}/cancel", summary="Cancel a campaign")
def cancel(
    campaign_id: uuid.UUID, session: DbSession, clock: ClockDep, _: Writer
) -> dict[str, Any]:
    return campaigns.campaign_dict(campaigns.cancel_campaign(session, clock.now(), campaign_id))


@router.get("/v1/campaigns/{campaign_id}/results", summary="Results per variant and holdout")
def get_results(
    campaign_id: uuid.UUID,
    session: DbSession,
    _: Writer,
    days: Annotated[int, Query(description="Conversion window after the send, 1-90 days")] = 7,
) -> dict[str, Any]:
    """Delivery counts per variant, and conversions (orders within `days` days of the
    send) per variant and for the holdout, with each variant's uplift and p-value."""
    return campaigns.results_dict(campaigns.results(session, campaign_id, days))


# ------------------------------------------------------------------ public tracking


@public_router.get("/m/c/{token}")
def click(token: str, session: DbSession, clock: ClockDep) -> RedirectResponse:
    """Record a click and go on to the message's own (signed) link."""
    target = sending.record_click(session, clock.now(), token)
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


@public_router.get("/m/o/{token}.gif")
def open_pixel(token: str, session: DbSession, clock: ClockDep) -> Response:
    """Record an open; always answers the 1x1 GIF for a valid token."""
    sending.record_open(session, clock.now(), token)
    return Response(
        sending.PIXEL_GIF, media_type="image/gif", headers={"Cache-Control": "no-store"}
    )


router.include_router(public_router)
