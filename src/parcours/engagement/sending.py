"""One send function for every sender (campaigns now, journeys later).

`send_message` applies, in order: idempotency (the delivery log's unique key: a key
never sends twice), consent (`customers.can_contact`: marketing needs the marketing
consent on the channel; transactional never reaches an erased profile and needs an
address), a hard-bounced address, the global frequency cap (marketing only), quiet
hours in the customer's zone (marketing only: deferred with `scheduled_for`, sent later
by `send_due`, which checks everything again). Each refusal is a delivery row with its
reason. `send_batch` is the one implementation: `send_message` is its batch of one and
`send_messages` its strict form; `attempt_deliveries` applies the rules to many queued
rows at once (also for `send_due`): profiles, consents, counts and bounces are read
with a few queries per batch, not per person, and emails share one SMTP connection.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from parcours import customers
from parcours.core import signing
from parcours.core.audit import Actor
from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.errors import FieldError, InvalidInput, NotFound, Refused, ServiceUnavailable
from parcours.core.ids import new_id
from parcours.core.mail import OutgoingEmail
from parcours.engagement.channels import Outlets, batch_outlets
from parcours.engagement.context import ContextBuilder
from parcours.engagement.models import Delivery, MessageBounce, MessageTemplate
from parcours.engagement.policy import Policy, policies, zone_of
from parcours.engagement.templates_service import (
    KINDS,
    Rendered,
    TemplateView,
    get_template,
    render_content,
)

log = logging.getLogger("parcours.engagement")

STATUSES = ("queued", "deferred", "sent", "failed", "bounced", "suppressed")
# Reasons a delivery was refused or failed: stable codes for callers and the console.
REASONS = (
    "no_consent",
    "withdrawn",
    "erased",
    "unknown_profile",
    "no_address",
    "bounced_address",
    "frequency_cap",
    "quiet_hours",
    "holdout",
    "cancelled",
    "render_error",
    "invalid_address",
    "provider_unavailable",
    "hard_bounce",
)
CLICK_SIGNING = "engagement-click"
OPEN_SIGNING = "engagement-open"
BOUNCE_DIGEST = "engagement-bounce"
WEBHOOK_SECRET = "engagement-webhook"  # noqa: S105 (a signing purpose, not a secret)
_HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@dataclass(frozen=True)
class SendRequest:
    """One message to one profile. `idempotency_key` is the caller's promise: the same
    key is acted on once (e.g. "campaign:<id>:<profile>", "order:<id>:ready").
    `purpose` defaults to the template's kind; `context` adds to the documented
    variables (promo_code, cart, links...); `source` says who sent it."""

    profile_id: uuid.UUID
    template_key: str
    idempotency_key: str
    purpose: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    source: str = "api"


@dataclass(frozen=True)
class SendOutcome:
    delivery_id: uuid.UUID
    status: str
    reason: str | None
    scheduled_for: datetime | None
    replayed: bool = False


def _outcome(row: Delivery, replayed: bool = False) -> SendOutcome:
    return SendOutcome(row.id, row.status, row.reason, row.scheduled_for, replayed)


def _usable_template(session: Session, key: str, purpose: str | None) -> TemplateView:
    try:
        template = get_template(session, key)
    except NotFound as exc:
        raise InvalidInput(exc.detail, [FieldError(exc.detail, pointer="#/template")]) from None
    if template.archived:
        raise InvalidInput(
            f"The template {key!r} is archived.",
            [FieldError("is archived: save it again to use it", pointer="#/template")],
        )
    if purpose is not None and purpose != template.kind:
        if purpose not in KINDS:
            detail = f"must be one of {', '.join(KINDS)}"
        else:
            detail = f"the template {key!r} is {template.kind}: send it as {template.kind}"
        raise InvalidInput(f"Cannot send: {detail}.", [FieldError(detail, pointer="#/purpose")])
    return template


def queue_row(
    now: datetime,
    request: SendRequest,
    template: TemplateView,
    scheduled_for: datetime | None = None,
    campaign_id: uuid.UUID | None = None,
    variant: str | None = None,
) -> dict[str, Any]:
    """The values of a queued delivery (for bulk inserts by campaigns)."""
    return {
        "id": new_id(),
        "idempotency_key": request.idempotency_key,
        "profile_id": request.profile_id,
        "channel": template.channel,
        "purpose": template.kind,
        "template_key": template.key,
        "template_version": None,
        "source": request.source[:120],
        "campaign_id": campaign_id,
        "variant": variant,
        "status": "queued",
        "reason": None,
        "context": dict(request.context) or None,
        "scheduled_for": scheduled_for or now,
        "created_at": now,
        "updated_at": now,
        "open_count": 0,
        "click_count": 0,
    }


def send_message(
    session: Session, now: datetime, request: SendRequest, outlets: Outlets | None = None
) -> SendOutcome:
    """Send one message through every rule; returns what happened (also in the log).

    The batch of one of `send_messages`: the same `idempotency_key` returns the first
    outcome (`replayed`) and sends nothing; only a delivery that failed on the
    provider's side is tried again. A bad request raises `InvalidInput` (#/template,
    #/purpose, #/idempotency_key).
    """
    [found] = send_batch(session, now, [request], outlets)
    if isinstance(found, InvalidInput):
        raise found
    return found


def send_messages(
    session: Session,
    now: datetime,
    requests: Sequence[SendRequest],
    outlets: Outlets | None = None,
) -> list[SendOutcome]:
    """Send many messages at once under exactly the rules of `send_message`, with a
    constant number of queries per batch; outcomes in the order of `requests`. A bad
    request refuses the whole batch before anything is sent (`InvalidInput`, pointers
    prefixed by the request's index: `#/3/template`)."""
    found = _send(session, now, requests, outlets, strict=True)
    return [item for item in found if isinstance(item, SendOutcome)]


def send_batch(
    session: Session,
    now: datetime,
    requests: Sequence[SendRequest],
    outlets: Outlets | None = None,
) -> list[SendOutcome | InvalidInput]:
    """The one implementation of a send, for a batch: each request's outcome, or the
    `InvalidInput` that kept it from being attempted (an empty key, an unknown or
    archived template, a purpose that is not the template's), in request order.

    Queries per batch, whatever its size: one per distinct template, one reading the
    keys already used, one bulk insert claiming the new keys ("on conflict do nothing":
    a key taken by a concurrent send is a replay), one reading the claimed rows, the
    rules' reads (`attempt_deliveries`: profiles, consents, recent counts, bounces) and
    the updates of the outcomes. Emails leave over one SMTP connection. The same key
    twice in a batch is acted on once (the second is a replay)."""
    return _send(session, now, requests, outlets, strict=False)


def _send(
    session: Session,
    now: datetime,
    requests: Sequence[SendRequest],
    outlets: Outlets | None,
    strict: bool,
) -> list[SendOutcome | InvalidInput]:
    used = outlets or _default_outlets()
    found: list[SendOutcome | InvalidInput | None] = [None] * len(requests)
    templates: dict[tuple[str, str | None], TemplateView | InvalidInput] = {}
    valid: list[tuple[int, SendRequest, TemplateView]] = []
    for index, request in enumerate(requests):
        if not request.idempotency_key.strip():
            found[index] = InvalidInput(
                "Give an idempotency key.", [FieldError("is empty", pointer="#/idempotency_key")]
            )
            continue
        wanted = (request.template_key, request.purpose)
        if wanted not in templates:
            try:
                templates[wanted] = _usable_template(session, *wanted)
            except InvalidInput as exc:
                templates[wanted] = exc
        template = templates[wanted]
        if isinstance(template, InvalidInput):
            found[index] = template
            continue
        valid.append((index, request, template))
    for index, item in enumerate(found):
        if strict and isinstance(item, InvalidInput):  # nothing sent: name the request
            errors = [
                FieldError(e.detail, pointer=f"#/{index}{(e.pointer or '#')[1:]}")
                for e in item.errors
            ]
            raise InvalidInput(f"Request {index}: {item.detail}", errors)
    keys = list(dict.fromkeys(request.idempotency_key for _, request, _ in valid))
    existing = _by_keys(session, keys)
    fresh: dict[str, dict[str, Any]] = {}
    for _, request, template in valid:
        key = request.idempotency_key
        if key not in existing and key not in fresh:
            fresh[key] = queue_row(now, request, template)
    insert_ignoring_duplicates(session, list(fresh.values()))
    claimed = _by_keys(session, list(fresh))
    ours = {key: row for key, row in claimed.items() if row.id == fresh[key]["id"]}
    retried = {key: row for key, row in existing.items() if row.status == "failed"}
    with batch_outlets(used) as batch:
        attempt_deliveries(session, now, [*ours.values(), *retried.values()], batch)
    acted: set[str] = set()
    for index, request, _ in valid:
        key = request.idempotency_key
        row = existing.get(key) or claimed[key]
        first = key not in acted and (key in ours or key in retried)
        acted.add(key)
        found[index] = _outcome(row, replayed=not first)
    return [item for item in found if item is not None]


def insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk insert delivery rows; a row whose idempotency key is taken is left out."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(Delivery).on_conflict_do_nothing(index_elements=["idempotency_key"]), rows
    )


def _by_keys(session: Session, keys: Sequence[str]) -> dict[str, Delivery]:
    found: dict[str, Delivery] = {}
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        rows = session.scalars(select(Delivery).where(Delivery.idempotency_key.in_(chunk)))
        found.update({row.idempotency_key: row for row in rows})
    return found


def _default_outlets() -> Outlets:
    from parcours.core.settings import get_settings

    return Outlets.from_settings(get_settings())


# ------------------------------------------------------------------ the rules, in bulk


@dataclass
class _Batch:
    """What a batch of attempts reads once."""

    profiles: dict[uuid.UUID, Any]
    consent: dict[tuple[uuid.UUID, str], customers.Decision]
    counts: dict[tuple[uuid.UUID, str], int]
    bounced: set[tuple[str, str]]
    policies: dict[str, Policy]
    templates: dict[str, TemplateView]
    secret: bytes
    devices: dict[uuid.UUID, str]  # the push address of each live profile that has one


def _recent_counts(
    session: Session, now: datetime, ids: Sequence[uuid.UUID], rules: dict[str, Policy]
) -> dict[tuple[uuid.UUID, str], int]:
    counts: dict[tuple[uuid.UUID, str], int] = {}
    for channel, policy in rules.items():
        if policy.max_messages is None or not ids:
            continue
        since = now - timedelta(days=policy.period_days)
        rows = session.execute(
            select(Delivery.profile_id, func.count())
            .where(
                Delivery.profile_id.in_(list(ids)),
                Delivery.channel == channel,
                Delivery.purpose == "marketing",
                Delivery.status == "sent",
                Delivery.sent_at > since,
            )
            .group_by(Delivery.profile_id)
        )
        counts.update({(pid, channel): int(n) for pid, n in rows if pid is not None})
    return counts


def address_digest(secret: bytes, channel: str, address: str) -> str:
    return signing.keyed_digest(secret, BOUNCE_DIGEST, f"{channel}\x00{address.strip().lower()}")


def _bounced(
    session: Session, secret: bytes, addresses: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    if not addresses:
        return set()
    by_digest = {address_digest(secret, ch, a): (ch, a) for ch, a in addresses}
    found = session.execute(
        select(MessageBounce.address_digest).where(
            MessageBounce.address_digest.in_(list(by_digest)), MessageBounce.hard.is_(True)
        )
    ).scalars()
    return {by_digest[d] for d in found}


def _address(profile: Any, channel: str, batch: _Batch) -> str | None:
    if channel == "email":
        email = profile.email
        return email if email and "@" in email else None
    if channel == "sms":
        return str(profile.phone) if profile.phone else None
    if channel == "push":
        return batch.devices.get(profile.id)
    return "webhook"


def _read_batch(session: Session, now: datetime, rows: Sequence[Delivery]) -> _Batch:
    profiles = customers.live_profiles(session, [r.profile_id for r in rows if r.profile_id])
    consent: dict[tuple[uuid.UUID, str], customers.Decision] = {}
    for channel in {r.channel for r in rows if r.purpose == "marketing"}:
        ids = [r.profile_id for r in rows if r.channel == channel and r.profile_id]
        for pid, decision in customers.can_contact_many(
            session, ids, "marketing", channel, now
        ).items():
            consent[(pid, channel)] = decision
    rules = policies(session)
    live_ids = list({p.id for p in profiles.values()})
    secret = signing.instance_secret(session, now)
    assert secret is not None
    addresses = {
        (
            r.channel,
            str(getattr(profiles[r.profile_id], "email" if r.channel == "email" else "phone")),
        )
        for r in rows
        if r.profile_id in profiles and r.channel in ("email", "sms")
    }
    templates = {key: get_template(session, key) for key in {r.template_key for r in rows}}
    pushed = {
        profiles[r.profile_id].id for r in rows if r.channel == "push" and r.profile_id in profiles
    }
    return _Batch(
        profiles,
        consent,
        _recent_counts(session, now, live_ids, rules),
        _bounced(session, secret, addresses),
        rules,
        templates,
        secret,
        customers.devices_of(session, pushed) if pushed else {},
    )


def _refuse(row: Delivery, now: datetime, reason: str, status: str = "suppressed") -> None:
    row.status, row.reason, row.updated_at = status, reason, now


def _refusal(session: Session, row: Delivery, batch: _Batch, now: datetime) -> str | None:
    """Why this row may not go now (consent, address, bounce, cap), or None."""
    profile = batch.profiles.get(row.profile_id) if row.profile_id else None
    if profile is None:
        return "unknown_profile"
    if profile.erased_at is not None:
        return "erased"
    if row.purpose == "marketing":
        decision = batch.consent.get((row.profile_id, row.channel)) if row.profile_id else None
        if decision is None or not decision.allowed:
            known = decision is not None and decision.reason in ("withdrawn", "erased")
            return decision.reason if known and decision is not None else "no_consent"
    address = _address(profile, row.channel, batch)
    if address is None:
        return "no_address"
    if (row.channel, address) in batch.bounced:
        return "bounced_address"
    policy = batch.policies[row.channel]
    capped = row.purpose == "marketing" and policy.max_messages is not None
    if capped and batch.counts.get((profile.id, row.channel), 0) >= (policy.max_messages or 0):
        return "frequency_cap"
    return None


def attempt_deliveries(
    session: Session, now: datetime, rows: Sequence[Delivery], outlets: Outlets
) -> None:
    """Apply the rules to queued or deferred rows and send those that may go now."""
    if not rows:
        return
    batch = _read_batch(session, now, rows)
    builder = ContextBuilder(session, now, outlets.public_url, outlets.timezone)
    going: list[tuple[Delivery, Any]] = []
    for row in rows:
        reason = _refusal(session, row, batch, now)
        if reason is not None or row.profile_id is None:
            _refuse(row, now, reason or "unknown_profile")
            continue
        profile = batch.profiles[row.profile_id]
        row.profile_id = profile.id
        policy = batch.policies[row.channel]
        if row.purpose == "marketing":
            local = now.astimezone(zone_of(profile.timezone, outlets.timezone))
            later = policy.next_allowed(local)
            if later is not None:
                row.status, row.reason = "deferred", "quiet_hours"
                row.scheduled_for, row.updated_at = later.astimezone(UTC), now
                continue
        going.append((row, profile))
    builder.prepare([profile for _, profile in going])  # carts and recommendations
    with session.no_autoflush:  # one UPDATE per changed row at the end, not two
        _deliver_all(session, now, going, batch, builder, outlets)
    session.flush()


def _deliver_all(
    session: Session,
    now: datetime,
    going: list[tuple[Delivery, Any]],
    batch: _Batch,
    builder: ContextBuilder,
    outlets: Outlets,
) -> None:
    for row, profile in going:
        key = (profile.id, row.channel)
        policy = batch.policies[row.channel]
        capped = row.purpose == "marketing" and policy.max_messages is not None
        if capped and batch.counts.get(key, 0) >= (policy.max_messages or 0):
            _refuse(row, now, "frequency_cap")  # the batch already sent them enough
            continue
        _deliver(session, now, row, profile, batch, builder, outlets)
        if row.status == "sent" and row.purpose == "marketing":
            batch.counts[key] = batch.counts.get(key, 0) + 1


def _deliver(
    session: Session,
    now: datetime,
    row: Delivery,
    profile: Any,
    batch: _Batch,
    builder: ContextBuilder,
    outlets: Outlets,
) -> None:
    template = batch.templates[row.template_key]
    row.template_version = template.version
    context = builder.build(profile, row, dict(row.context or {}))
    try:
        rendered = render_content(row.channel, template.content, profile.locale, context)
    except TemplateError as exc:
        log.warning("message render failed", extra={"delivery_id": str(row.id), "error": str(exc)})
        _refuse(row, now, "render_error", "failed")
        return
    try:
        provider_id = _hand_over(session, now, row, profile, rendered, context, outlets, batch)
    except ServiceUnavailable:
        _refuse(row, now, "provider_unavailable", "failed")
        return
    except InvalidInput:
        _refuse(row, now, "invalid_address", "failed")
        return
    row.status, row.reason, row.sent_at, row.updated_at = "sent", None, now, now
    row.provider_message_id = provider_id[:300]
    row.scheduled_for = None


def _hand_over(
    session: Session,
    now: datetime,
    row: Delivery,
    profile: Any,
    rendered: Rendered,
    context: Mapping[str, Any],
    outlets: Outlets,
    batch: _Batch,
) -> str:
    parts = rendered.parts
    if row.channel == "email":
        html = parts.get("html")
        if html is not None:
            html = tracked_html(session, now, outlets.public_url, row.id, html, context)
        unsubscribe = str(context.get("unsubscribe_url") or "") or None
        return outlets.mailer.send_email(
            OutgoingEmail(
                to=profile.email,
                subject=parts.get("subject", ""),
                text=parts.get("text") or _text_of(parts.get("html", "")),
                html=html,
                date=now,
                unsubscribe_url=unsubscribe if row.purpose == "marketing" else None,
                headers={"X-Parcours-Delivery": str(row.id)},
            )
        )
    if row.channel == "sms":
        return outlets.sms.send_sms(row.id, profile.phone, parts.get("text", ""))
    if row.channel == "push":
        device = _address(profile, "push", batch) or ""
        return outlets.push.send_push(
            row.id, device, parts.get("title", ""), parts.get("body", ""), parts.get("deep_link")
        )
    try:
        payload = json.loads(parts.get("json", "{}"))
    except ValueError:
        raise TemplateError("the webhook body is not JSON") from None
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    url = parts.get("url", "")
    return outlets.webhooks.post(row.id, url, body, webhook_secret(batch.secret, url))


def webhook_secret(secret: bytes, url: str) -> str:
    """The signing secret of a webhook template's receiver (derived per address)."""
    return signing.keyed_digest(secret, WEBHOOK_SECRET, url)


def _text_of(html: str) -> str:
    return re.sub(r"\s+\n", "\n", re.sub(r"<[^>]+>", "", html)).strip()


# ------------------------------------------------------------------ opens and clicks


def tracked_html(
    session: Session,
    now: datetime,
    public_url: str,
    delivery_id: uuid.UUID,
    html: str,
    context: Mapping[str, Any],
) -> str:
    """Links rewritten to signed `/m/c/{token}` redirects (not the unsubscribe link)
    and an open pixel `/m/o/{token}.gif` at the end of the body."""
    base = public_url.rstrip("/")
    keep = {str(context.get("unsubscribe_url") or "")}

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(1).replace("&amp;", "&")
        if target in keep:
            return match.group(0)
        token = signing.sign(session, now, CLICK_SIGNING, {"d": str(delivery_id), "u": target})
        return f'href="{base}/m/c/{token}"'

    out = _HREF.sub(rewrite, html)
    token = signing.sign(session, now, OPEN_SIGNING, {"d": str(delivery_id)})
    pixel = f'<img src="{base}/m/o/{token}.gif" width="1" height="1" alt="">'
    if "</body>" in out:
        return out.replace("</body>", pixel + "</body>", 1)
    return out + pixel


def _delivery_of(session: Session, payload: Mapping[str, Any]) -> Delivery | None:
    try:
        return session.get(Delivery, uuid.UUID(str(payload["d"])))
    except (KeyError, ValueError):
        raise signing.InvalidToken() from None


def record_open(session: Session, now: datetime, token: str) -> None:
    """Count an open from the pixel's token (`InvalidToken` when altered)."""
    row = _delivery_of(session, signing.verify(session, now, OPEN_SIGNING, token))
    if row is not None:
        row.open_count += 1
        row.opened_at = row.opened_at or now


def record_click(session: Session, now: datetime, token: str) -> str:
    """Count a click and return the signed target (`InvalidToken` when altered: the
    redirect only ever goes where the message pointed)."""
    payload = signing.verify(session, now, CLICK_SIGNING, token)
    target = str(payload.get("u", ""))
    if not target.startswith(("https://", "http://")):
        raise signing.InvalidToken()
    row = _delivery_of(session, payload)
    if row is not None:
        row.click_count += 1
        row.clicked_at = row.clicked_at or now
        row.opened_at = row.opened_at or now  # a click proves the open
    return target


# ------------------------------------------------------------------ bounces


@dataclass(frozen=True)
class BounceReport:
    delivery_id: uuid.UUID | None
    hard: bool
    soft_count: int


def record_bounce(
    session: Session,
    now: datetime,
    *,
    hard: bool,
    delivery_id: uuid.UUID | None = None,
    channel: str = "email",
    address: str | None = None,
) -> BounceReport:
    """A bounce reported by the provider, for a delivery or an address: a hard bounce
    makes later sends to the address refused (`bounced_address`); soft ones are counted."""
    row = session.get(Delivery, delivery_id) if delivery_id is not None else None
    if delivery_id is not None and row is None:
        raise NotFound(f"No delivery has the id {delivery_id}.")
    if row is not None:
        channel = row.channel
        profile = (
            customers.live_profiles(session, [row.profile_id]).get(row.profile_id)
            if row.profile_id
            else None
        )
        if profile is not None and address is None:
            address = profile.email if channel == "email" else profile.phone
        if hard:
            row.status, row.reason, row.updated_at = "bounced", "hard_bounce", now
    if not address:
        raise InvalidInput(
            "Say which address bounced.",
            [FieldError("give a delivery_id or an address", pointer="#/address")],
        )
    secret = signing.instance_secret(session, now)
    assert secret is not None
    digest = address_digest(secret, channel, address)
    bounce = session.get(MessageBounce, (channel, digest))
    if bounce is None:
        bounce = MessageBounce(channel=channel, address_digest=digest, hard=False, soft_count=0)
        session.add(bounce)
    bounce.hard = bounce.hard or hard
    bounce.soft_count += 0 if hard else 1
    bounce.last_at = now
    session.flush()
    return BounceReport(row.id if row else None, bounce.hard, bounce.soft_count)


# ------------------------------------------------------------------ the due job


def due_rows(session: Session, now: datetime, limit: int) -> list[Delivery]:
    query = (
        select(Delivery)
        .where(Delivery.status.in_(("queued", "deferred")), Delivery.scheduled_for <= now)
        .order_by(Delivery.scheduled_for, Delivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def send_due(database: Database, clock: Clock, outlets: Outlets, batch_size: int = 200) -> int:
    """Send the queued and deferred messages whose time has come, in batches of one
    transaction each; every rule is checked again. Returns how many rows moved."""
    moved = 0
    while True:
        with database.transaction() as session, batch_outlets(outlets) as batch:
            rows = due_rows(session, clock.now(), batch_size)
            attempt_deliveries(session, clock.now(), rows, batch)
            moved += len(rows)
        if len(rows) < batch_size:
            return moved


def template_keys_exist(session: Session, keys: Sequence[str]) -> set[str]:
    return set(
        session.scalars(select(MessageTemplate.key).where(MessageTemplate.key.in_(list(keys))))
    )


# ------------------------------------------------------------------ preview

# A preview that fails, as `message % values` for the console.
DOES_NOT_RENDER = "The template %(key)s does not render for this profile: %(problem)s"


def preview_message(
    session: Session,
    now: datetime,
    actor: Actor,
    key: str,
    profile_id: uuid.UUID,
    extras: Mapping[str, Any] | None = None,
    public_url: str = "",
    timezone: str = "Europe/Paris",
) -> Rendered:
    """The template rendered for a real profile, as it would be sent now (nothing is
    sent or logged as a delivery; reading the profile is audited). Render errors are an
    `InvalidInput` naming the template."""
    template = get_template(session, key)
    customer = customers.get_customer(session, now, actor, profile_id)
    profile = customers.live_profiles(session, [customer.id]).get(customer.id, customer)
    row = Delivery(
        id=new_id(), channel=template.channel, purpose=template.kind, template_key=key,
        campaign_id=None, context=None,
    )  # fmt: skip
    builder = ContextBuilder(session, now, public_url, timezone)
    context = builder.build(profile, row, dict(extras or {}))
    try:
        return render_content(template.channel, template.content, profile.locale, context)
    except TemplateError as exc:
        where = [FieldError(str(exc), pointer="#/template")]  # Jinja's words, said as they are
        raise Refused.of(DOES_NOT_RENDER, where, key=repr(key), problem=exc) from None
