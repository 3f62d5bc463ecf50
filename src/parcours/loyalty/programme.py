"""The loyalty programme: settings, the append-only points ledger, earning from orders on
every channel, expiry, tiers and rewards.

Rules (see docs/loyalty.md):
- a sale earns `points_per_euro` points per whole euro of its total without delivery,
  rounded down (`cents × points_per_euro // 100`), dated at the sale, expiring
  `expiry_months` later;
- a refund takes back the points of the refunded amount (rounded down), a cancellation
  what the order still holds; never more than the order earned, never below a zero
  balance (points already spent stay spent);
- every entry has a unique `reference` (order events use their message id), so a
  replayed event or a retried call never counts twice;
- a change locks the member's `loyalty_accounts` row through one conditional UPDATE that
  refuses to go below zero; entries are never updated, and deleted only by an erasure;
- an order that moves the member to another tier writes a `Loyalty Tier Changed` event
  to the tracking log (journeys and segments start from it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from parcours import customers, orders
from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.errors import (
    ONE_OF,
    FieldError,
    InvalidInput,
    NotFound,
    Refused,
    SaidConflict,
    refusal,
)
from parcours.core.events import Consumer, PeriodicJob
from parcours.core.models import OutboxEvent
from parcours.loyalty import ledger
from parcours.loyalty.models import (
    REWARD_KINDS,
    LoyaltyAccount,
    LoyaltyProgramme,
    LoyaltyReward,
    PointsEntry,
    RewardRedemption,
)
from parcours.loyalty.offers import issue_code
from parcours.loyalty.promotions import CENTS_ABOVE_0, KEY, NAME_IN_LANGUAGE

DEFAULT_TIERS: list[dict[str, Any]] = [
    {"key": "bronze", "name_fr": "Bronze", "name_en": "Bronze", "min_points": 0},
    {"key": "silver", "name_fr": "Argent", "name_en": "Silver", "min_points": 500},
    {"key": "gold", "name_fr": "Or", "name_en": "Gold", "min_points": 2000},
]
TIER_WINDOW = timedelta(days=365)
TIER_CHANGED = "Loyalty Tier Changed"
SOON = timedelta(days=30)
CONSUMER = "loyalty.points"
EXPIRY_JOB = "loyalty.expire_points"
# What the programme refuses, as `message % values` for the console.
NO_TIER = "give at least one tier"
TIER_KEY = "each tier needs a key (a-z, 0-9, _ -)"
A_NAME = "give a name"
POINTS_0_OR_MORE = "points, 0 or more"
FIRST_TIER = "the first tier starts at 0 points"
POINTS_PER_EURO = "from 0 to 100 points per euro"
EXPIRY_MONTHS = "from 1 to 120 months"
SETTINGS_NOT_CHANGED = "The programme settings are invalid; nothing was changed."
NOT_ENOUGH_POINTS = "Not enough points: %(needed)s needed, %(balance)s available."
REWARD_KEY = "2 to 64 of a-z, 0-9, _ and -"
POINTS_1_OR_MORE = "points, 1 or more"
PROMOTION_GIVEN = "the promotion whose code is given"
REWARD_NOT_CREATED = "The reward is invalid; nothing was created."
REWARD_NOT_CHANGED = "The reward is invalid; nothing was changed."
REWARD_KEY_IN_USE = "A reward already has the key %(key)s."
NO_ACTIVE_REWARD = "No active reward has the key %(key)s."
UNKNOWN_REWARD = "unknown reward"
UNKNOWN_CHANNEL = "Unknown channel %(channel)s."
MESSAGES = (
    NO_TIER, TIER_KEY, A_NAME, POINTS_0_OR_MORE, FIRST_TIER, POINTS_PER_EURO, EXPIRY_MONTHS,
    SETTINGS_NOT_CHANGED, NOT_ENOUGH_POINTS, REWARD_KEY, POINTS_1_OR_MORE, PROMOTION_GIVEN,
    REWARD_NOT_CREATED, REWARD_NOT_CHANGED, REWARD_KEY_IN_USE, NO_ACTIVE_REWARD, UNKNOWN_REWARD,
    UNKNOWN_CHANNEL,
)  # fmt: skip


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    enabled: bool
    points_per_euro: int
    expiry_months: int
    tiers: list[dict[str, Any]]


def programme(session: Session) -> Settings:
    """The programme's settings (the defaults until someone saves them)."""
    row = session.get(LoyaltyProgramme, 1)
    if row is None:
        return Settings(True, 1, 24, [dict(t) for t in DEFAULT_TIERS])
    return Settings(row.enabled, row.points_per_euro, row.expiry_months, list(row.tiers))


def _tier_errors(tiers: Any) -> list[FieldError]:
    if not isinstance(tiers, list) or not tiers:
        return [refusal(NO_TIER, pointer="#/tiers")]
    errors = []
    for i, tier in enumerate(tiers):
        if not isinstance(tier, Mapping) or not KEY.match(str(tier.get("key", ""))):
            errors.append(refusal(TIER_KEY, pointer=f"#/tiers/{i}/key"))
            continue
        for name in ("name_fr", "name_en"):
            if not str(tier.get(name) or "").strip():
                errors.append(refusal(A_NAME, pointer=f"#/tiers/{i}/{name}"))
        if not isinstance(tier.get("min_points"), int) or tier["min_points"] < 0:
            errors.append(refusal(POINTS_0_OR_MORE, pointer=f"#/tiers/{i}/min_points"))
    if not errors and min(t["min_points"] for t in tiers) != 0:
        errors.append(refusal(FIRST_TIER, pointer="#/tiers"))
    return errors


def update_programme(session: Session, now: datetime, changes: Mapping[str, Any]) -> Settings:
    """Change some settings (`points_per_euro` 0-100, `expiry_months` 1-120, `tiers`,
    `enabled`); refused with every bad field named."""
    current = programme(session)
    merged = {**current.__dict__, **{k: v for k, v in changes.items() if v is not None}}
    errors = []
    if not isinstance(merged["points_per_euro"], int) or not 0 <= merged["points_per_euro"] <= 100:
        errors.append(refusal(POINTS_PER_EURO, pointer="#/points_per_euro"))
    if not isinstance(merged["expiry_months"], int) or not 1 <= merged["expiry_months"] <= 120:
        errors.append(refusal(EXPIRY_MONTHS, pointer="#/expiry_months"))
    errors.extend(_tier_errors(merged["tiers"]))
    if errors:
        raise Refused(SETTINGS_NOT_CHANGED, errors)
    tiers = sorted(
        ({k: t[k] for k in ("key", "name_fr", "name_en", "min_points")} for t in merged["tiers"]),
        key=lambda t: t["min_points"],
    )
    row = session.get(LoyaltyProgramme, 1)
    if row is None:
        row = LoyaltyProgramme(id=1)
        session.add(row)
    row.enabled = bool(merged["enabled"])
    row.points_per_euro = merged["points_per_euro"]
    row.expiry_months = merged["expiry_months"]
    row.tiers = tiers
    row.updated_at = now
    session.flush()
    return programme(session)


def add_months(at: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day when it has fewer days)."""
    month = at.month - 1 + months
    year, month = at.year + month // 12, month % 12 + 1
    for day in (at.day, 30, 29, 28):
        try:
            return at.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise ValueError(at)  # pragma: no cover


# ------------------------------------------------------------------ the ledger


def _ensure_account(session: Session, now: datetime, profile_id: uuid.UUID) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(LoyaltyAccount)
        .values(profile_id=profile_id, balance=0, created_at=now)
        .on_conflict_do_nothing(index_elements=[LoyaltyAccount.profile_id])
    )


def _account_balance(session: Session, profile_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(LoyaltyAccount.balance).where(LoyaltyAccount.profile_id == profile_id)
        )
        or 0
    )


@dataclass(frozen=True)
class Posted:
    entry: PointsEntry | None  # None: the reference was already in the ledger
    balance: int


def post(
    session: Session,
    now: datetime,
    profile_id: uuid.UUID,
    kind: str,
    points: int,
    reason: str,
    reference: str,
    *,
    order_reference: str | None = None,
    channel: str | None = None,
    expires_at: datetime | None = None,
    at: datetime | None = None,
) -> Posted:
    """Append one entry (signed `points`) and move the member's balance with it, in one
    savepoint; a known `reference` writes nothing; a debit larger than the balance is a
    409 (nothing written)."""
    if session.scalar(select(PointsEntry.id).where(PointsEntry.reference == reference)):
        return Posted(None, _account_balance(session, profile_id))
    try:
        with session.begin_nested():
            _ensure_account(session, now, profile_id)
            moved = session.execute(
                update(LoyaltyAccount)
                .where(
                    LoyaltyAccount.profile_id == profile_id,
                    LoyaltyAccount.balance + points >= 0,
                )
                .values(balance=LoyaltyAccount.balance + points),
                execution_options={"synchronize_session": False},
            )
            if cast("CursorResult[Any]", moved).rowcount != 1:
                held = _account_balance(session, profile_id)
                raise SaidConflict(
                    NOT_ENOUGH_POINTS,
                    needed=-points,
                    balance=held,
                    extensions={"balance": held, "needed": -points},  # numbers for the API
                )
            entry = PointsEntry(
                profile_id=profile_id, kind=kind, points=points, reason=reason[:200],
                reference=reference[:160], order_reference=order_reference, channel=channel,
                expires_at=expires_at, created_at=at or now,
            )  # fmt: skip
            session.add(entry)
            session.flush()
    except IntegrityError:  # the same reference written meanwhile by another process
        return Posted(None, _account_balance(session, profile_id))
    return Posted(entry, _account_balance(session, profile_id))


def award_points(
    session: Session,
    now: datetime,
    profile_id: uuid.UUID,
    points: int,
    reason: str,
    reference: str,
) -> int:
    """Give (or, negative, take) `points` to a member as an `adjust` entry; idempotent on
    `reference`. Returns the new balance; a debit beyond the balance is a 409."""
    if points == 0 or not reference.strip():
        raise InvalidInput(
            "Give a number of points other than 0 and a reference.",
            [FieldError("not 0", "#/points")]
            if points == 0
            else [FieldError("required", "#/reference")],
        )
    expires = add_months(now, programme(session).expiry_months) if points > 0 else None
    return post(
        session,
        now,
        profile_id,
        "adjust",
        points,
        reason,
        f"adjust:{reference}",
        expires_at=expires,
    ).balance


def entries_of(session: Session, profile_id: uuid.UUID) -> list[PointsEntry]:
    return list(
        session.scalars(
            select(PointsEntry)
            .where(PointsEntry.profile_id == profile_id)
            .order_by(PointsEntry.created_at, PointsEntry.id)
        )
    )


def _plain(rows: Sequence[PointsEntry]) -> list[ledger.Entry]:
    return [ledger.Entry(r.id, r.kind, r.points, r.created_at, r.expires_at) for r in rows]


@dataclass(frozen=True)
class LoyaltyStatus:
    """A member now: balance (the ledger's sum), tier (by points earned over the last 12
    months), points expiring within 30 days and the next tier."""

    profile_id: uuid.UUID
    balance: int
    tier: dict[str, Any]
    earned_12_months: int
    expiring_soon: int
    next_tier: dict[str, Any] | None
    points_to_next_tier: int | None


def tier_for(
    tiers: Sequence[Mapping[str, Any]], earned: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    ordered = sorted(tiers, key=lambda t: t["min_points"])
    reached = [t for t in ordered if t["min_points"] <= earned] or ordered[:1]
    above = [t for t in ordered if t["min_points"] > earned]
    return dict(reached[-1]), (dict(above[0]) if above else None)


def points_balance(session: Session, now: datetime, profile_id: uuid.UUID) -> LoyaltyStatus:
    """The member's status now (one query over their ledger)."""
    entries = _plain(entries_of(session, profile_id))
    since = now - TIER_WINDOW
    earned = sum(
        e.points for e in entries if e.kind in ("earn", "reversal") and e.created_at > since
    )
    tier, above = tier_for(programme(session).tiers, earned)
    return LoyaltyStatus(
        profile_id=profile_id,
        balance=ledger.balance(entries),
        tier=tier,
        earned_12_months=max(0, earned),
        expiring_soon=ledger.expiring_between(entries, now, now + SOON),
        next_tier=above,
        points_to_next_tier=(above["min_points"] - earned) if above else None,
    )


# ------------------------------------------------------------------ orders


def _profile(session: Session, customer_id: uuid.UUID | None) -> uuid.UUID | None:
    if customer_id is None:
        return None
    return customers.canonical_profile_id(session, customer_id) or customer_id


def _order_holds(session: Session, order_reference: str) -> int:
    """Points an order still holds: what it earned less what was taken back."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.order_reference == order_reference
            )
        )
        or 0
    )


def handle_order_event(session: Session, row: OutboxEvent) -> None:
    """The consumer's handler: earn on `Order Completed` (web, app, call centre, POS
    receipts, marketplace alike), take back on `Order Refunded` and `Order Cancelled`."""
    settings = programme(session)
    if not settings.enabled:
        return
    try:
        order = orders.get_order(session, uuid.UUID(row.payload["order_id"]))
    except NotFound:
        return
    profile_id = _profile(session, order.customer_id)
    if profile_id is None:
        return
    reference = f"order:{order.number}"
    posted: Posted | None = None
    before: dict[str, Any] = {}  # the member's tier before the entry, read only when posting
    if row.type == orders.ORDER_COMPLETED:
        points = (order.total - order.delivery_total) * settings.points_per_euro // 100
        if points > 0:
            before = points_balance(session, row.occurred_at, profile_id).tier
            posted = post(
                session, row.occurred_at, profile_id, "earn", points,
                f"order {order.number}", f"earn:{row.payload['message_id']}",
                order_reference=reference, channel=order.channel,
                expires_at=add_months(row.occurred_at, settings.expiry_months),
                at=row.occurred_at,
            )  # fmt: skip
    else:
        held = _order_holds(session, reference)
        if row.type == orders.ORDER_REFUNDED:
            refund = int(row.payload.get("properties", {}).get("refund_cents") or 0)
            due = min(held, refund * settings.points_per_euro // 100)
        else:
            due = held
        due = min(due, _account_balance(session, profile_id))
        if due > 0:
            before = points_balance(session, row.occurred_at, profile_id).tier
            posted = post(
                session, row.occurred_at, profile_id, "reversal", -due,
                f"{row.type.lower()} {order.number}", f"reversal:{row.payload['message_id']}",
                order_reference=reference, channel=order.channel, at=row.occurred_at,
            )  # fmt: skip
    if posted is None or posted.entry is None:
        return
    change = _tier_change(session, row.occurred_at, profile_id, before)
    if change is None:
        return
    # Under the order's Segment ids, which the identity graph ties to the member; keyed
    # on the order event, so that a replay writes it once.
    ids, _ = orders.order_segment_ids(session, order)
    message = {
        "type": "track",
        "event": TIER_CHANGED,
        "messageId": f"{row.payload['message_id']}-tier",
        "timestamp": row.occurred_at.isoformat(),
        "properties": {**change, "order_number": order.number},
        "context": {"channel": order.channel},
        **ids,
    }
    customers.ingest_messages(session, row.recorded_at, [message])


def _tier_change(
    session: Session, at: datetime, profile_id: uuid.UUID, before: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The properties of `Loyalty Tier Changed` when the member's tier is no longer
    `before`, else None."""
    status = points_balance(session, at, profile_id)
    after = status.tier
    if after["key"] == before["key"]:
        return None
    return {
        "from_tier": before["key"],
        "to_tier": after["key"],
        "direction": "up" if after["min_points"] > before["min_points"] else "down",
        "points_12_months": status.earned_12_months,
    }


def credit_past_orders(session: Session, now: datetime, since: datetime) -> int:
    """Credit the points of the orders placed from `since` (UTC) up to `now` that the
    ledger does not know yet: a retailer joining with its order history, or opening the
    programme to past purchases. Each order earns as a live one would on what was kept
    (goods paid less refunds), dated at the sale with its own expiry; points already past
    their expiry are then expired. Set-based: a few statements whatever the history's
    size; running it again credits nothing twice. Returns the orders credited."""
    settings = programme(session)
    if not settings.enabled:
        return 0
    past = orders.settled_orders().subquery("past")
    owners = customers.live_profile_of().subquery("owners")
    known = select(PointsEntry.order_reference).where(PointsEntry.order_reference.is_not(None))
    reference = literal("order:") + past.c.number
    rows = session.execute(
        select(owners.c.profile_id, past.c.number, past.c.channel, past.c.placed_at, past.c.kept)
        .join(owners, owners.c.customer_id == past.c.customer_id)
        .where(past.c.placed_at >= since, past.c.placed_at <= now, past.c.kept > 0)
        .where(reference.not_in(known))
    ).all()
    entries = []
    for profile_id, number, channel, placed_at, kept in rows:
        points = int(kept) * settings.points_per_euro // 100
        if points > 0:
            entries.append(
                {
                    "profile_id": profile_id, "kind": "earn", "points": points,
                    "reason": f"order {number}", "reference": f"earn:history:{number}",
                    "order_reference": f"order:{number}", "channel": channel,
                    "expires_at": add_months(placed_at, settings.expiry_months),
                    "created_at": placed_at,
                }
            )  # fmt: skip
    if not entries:
        return 0
    earned: dict[uuid.UUID, int] = {}
    for entry in entries:
        earned[entry["profile_id"]] = earned.get(entry["profile_id"], 0) + entry["points"]
    for profile_id in earned:
        _ensure_account(session, now, profile_id)
    session.execute(insert(PointsEntry), entries)
    accounts = cast("Table", LoyaltyAccount.__table__)
    session.execute(
        update(accounts)
        .where(accounts.c.profile_id == bindparam("member"))
        .values(balance=accounts.c.balance + bindparam("earned")),
        [{"member": member, "earned": points} for member, points in earned.items()],
    )
    expire_points(session, now)
    return len(entries)


def points_consumer() -> Consumer:
    """Points from the orders of every channel (replays write nothing: unique references)."""
    return Consumer(
        CONSUMER,
        handle_order_event,
        frozenset({orders.ORDER_COMPLETED, orders.ORDER_REFUNDED, orders.ORDER_CANCELLED}),
    )


# ------------------------------------------------------------------ expiry


def expire_points(session: Session, now: datetime) -> int:
    """Write an `expire` entry for every member whose oldest points passed their date
    (FIFO: spent points came from the oldest lots); returns the entries written."""
    candidates = list(
        session.scalars(
            select(PointsEntry.profile_id)
            .join(LoyaltyAccount, LoyaltyAccount.profile_id == PointsEntry.profile_id)
            .where(
                PointsEntry.expires_at <= now, PointsEntry.points > 0, LoyaltyAccount.balance > 0
            )
            .distinct()
        )
    )
    if not candidates:
        return 0
    by_profile: dict[uuid.UUID, list[PointsEntry]] = {}
    for entry in session.scalars(
        select(PointsEntry).where(PointsEntry.profile_id.in_(candidates)).order_by(PointsEntry.id)
    ):
        by_profile.setdefault(entry.profile_id, []).append(entry)
    written = 0
    for profile_id, rows in by_profile.items():
        points, last_lot = ledger.due_to_expire(_plain(rows), now)
        if points > 0 and last_lot is not None:
            done = post(
                session, now, profile_id, "expire", -points, "points expired",
                f"expire:{profile_id}:{last_lot}",
            )  # fmt: skip
            written += done.entry is not None
    return written


def expiry_job() -> PeriodicJob:
    """Expire points hourly."""

    def run(db: Database, clock: Clock) -> int:
        with db.transaction() as session:
            return expire_points(session, clock.now())

    return PeriodicJob(EXPIRY_JOB, 3600.0, run)


# ------------------------------------------------------------------ rewards


def add_reward(session: Session, now: datetime, data: Mapping[str, Any]) -> LoyaltyReward:
    """A reward: `points_cost` points for a unique code of `promotion_key`
    (kind `promo_code`) or for `amount_off` cents (kind `discount`)."""
    errors = []
    if not KEY.match(str(data.get("key", ""))):
        errors.append(refusal(REWARD_KEY, pointer="#/key"))
    for name in ("name_fr", "name_en"):
        if not str(data.get(name) or "").strip():
            errors.append(refusal(NAME_IN_LANGUAGE, pointer=f"#/{name}"))
    if not isinstance(data.get("points_cost"), int) or data["points_cost"] < 1:
        errors.append(refusal(POINTS_1_OR_MORE, pointer="#/points_cost"))
    kind = data.get("kind")
    if kind not in REWARD_KINDS:
        errors.append(refusal(ONE_OF, pointer="#/kind", choices=", ".join(REWARD_KINDS)))
    if kind == "discount" and int(data.get("amount_off") or 0) <= 0:
        errors.append(refusal(CENTS_ABOVE_0, pointer="#/amount_off"))
    if kind == "promo_code" and not data.get("promotion_key"):
        errors.append(refusal(PROMOTION_GIVEN, pointer="#/promotion_key"))
    if errors:
        raise Refused(REWARD_NOT_CREATED, errors)
    if kind == "promo_code":
        from parcours.loyalty.promotions import get_promotion

        get_promotion(session, str(data["promotion_key"]))
    if session.scalar(select(LoyaltyReward.id).where(LoyaltyReward.key == data["key"])):
        key = str(data["key"])
        raise SaidConflict(REWARD_KEY_IN_USE, key=repr(key), extensions={"key": key})
    reward = LoyaltyReward(
        key=str(data["key"]), name_fr=str(data["name_fr"]).strip(),
        name_en=str(data["name_en"]).strip(), points_cost=int(data["points_cost"]),
        kind=str(kind), promotion_key=data.get("promotion_key") if kind == "promo_code" else None,
        amount_off=int(data["amount_off"]) if kind == "discount" else None,
        currency=str(data.get("currency", "EUR")), active=True, created_at=now,
    )  # fmt: skip
    session.add(reward)
    session.flush()
    return reward


def update_reward(session: Session, key: str, changes: Mapping[str, Any]) -> LoyaltyReward:
    """Change a reward's `name_fr`, `name_en`, `points_cost`, `amount_off` (cents, a
    discount only) or `active` (an inactive reward cannot be given; rewards already given
    keep what they were). Refused with every bad field named; 404 for an unknown key."""
    reward = session.scalar(select(LoyaltyReward).where(LoyaltyReward.key == key))
    if reward is None:
        raise NotFound(f"No reward has the key {key!r}.")
    errors = []
    for name in ("name_fr", "name_en"):
        if name in changes and not str(changes[name] or "").strip():
            errors.append(refusal(NAME_IN_LANGUAGE, pointer=f"#/{name}"))
    cost = changes.get("points_cost", reward.points_cost)
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        errors.append(refusal(POINTS_1_OR_MORE, pointer="#/points_cost"))
    amount = changes.get("amount_off", reward.amount_off)
    if reward.kind == "discount" and (not isinstance(amount, int) or amount <= 0):
        errors.append(refusal(CENTS_ABOVE_0, pointer="#/amount_off"))
    if errors:
        raise Refused(REWARD_NOT_CHANGED, errors)
    for name in ("name_fr", "name_en"):
        if name in changes:
            setattr(reward, name, str(changes[name]).strip())
    reward.points_cost = cost
    if reward.kind == "discount":
        reward.amount_off = amount
    if "active" in changes:
        reward.active = bool(changes["active"])
    session.flush()
    return reward


def list_rewards(session: Session, active_only: bool = False) -> list[LoyaltyReward]:
    query = select(LoyaltyReward).order_by(LoyaltyReward.points_cost, LoyaltyReward.key)
    if active_only:
        query = query.where(LoyaltyReward.active.is_(True))
    return list(session.scalars(query))


@dataclass(frozen=True)
class RewardGiven:
    redemption: RewardRedemption
    reward: LoyaltyReward
    balance: int


def redeem_reward(
    session: Session,
    now: datetime,
    profile_id: uuid.UUID,
    reward_key: str,
    channel: str,
    store_id: uuid.UUID | None = None,
) -> RewardGiven:
    """Spend a member's points on a reward (online or at the till): the points leave
    through a `redeem` entry (409 if the balance is short), and the member gets a unique
    code of the reward's promotion or a fixed discount to apply now."""
    reward = session.scalar(select(LoyaltyReward).where(LoyaltyReward.key == reward_key))
    if reward is None or not reward.active:
        unknown = [refusal(UNKNOWN_REWARD, pointer="#/reward")]
        raise Refused.of(NO_ACTIVE_REWARD, unknown, key=repr(reward_key))
    if channel not in orders.ORDER_CHANNELS:
        choices = ", ".join(orders.ORDER_CHANNELS)
        where = [refusal(ONE_OF, pointer="#/channel", choices=choices)]
        raise Refused.of(UNKNOWN_CHANNEL, where, channel=repr(channel))
    redemption_id = uuid.uuid4()
    posted = post(
        session, now, profile_id, "redeem", -reward.points_cost, f"reward {reward.key}",
        f"reward:{redemption_id}", channel=channel,
    )  # fmt: skip
    code = None
    if reward.kind == "promo_code" and reward.promotion_key:
        code = issue_code(session, now, reward.promotion_key, profile_id).code
    redemption = RewardRedemption(
        id=redemption_id, profile_id=profile_id, reward_id=reward.id, points=reward.points_cost,
        code=code, amount_off=reward.amount_off, currency=reward.currency, channel=channel,
        store_id=store_id, created_at=now,
    )  # fmt: skip
    session.add(redemption)
    session.flush()
    return RewardGiven(redemption, reward, posted.balance)


def recent_entries(session: Session, profile_id: uuid.UUID, limit: int = 50) -> list[PointsEntry]:
    """The member's latest ledger entries, newest first."""
    return list(
        session.scalars(
            select(PointsEntry)
            .where(PointsEntry.profile_id == profile_id)
            .order_by(PointsEntry.created_at.desc(), PointsEntry.id.desc())
            .limit(limit)
        )
    )


def count_members(session: Session) -> int:
    """How many people hold a points account (for the console home page)."""
    return int(session.scalar(select(func.count()).select_from(LoyaltyAccount)) or 0)
