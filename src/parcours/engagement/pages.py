"""Console pages of the engagement context: message templates (FR/EN form, errors shown
at save, preview against a profile), the delivery log with filters and reasons, and
campaigns (create, results per variant, cancel)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel.numbers import format_percent
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parcours import segments
from parcours.core.deps import DbSession, SettingsDep
from parcours.core.errors import InvalidInput, NotFound, Refused, refusal
from parcours.core.money import Money
from parcours.engagement import campaigns, deliveries, policy, sending, templates_service
from parcours.engagement.policy import WEEKDAYS, policies
from parcours.engagement.templates_service import (
    CHANNELS,
    FIELDS,
    KINDS,
    LOCALES,
    TemplateInput,
    get_template,
    list_templates,
    save_template,
)
from parcours.web.console import Console, VerifiedConsole, render, require_role

router = APIRouter(prefix="/console/activation", include_in_schema=False)
MARKETERS = ("admin", "marketer")
FIELD_LABELS = {
    "subject": "Subject",
    "html": "HTML body",
    "text": "Text body",
    "title": "Title",
    "body": "Body",
    "deep_link": "Deep link",
    "json": "JSON body",
}
STATUS_LABELS = {
    "queued": "queued",
    "deferred": "deferred",
    "sent": "sent",
    "failed": "failed",
    "bounced": "bounced",
    "suppressed": "refused",
    "draft": "draft",
    "scheduled": "scheduled",
    "sending": "sending",
    "cancelled": "cancelled",
}
REASON_LABELS = {
    "no_consent": "no consent",
    "withdrawn": "consent withdrawn",
    "erased": "erased profile",
    "unknown_profile": "unknown profile",
    "no_address": "no address",
    "bounced_address": "address bounced",
    "frequency_cap": "frequency cap",
    "quiet_hours": "quiet hours",
    "holdout": "holdout group",
    "cancelled": "campaign cancelled",
    "render_error": "template error",
    "invalid_address": "invalid address",
    "provider_unavailable": "provider unavailable",
    "hard_bounce": "hard bounce",
}
CHANNEL_LABELS = {
    "email": "Email",
    "sms": "Text message",
    "push": "Push notification",
    "webhook": "Webhook call",
}
KIND_LABELS = {"marketing": "marketing message", "transactional": "transactional message"}
NO_PROFILE_ID = "Give a customer profile id."
NOT_AN_ID = "not an id"
NO_SUCH_PROFILE = "No customer profile has the id %(id)s."
# What the services refuse, shown by these pages with `said(...)` in the reader's language.
SERVICE_MESSAGES = (
    *templates_service.MESSAGES, *campaigns.MESSAGES, *policy.MESSAGES,
    sending.DOES_NOT_RENDER, NO_PROFILE_ID, NOT_AN_ID, NO_SUCH_PROFILE,
)  # fmt: skip
# Fields of the template form that are not template content.
FORM_ONLY = ("csrf_token", "key", "channel", "kind", "exists")


def console_msgids() -> set[str]:
    """The words these pages translate from Python data."""
    return {
        *FIELD_LABELS.values(),
        *STATUS_LABELS.values(),
        *REASON_LABELS.values(),
        *CHANNEL_LABELS.values(),
        *KIND_LABELS.values(),
        *SERVICE_MESSAGES,
    }


def _labels() -> dict[str, Any]:
    return {
        "field_labels": FIELD_LABELS,
        "status_labels": STATUS_LABELS,
        "reason_labels": REASON_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "kind_labels": KIND_LABELS,
        "fields": FIELDS,
        "locales": LOCALES,
    }


# ------------------------------------------------------------------ templates


def _templates_page(
    request: Request,
    context: Any,
    session: Any,
    editing: dict[str, Any],
    status_code: int = 200,
    error: InvalidInput | None = None,
    preview: Any = None,
    preview_profile: str = "",
) -> HTMLResponse:
    return render(
        request, context, "engagement/templates.html", status_code,
        templates=list_templates(session), editing=editing, error=error, preview=preview,
        preview_profile=preview_profile, channels=CHANNELS, kinds=KINDS, **_labels(),
    )  # fmt: skip


def _editing(session: Any, key: str | None, channel: str) -> dict[str, Any]:
    if key:
        view = get_template(session, key)
        return {"key": view.key, "channel": view.channel, "kind": view.kind,
                "content": view.content, "version": view.version, "exists": True}  # fmt: skip
    chosen = channel if channel in CHANNELS else "email"
    return {"key": "", "channel": chosen, "kind": "marketing", "content": {}, "version": None,
            "exists": False}  # fmt: skip


@router.get("/templates", response_class=HTMLResponse)
def templates_page(
    request: Request, context: Console, session: DbSession, key: str = "", channel: str = "email"
) -> Response:
    require_role(context, *MARKETERS)
    return _templates_page(request, context, session, _editing(session, key or None, channel))


@router.post("/templates", response_class=HTMLResponse)
async def save_template_form(
    request: Request, context: VerifiedConsole, session: DbSession
) -> Response:
    actor = require_role(context, *MARKETERS)
    form = await request.form()
    channel = str(form.get("channel", ""))
    content = {
        name: str(value).replace("\r\n", "\n")
        for name, value in form.items()
        if name not in FORM_ONLY and str(value).strip()
    }
    data = TemplateInput(
        str(form.get("key", "")).strip(), channel, str(form.get("kind", "")), content
    )
    try:
        with session.begin_nested():
            saved = save_template(session, context.now, data, actor.label)
    except InvalidInput as exc:
        editing = {"key": data.key, "channel": channel if channel in CHANNELS else "email",
                   "kind": data.kind, "content": content, "version": None,
                   "exists": form.get("exists") == "1"}  # fmt: skip
        return _templates_page(request, context, session, editing, 422, exc)
    return RedirectResponse(f"/console/activation/templates?key={saved.key}", status_code=303)


@router.post("/templates/{key}/preview", response_class=HTMLResponse)
def preview_template(
    request: Request,
    key: str,
    context: VerifiedConsole,
    session: DbSession,
    settings: SettingsDep,
    profile_id: Annotated[str, Form()] = "",
) -> Response:
    actor = require_role(context, *MARKETERS)
    editing = _editing(session, key, "email")
    try:
        profile = uuid.UUID(profile_id.strip())
    except ValueError:
        error = Refused(NO_PROFILE_ID, [refusal(NOT_AN_ID, parameter="profile_id")])
        return _templates_page(request, context, session, editing, 422, error, None, profile_id)
    try:
        rendered = sending.preview_message(
            session, context.now, actor, key, profile, {}, settings.resolved_public_url,
            settings.timezone,
        )  # fmt: skip
    except NotFound as exc:  # the template was found above: the profile is unknown
        error = Refused(exc.detail, None, NO_SUCH_PROFILE, id=str(profile))
        return _templates_page(request, context, session, editing, 422, error, None, profile_id)
    except InvalidInput as exc:
        return _templates_page(request, context, session, editing, 422, exc, None, profile_id)
    return _templates_page(request, context, session, editing, 200, None, rendered, profile_id)


# ------------------------------------------------------------------ deliveries


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries_page(
    request: Request,
    context: Console,
    session: DbSession,
    status: str = "",
    reason: str = "",
    channel: str = "",
    template: str = "",
    campaign: str = "",
    cursor: str = "",
) -> Response:
    require_role(context, *MARKETERS)
    try:
        campaign_id = uuid.UUID(campaign) if campaign else None
    except ValueError:
        campaign_id = None
    filters = deliveries.DeliveryFilter(
        status or None, reason or None, channel or None, None, campaign_id, template or None
    )
    page = deliveries.list_deliveries(session, filters, cursor or None, 50)
    return render(
        request, context, "engagement/deliveries.html", page=page,
        filters={"status": status, "reason": reason, "channel": channel, "template": template,
                 "campaign": campaign},
        statuses=sending.STATUSES, reasons=sending.REASONS, channels=CHANNELS,
        policies=policies(session).values(), weekdays=WEEKDAYS, **_labels(),
    )  # fmt: skip


# ------------------------------------------------------------------ campaigns


def _campaigns_page(
    request: Request, context: Any, session: Any, status_code: int = 200,
    error: InvalidInput | None = None, values: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    return render(
        request, context, "engagement/campaigns.html", status_code,
        campaigns=campaigns.list_campaigns(session), segments=segments.list_segments(session),
        templates=[t for t in list_templates(session) if t.kind == "marketing"],
        error=error, values=values or {}, channels=("email", "sms", "push"), **_labels(),
    )  # fmt: skip


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, context: Console, session: DbSession) -> Response:
    require_role(context, *MARKETERS)
    return _campaigns_page(request, context, session)


def _int(value: str, default: int = 0) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def _variants(values: dict[str, str]) -> list[campaigns.Variant]:
    found = []
    for name in ("A", "B", "C"):
        template = values.get(f"template_{name}", "")
        if template:
            found.append(campaigns.Variant(name, template, _int(values.get(f"percent_{name}", ""))))
    return found


def _schedule(values: dict[str, str], zone: str) -> tuple[datetime | None, date | None, str | None]:
    when, day, hour = (
        values.get("when", ""),
        values.get("local_date", ""),
        values.get("local_time", ""),
    )
    try:
        if when == "utc" and day and hour:
            local = datetime.combine(
                date.fromisoformat(day), datetime.strptime(hour, "%H:%M").time()
            )
            return local.replace(tzinfo=ZoneInfo(zone)), None, None
        if when == "local" and day and hour:
            return None, date.fromisoformat(day), hour
    except ValueError:
        pass
    return None, None, None


@router.post("/campaigns", response_class=HTMLResponse)
async def create_campaign(
    request: Request, context: VerifiedConsole, session: DbSession
) -> Response:
    actor = require_role(context, *MARKETERS)
    form = await request.form()
    values = {name: str(value).strip() for name, value in form.items() if name != "csrf_token"}
    send_at, local_date, local_time = _schedule(values, context.timezone)
    data = campaigns.CampaignInput(
        values.get("name", ""), values.get("segment", ""), values.get("channel", ""),
        _variants(values), _int(values.get("holdout_percent", "0")), send_at, local_date,
        local_time,
    )  # fmt: skip
    try:
        with session.begin_nested():
            made = campaigns.create_campaign(session, context.now, actor.label, data)
    except InvalidInput as exc:
        return _campaigns_page(request, context, session, 422, exc, values)
    return RedirectResponse(f"/console/activation/campaigns/{made.id}", status_code=303)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(
    request: Request, campaign_id: uuid.UUID, context: Console, session: DbSession
) -> Response:
    require_role(context, *MARKETERS)
    campaign = campaigns.get_campaign(session, campaign_id)
    days = _int(request.query_params.get("days", "")) or campaigns.CONVERSION_DAYS
    days = min(max(days, 1), campaigns.MAX_CONVERSION_DAYS)
    return render(
        request, context, "engagement/campaign.html", campaign=campaign,
        results=campaigns.results(session, campaign_id, days),
        money=lambda amount, currency: Money(amount, currency).format(context.locale),
        percent=lambda rate: format_percent(rate, "#,##0.0 %", locale=context.locale),
        **_labels(),
    )  # fmt: skip


@router.post("/campaigns/{campaign_id}/cancel", response_class=HTMLResponse)
def cancel_campaign(
    campaign_id: uuid.UUID, context: VerifiedConsole, session: DbSession
) -> Response:
    require_role(context, *MARKETERS)
    campaigns.cancel_campaign(session, context.now, campaign_id)
    return RedirectResponse(f"/console/activation/campaigns/{campaign_id}", status_code=303)
