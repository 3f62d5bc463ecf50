"""Tables of the loyalty context: one per concept.

- `promotions`: what an offer gives and where it applies (automatic or code-only).
- `promo_codes`: the codes of a promotion, unique single-use (generated, with a check
  character) or shared (a chosen word, many uses, optional caps); `uses` is the counter
  the conditional UPDATE of a redemption moves.
- `promo_code_redemptions`: every use of a code (channel, store, order, profile, amount).
- `loyalty_programme`: the one programme of the installation (a single row, id 1).
- `loyalty_accounts`: one row per member, the lock and guard of their balance.
- `points_ledger`: the append-only ledger of points (earn, redeem, expire, adjust,
  reversal); the balance is the sum of a member's entries.
- `loyalty_rewards`: the rewards catalogue; `reward_redemptions`: rewards given.

Money is integer cents of `currency`; times are UTC.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from parcours.core.db import Base, JSONType, UTCDateTime, UUIDType
from parcours.core.ids import new_id

PROMOTION_KINDS = ("percent_off", "amount_off", "buy_x_get_y", "free_delivery")
CODE_KINDS = ("unique", "shared")
LEDGER_KINDS = ("earn", "redeem", "expire", "adjust", "reversal")
REWARD_KINDS = ("promo_code", "discount")


class Promotion(Base):
    """An offer: `kind` says what it gives (`percent_bp` basis points, `amount_off` cents
    of `currency`, `buy_quantity`/`get_quantity` cheapest units free grouped by SKU or
    category, or free delivery); empty scope lists mean "everything"."""

    __tablename__ = "promotions"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name_fr: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    percent_bp: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount_off: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    buy_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    get_quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    group_by: Mapped[str] = mapped_column(String(16), default="sku")
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    skus: Mapped[list[str]] = mapped_column(JSONType, default=list)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    store_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    min_subtotal: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PromoCode(Base):
    """A code of a promotion. Unique codes have `max_uses` 1; shared codes may cap the
    total (`max_uses`, None: no cap) and the uses per customer."""

    __tablename__ = "promo_codes"
    __table_args__ = (
        CheckConstraint("max_uses IS NULL OR uses <= max_uses", name="uses_within_cap"),
    )

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    promotion_id: Mapped[uuid.UUID] = mapped_column(UUIDType, index=True)
    kind: Mapped[str] = mapped_column(String(8))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True, index=True)
    profile_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True, index=True)
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    per_customer_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PromoCodeRedemption(Base):
    """One use of a code: where, for which order, by whom, for how much (cents)."""

    __tablename__ = "promo_code_redemptions"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(40), index=True)
    promotion_id: Mapped[uuid.UUID] = mapped_column(UUIDType, index=True)
    channel: Mapped[str] = mapped_column(String(24))
    store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    order_reference: Mapped[str | None] = mapped_column(String(64), nullable=True)
    profile_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True, index=True)
    amount: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoyaltyProgramme(Base):
    """The programme's settings (one row, id 1): points per euro, expiry, tiers."""

    __tablename__ = "loyalty_programme"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    points_per_euro: Mapped[int] = mapped_column(Integer, default=1)
    expiry_months: Mapped[int] = mapped_column(Integer, default=24)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoyaltyAccount(Base):
    """A member: the row every change of their points locks, and the guard that keeps
    their balance from going below zero (`balance` always equals the ledger's sum)."""

    __tablename__ = "loyalty_accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    profile_id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointsEntry(Base):
    """One line of the append-only points ledger (`points` signed); `reference` is unique
    so an order, a return or a retried call never writes twice."""

    __tablename__ = "points_ledger"
    __table_args__ = (Index("ix_points_ledger_profile_at", "profile_id", "created_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    profile_id: Mapped[uuid.UUID] = mapped_column(UUIDType)
    kind: Mapped[str] = mapped_column(String(12))
    points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(160), unique=True)
    order_reference: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    channel: Mapped[str | None] = mapped_column(String(24), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoyaltyReward(Base):
    """A reward of the catalogue: `points_cost` points for a unique code of
    `promotion_key`, or for a fixed discount (`amount_off` cents of `currency`)."""

    __tablename__ = "loyalty_rewards"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name_fr: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    points_cost: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))
    promotion_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount_off: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RewardRedemption(Base):
    """A reward given to a member (the points left through the ledger's `redeem`)."""

    __tablename__ = "reward_redemptions"

    id: Mapped[uuid.UUID] = mapped_column(UUIDType, primary_key=True, default=new_id)
    profile_id: Mapped[uuid.UUID] = mapped_column(UUIDType, index=True)
    reward_id: Mapped[uuid.UUID] = mapped_column(UUIDType)
    points: Mapped[int] = mapped_column(Integer)
    code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amount_off: Mapped[int | None] = mapped_column(Integer, nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    channel: Mapped[str] = mapped_column(String(24))
    store_id: Mapped[uuid.UUID | None] = mapped_column(UUIDType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
