"""Campaigns: a one-off send of one or more template variants to a segment.

Statuses: draft → scheduled → sending → sent (or cancelled). When its time comes the
worker takes the segment's members, assigns each one deterministically (a hash of the
campaign and profile ids) to the holdout group or a variant, and writes one delivery
row per member with the idempotency key `campaign:<id>:<profile>` (inserted with "on
conflict do nothing", so a crash and a re-run never double-send). Holdout members get
a `suppressed`/`holdout` row: they are counted, never contacted. Each member's row is
due at the UTC send time, or at the local time of day in the member's own zone.
Results per variant come from the delivery log in one grouped query; conversions (orders
placed within N days of each person's send, or of the planned send for the holdout)
from one more grouped query over the orders facade's facts (see `conversions`).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, func, literal, literal_column, null, select, union_all, update
from sqlalchemy.orm import Session

from parcours import customers, orders
from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.errors import (
    ONE_OF,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    Refused,
    refusal,
)
from parcours.core.ids import new_id
from parcours.engagement.models import Campaign, Delivery
from parcours.engagement.policy import BETWEEN, HH_MM, LOCAL_TIME, zone_of
from parcours.engagement.sending import SendRequest, insert_ignoring_duplicates, queue_row
from parcours.engagement.templates_service import CHANNELS, TemplateView, get_template

STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")
HOLDOUT = "holdout"
CHUNK = 2000
EARLIEST_OFFSET = timedelta(hours=14)  # the first zone to reach a local time (UTC+14)
CONVERSION_DAYS = 7
MAX_CONVERSION_DAYS = 90
# What checking a campaign refuses, as `message % values` for the console.
NO_VARIANT = "give at least one variant"
VARIANT_NAME = "give each variant its own name"
UNKNOWN_TEMPLATE = "No message template has the key %(key)s."
OTHER_CHANNEL = "is a %(channel)s template"
MARKETING_ONLY = "campaigns send marketing templates"
ADD_UP = "the variants' percentages must add up to 100"
NOT_BOTH = "give a UTC time or a local date and time, not both"
TIME_ZONE = "give the time zone (UTC: Z)"
IN_THE_PAST = "is in the past"
DATE_AND_TIME = "give both the local date and time"
A_NAME = "give the campaign a name"
UNKNOWN_SEGMENT = "No segment has the key or id %(key)s."
NOT_VALID = "The campaign is not valid: see below."
WHEN = "give send_at, or local_date and local_time"
MESSAGES = (
    NO_VARIANT, VARIANT_NAME, BETWEEN, UNKNOWN_TEMPLATE, OTHER_CHANNEL, MARKETING_ONLY, ADD_UP,
    NOT_BOTH, TIME_ZONE, IN_THE_PAST, DATE_AND_TIME, LOCAL_TIME, A_NAME, ONE_OF,
    UNKNOWN_SEGMENT, NOT_VALID, WHEN,
)  # fmt: skip


class Audience(Protocol):
    """Where a campaign's members come from (the segments context by default)."""

    def find(self, session: Session, ref: str) -> uuid.UUID:
        """The id of the segment `ref` names (`NotFound` else)."""
        ...

    def members(self, session: Session, segment_id: uuid.UUID) -> Iterable[uuid.UUID]:
        """The profile ids in the segment now."""
        ...


class SegmentAudience:
    """The segments facade: `find_segment` and `members_of`."""

    def find(self, session: Session, ref: str) -> uuid.UUID:
        from parcours import segments

        return segments.find_segment(session, ref).id

    def members(self, session: Session, segment_id: uuid.UUID) -> Iterable[uuid.UUID]:
        from parcours import segments

        return segments.members_of(session, segment_id)


@dataclass(frozen=True)
class Variant:
    name: str
    template: str
    percent: int


@dataclass(frozen=True)
class CampaignInput:
    """A campaign to create: `variants` share 100 % of the non-held-out audience."""

    name: str
    segment: str
    channel: str
    variants: Sequence[Variant]
    holdout_percent: int = 0
    send_at: datetime | None = None
    local_date: date | None = None
    local_time: str | None = None


@dataclass(frozen=True)
class VariantResult:
    variant: str
    template: str | None
    targeted: int
    sent: int
    deferred: int
    queued: int
    failed: int
    refused: dict[str, int]
    opened: int
    clicked: int

    @property
    def open_rate(self) -> float | None:
        return self.opened / self.sent if self.sent else None

    @property
    def click_rate(self) -> float | None:
        return self.clicked / self.sent if self.sent else None


@dataclass(frozen=True)
class Conversion:
    """Orders of one group (a variant, or "holdout") within the window after the send.

    `people` is everyone assigned to the group (sent or refused alike: an intent-to-
    treat comparison, as the holdout also counts people who could not be reached);
    `converted` how many of them placed at least one order; `revenue` the orders'
    totals in cents per currency. `uplift` is the rate minus the holdout's rate and
    `p_value` the two-sided two-proportion z-test against the holdout (None without a
    holdout, or when nobody in either group converted or both did)."""

    group: str
    people: int
    converted: int
    orders: int
    revenue: dict[str, int]
    uplift: float | None = None
    p_value: float | None = None

    @property
    def rate(self) -> float | None:
        return self.converted / self.people if self.people else None


@dataclass(frozen=True)
class CampaignResults:
    campaign_id: uuid.UUID
    status: str
    held_out: int
    variants: list[VariantResult] = field(default_factory=list)
    days: int = CONVERSION_DAYS
    conversions: list[Conversion] = field(default_factory=list)  # variants, then holdout


# ------------------------------------------------------------------ checking


def _check_variants(
    session: Session, channel: str, variants: Sequence[Variant], holdout: int
) -> list[FieldError]:
    errors: list[FieldError] = []
    if not variants:
        return [refusal(NO_VARIANT, pointer="#/variants")]
    names = [v.name for v in variants]
    for i, variant in enumerate(variants):
        where = f"#/variants/{i}"
        if not variant.name.strip() or variant.name == HOLDOUT or names.count(variant.name) > 1:
            errors.append(refusal(VARIANT_NAME, pointer=f"{where}/name"))
        if not 1 <= variant.percent <= 100:
            errors.append(refusal(BETWEEN, pointer=f"{where}/percent", low=1, high=100))
        try:
            template: TemplateView = get_template(session, variant.template)
        except NotFound:
            key = repr(variant.template)
            errors.append(refusal(UNKNOWN_TEMPLATE, pointer=f"{where}/template", key=key))
            continue
        if template.channel != channel:
            errors.append(
                refusal(OTHER_CHANNEL, pointer=f"{where}/template", channel=template.channel)
            )
        if template.kind != "marketing":
            errors.append(refusal(MARKETING_ONLY, pointer=f"{where}/template"))
    if sum(v.percent for v in variants) != 100:
        errors.append(refusal(ADD_UP, pointer="#/variants"))
    if not 0 <= holdout <= 90:
        errors.append(refusal(BETWEEN, pointer="#/holdout_percent", low=0, high=90))
    return errors


def _check_schedule(
    now: datetime, send_at: datetime | None, local_date: date | None, local_time: str | None
) -> list[FieldError]:
    if send_at is not None and (local_date is not None or local_time is not None):
        return [refusal(NOT_BOTH, pointer="#/send_at")]
    if send_at is not None:
        if send_at.tzinfo is None:
            return [refusal(TIME_ZONE, pointer="#/send_at")]
        if send_at < now - timedelta(minutes=5):
            return [refusal(IN_THE_PAST, pointer="#/send_at")]
        return []
    if (local_date is None) != (local_time is None):
        return [refusal(DATE_AND_TIME, pointer="#/local_time")]
    if local_time is not None and not HH_MM.match(local_time):
        return [refusal(LOCAL_TIME, pointer="#/local_time")]
    if local_date is not None and local_date < (now - timedelta(days=1)).date():
        return [refusal(IN_THE_PAST, pointer="#/local_date")]
    return []


# ------------------------------------------------------------------ life cycle


def create_campaign(
    session: Session,
    now: datetime,
    by: str,
    data: CampaignInput,
    audience: Audience | None = None,
) -> Campaign:
    """A draft campaign (scheduled at once when it carries a send time)."""
    errors: list[FieldError] = []
    if not data.name.strip():
        errors.append(refusal(A_NAME, pointer="#/name"))
    if data.channel not in CHANNELS:
        errors.append(refusal(ONE_OF, pointer="#/channel", choices=", ".join(CHANNELS)))
    errors += _check_variants(session, data.channel, data.variants, data.holdout_percent)
    errors += _check_schedule(now, data.send_at, data.local_date, data.local_time)
    segment_id = None
    try:
        segment_id = (audience or SegmentAudience()).find(session, data.segment)
    except NotFound:
        errors.append(refusal(UNKNOWN_SEGMENT, pointer="#/segment", key=repr(data.segment)))
    if errors:
        raise Refused(f"The campaign is not valid: {errors[0].detail}.", errors, NOT_VALID)
    scheduled = data.send_at is not None or data.local_date is not None
    campaign = Campaign(
        id=new_id(),
        name=data.name.strip()[:200],
        segment=data.segment,
        segment_id=segment_id,
        channel=data.channel,
        variants=[
            {"name": v.name, "template": v.template, "percent": v.percent} for v in data.variants
        ],
        holdout_percent=data.holdout_percent,
        status="scheduled" if scheduled else "draft",
        send_at=data.send_at.astimezone(UTC) if data.send_at else None,
        local_date=data.local_date,
        local_time=data.local_time,
        created_at=now,
        created_by=by,
        updated_at=now,
    )
    session.add(campaign)
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: uuid.UUID) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"No campaign has the id {campaign_id}.")
    return campaign


def list_campaigns(session: Session, limit: int = 100) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc()).limit(limit)))


def schedule_campaign(
    session: Session,
    now: datetime,
    campaign_id: uuid.UUID,
    send_at: datetime | None = None,
    local_date: date | None = None,
    local_time: str | None = None,
) -> Campaign:
    """Set when a draft (or still scheduled) campaign goes out."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(
            f"The campaign is {campaign.status}: only a draft or scheduled one can be scheduled."
        )
    errors = _check_schedule(now, send_at, local_date, local_time)
    if send_at is None and local_date is None:
        errors.append(refusal(WHEN, pointer="#/send_at"))
    if errors:
        raise InvalidInput(f"Cannot schedule the campaign: {errors[0].detail}.", errors)
    campaign.send_at = send_at.astimezone(UTC) if send_at else None
    campaign.local_date, campaign.local_time = local_date, local_time
    campaign.status, campaign.updated_at = "scheduled", now
    return campaign


def cancel_campaign(session: Session, now: datetime, campaign_id: uuid.UUID) -> Campaign:
    """Stop a campaign; the messages not yet sent are recorded as `cancelled`."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status in ("sent", "cancelled"):
        raise Conflict(f"The campaign is already {campaign.status}.")
    session.execute(
        update(Delivery)
        .where(Delivery.campaign_id == campaign.id, Delivery.status.in_(("queued", "deferred")))
        .values(status="suppressed", reason="cancelled", updated_at=now)
    )
    campaign.status, campaign.updated_at, campaign.finished_at = "cancelled", now, now
    return campaign


# ------------------------------------------------------------------ assignment


def assign(
    campaign_id: uuid.UUID, profile_id: uuid.UUID, holdout: int, variants: Sequence[dict[str, Any]]
) -> str:
    """The variant name (or "holdout") of a member: the same every time."""
    digest = hashlib.sha256(f"{campaign_id}:{profile_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 10_000  # 0.01 % steps
    if bucket < holdout * 100:
        return HOLDOUT
    share = (bucket - holdout * 100) / (10_000 - holdout * 100) * 100
    edge = 0.0
    for variant in variants:
        edge += variant["percent"]
        if share < edge:
            return str(variant["name"])
    return str(variants[-1]["name"])


def start_time(campaign: Campaign) -> datetime | None:
    """When the worker expands the campaign (the earliest zone's local time)."""
    if campaign.send_at is not None:
        return campaign.send_at
    if campaign.local_date is None or campaign.local_time is None:
        return None
    naive = datetime.combine(campaign.local_date, time.fromisoformat(campaign.local_time))
    return naive.replace(tzinfo=UTC) - EARLIEST_OFFSET


def _due_at(campaign: Campaign, zone_name: str | None, fallback: str) -> datetime:
    if campaign.send_at is not None:
        return campaign.send_at
    assert campaign.local_date is not None
    assert campaign.local_time is not None
    local = datetime.combine(
        campaign.local_date,
        time.fromisoformat(campaign.local_time),
        tzinfo=zone_of(zone_name, fallback),
    )
    return local.astimezone(UTC)


def expand(
    session: Session, now: datetime, campaign: Campaign, audience: Audience, timezone: str
) -> int:
    """Write the campaign's delivery rows (idempotent); returns the audience size."""
    assert campaign.segment_id is not None
    members = list(dict.fromkeys(audience.members(session, campaign.segment_id)))
    templates = {v["name"]: get_template(session, v["template"]) for v in campaign.variants}
    first = templates[campaign.variants[0]["name"]]
    for start in range(0, len(members), CHUNK):
        chunk = members[start : start + CHUNK]
        profiles = customers.live_profiles(session, chunk)
        rows = []
        for profile_id in chunk:
            variant = assign(campaign.id, profile_id, campaign.holdout_percent, campaign.variants)
            request = SendRequest(profile_id, "", f"campaign:{campaign.id}:{profile_id}",
                                  source=f"campaign:{campaign.id}")  # fmt: skip
            profile = profiles.get(profile_id)
            due = _due_at(campaign, profile.timezone if profile else None, timezone)
            template = templates.get(variant, first)
            row = queue_row(now, request, template, due, campaign.id, variant)
            if variant == HOLDOUT:  # scheduled_for keeps the planned send (conversions)
                row.update(status="suppressed", reason="holdout")
            rows.append(row)
        insert_ignoring_duplicates(session, rows)
    return len(members)


def start_due(
    database: Database,
    clock: Clock,
    audience: Audience | None = None,
    timezone: str = "Europe/Paris",
) -> int:
    """Expand every scheduled campaign whose time has come; returns how many started."""
    now = clock.now()
    with database.transaction() as session:
        scheduled = session.scalars(select(Campaign).where(Campaign.status == "scheduled")).all()
        due = [c.id for c in scheduled if (start_time(c) or now + timedelta(days=1)) <= now]
    for campaign_id in due:
        with database.transaction() as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != "scheduled":
                continue
            size = expand(session, now, campaign, audience or SegmentAudience(), timezone)
            campaign.status, campaign.started_at = "sending", now
            campaign.audience_size, campaign.updated_at = size, now
    return len(due)


def finish_done(database: Database, clock: Clock) -> int:
    """Mark sent the sending campaigns with nothing left queued or deferred."""
    now = clock.now()
    with database.transaction() as session:
        pending = (
            select(Delivery.id)
            .where(Delivery.campaign_id == Campaign.id, Delivery.status.in_(("queued", "deferred")))
            .exists()
        )
        done = session.scalars(select(Campaign).where(Campaign.status == "sending", ~pending)).all()
        for campaign in done:
            campaign.status, campaign.finished_at, campaign.updated_at = "sent", now, now
        return len(done)


# ------------------------------------------------------------------ results


def results(
    session: Session, campaign_id: uuid.UUID, days: int = CONVERSION_DAYS
) -> CampaignResults:
    """Per variant: targeted, sent, deferred, refused by reason, opened and clicked;
    plus the holdout size (one grouped query over the delivery log) and the conversions
    within `days` days of the send per variant and for the holdout (one more)."""
    if not 1 <= days <= MAX_CONVERSION_DAYS:
        detail = f"must be between 1 and {MAX_CONVERSION_DAYS} days"
        raise InvalidInput(
            f"Cannot measure conversions: {detail}.", [FieldError(detail, parameter="days")]
        )
    campaign = get_campaign(session, campaign_id)
    rows = session.execute(
        select(
            Delivery.variant,
            Delivery.status,
            Delivery.reason,
            func.count(),
            func.count(Delivery.opened_at),
            func.count(Delivery.clicked_at),
        )
        .where(Delivery.campaign_id == campaign.id)
        .group_by(Delivery.variant, Delivery.status, Delivery.reason)
    ).all()
    tally: dict[str, dict[str, Any]] = {
        v["name"]: {"template": v["template"], "targeted": 0, "sent": 0, "deferred": 0,
                    "queued": 0, "failed": 0, "refused": {}, "opened": 0, "clicked": 0}
        for v in campaign.variants
    }  # fmt: skip
    held_out = 0
    for variant, status, reason, count, opened, clicked in rows:
        if variant == HOLDOUT:
            held_out += int(count)
            continue
        entry = tally.setdefault(
            str(variant), {"template": None, "targeted": 0, "sent": 0, "deferred": 0, "queued": 0,
                           "failed": 0, "refused": {}, "opened": 0, "clicked": 0},
        )  # fmt: skip
        entry["targeted"] += int(count)
        entry["opened"] += int(opened)
        entry["clicked"] += int(clicked)
        if status in ("sent", "deferred", "queued", "failed"):
            entry[status] += int(count)
        else:
            key = reason or status
            entry["refused"][key] = entry["refused"].get(key, 0) + int(count)
    variants = [VariantResult(name, **values) for name, values in tally.items()]
    sizes = {v.variant: v.targeted for v in variants} | {HOLDOUT: held_out}
    found = conversions(session, campaign.id, sizes, days)
    return CampaignResults(campaign.id, campaign.status, held_out, variants, days, found)


# ------------------------------------------------------------------ conversions


def _plus_days(column: Any, days: int, dialect: str) -> ColumnElement[Any]:
    """`column` + `days` days in SQL (SQLite keeps times as text: its own function)."""
    if dialect == "postgresql":
        return column + literal(timedelta(days=days))  # type: ignore[no-any-return]
    return func.strftime("%Y-%m-%d %H:%M:%f", column, f"+{int(days)} days")


def conversions(
    session: Session, campaign_id: uuid.UUID, sizes: dict[str, int], days: int
) -> list[Conversion]:
    """The orders each group's people placed within `days` days after their send (the
    send time for those sent, the planned time for the holdout and the refused), in one
    grouped statement: the campaign's delivery rows joined to the orders facade's
    `customer_orders` through the live profiles (merges followed on both sides, each
    order counted once per group). `sizes` are the people per group (the results'
    `targeted` and `held_out`)."""
    dialect = session.get_bind().dialect.name
    walk = customers.live_profile_of().subquery("conversion_walk")
    person, buyer = walk.alias("conversion_person"), walk.alias("conversion_buyer")
    placed = orders.customer_orders().subquery("conversion_orders")
    since = func.coalesce(Delivery.sent_at, Delivery.scheduled_for, Delivery.created_at)
    members = (
        select(
            Delivery.variant.label("variant"),
            func.coalesce(person.c.profile_id, Delivery.profile_id).label("profile_id"),
            since.label("since"),
        )
        .outerjoin(person, person.c.customer_id == Delivery.profile_id)
        .where(Delivery.campaign_id == campaign_id, Delivery.profile_id.is_not(None))
        .subquery("conversion_members")
    )
    bought = (
        select(
            members.c.variant, members.c.profile_id, placed.c.order_id, placed.c.total,
            placed.c.currency,
        )
        .join(buyer, buyer.c.profile_id == members.c.profile_id)
        .join(placed, placed.c.customer_id == buyer.c.customer_id)
        .where(
            placed.c.placed_at > members.c.since,
            placed.c.placed_at <= _plus_days(members.c.since, days, dialect),
        )
        .distinct()
        .cte("conversion_bought")
    )  # fmt: skip
    people = select(
        bought.c.variant, null().label("currency"),
        func.count(bought.c.profile_id.distinct()), func.count(bought.c.order_id.distinct()),
        literal_column("0").label("revenue"),
    ).group_by(bought.c.variant)  # fmt: skip
    money = select(
        bought.c.variant, bought.c.currency, literal_column("0"), literal_column("0"),
        func.sum(bought.c.total),
    ).group_by(bought.c.variant, bought.c.currency)  # fmt: skip
    tally: dict[str, dict[str, Any]] = {
        group: {"converted": 0, "orders": 0, "revenue": {}} for group in sizes
    }
    for variant, currency, converted, placed_orders, revenue in session.execute(
        union_all(people, money)
    ):
        entry = tally.setdefault(str(variant), {"converted": 0, "orders": 0, "revenue": {}})
        if currency is None:
            entry["converted"], entry["orders"] = int(converted), int(placed_orders)
        else:
            entry["revenue"][str(currency)] = int(revenue or 0)
    held = tally.get(HOLDOUT, {"converted": 0})
    holdout_people = sizes.get(HOLDOUT, 0)
    out = []
    for group, entry in tally.items():
        size = sizes.get(group, 0)
        uplift = p_value = None
        if group != HOLDOUT and size and holdout_people:
            uplift = entry["converted"] / size - held["converted"] / holdout_people
            p_value = two_proportion_p_value(
                entry["converted"], size, held["converted"], holdout_people
            )
        out.append(Conversion(group, size, entry["converted"], entry["orders"],
                              dict(sorted(entry["revenue"].items())), uplift, p_value))  # fmt: skip
    return sorted(out, key=lambda c: c.group == HOLDOUT)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """The two-sided p-value of a two-proportion z-test (pooled variance): does rate
    x1/n1 differ from x2/n2? z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p the
    pooled rate (x1 + x2) / (n1 + n2), and p-value = erfc(|z| / sqrt 2). None when it is
    undefined (an empty group, or a pooled rate of 0 or 1)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return None
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def campaign_dict(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": str(campaign.id),
        "name": campaign.name,
        "segment": campaign.segment,
        "channel": campaign.channel,
        "variants": campaign.variants,
        "holdout_percent": campaign.holdout_percent,
        "status": campaign.status,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "local_date": campaign.local_date.isoformat() if campaign.local_date else None,
        "local_time": campaign.local_time,
        "audience_size": campaign.audience_size,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
        "created_at": campaign.created_at.isoformat(),
    }


def results_dict(found: CampaignResults) -> dict[str, Any]:
    return {
        "campaign_id": str(found.campaign_id),
        "status": found.status,
        "held_out": found.held_out,
        "variants": [
            {
                "variant": v.variant,
                "template": v.template,
                "targeted": v.targeted,
                "sent": v.sent,
                "deferred": v.deferred,
                "queued": v.queued,
                "failed": v.failed,
                "refused": v.refused,
                "opened": v.opened,
                "clicked": v.clicked,
                "open_rate": v.open_rate,
                "click_rate": v.click_rate,
            }
            for v in found.variants
        ],
        "conversion_days": found.days,
        "conversions": [
            {
                "group": c.group,
                "people": c.people,
                "converted": c.converted,
                "orders": c.orders,
                "revenue": [{"amount": n, "currency": cur} for cur, n in c.revenue.items()],
                "conversion_rate": c.rate,
                "uplift": c.uplift,
                "p_value": c.p_value,
            }
            for c in found.conversions
        ],
    }
