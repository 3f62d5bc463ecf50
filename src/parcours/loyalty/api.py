"""REST API of the loyalty context.

Managing offers and the programme needs `activation:write`. The tills and the shop
(`commerce:write`) may also check and redeem promo codes, read a member's points and
redeem rewards: what happens at the counter. Creating POSTs take an `Idempotency-Key`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from parcours.core.audit import Actor
from parcours.core.auth import verify_api_key
from parcours.core.deps import (
    ClockDep,
    DbSession,
    IdempotencyKey,
    api_caller,
    presented_key,
    respond_once,
)
from parcours.core.errors import Forbidden
from parcours.loyalty import offers, programme, promotions
from parcours.loyalty.promotions import Basket, BasketLine

router = APIRouter(tags=["loyalty"])
MANAGE = "activation:write"
COUNTER_SCOPES = (MANAGE, "commerce:write")
Manager = Annotated[Actor, Depends(api_caller(MANAGE))]


def counter_caller(request: Request, session: DbSession) -> Actor:
    """A key holding `activation:write` or `commerce:write` (the tills)."""
    actor = verify_api_key(session, presented_key(request))
    if actor.kind == "cli" or "admin" in actor.scopes or set(COUNTER_SCOPES) & set(actor.scopes):
        return actor
    raise Forbidden("This action needs the 'commerce:write' or 'activation:write' scope.")


Counter = Annotated[Actor, Depends(counter_caller)]


# ------------------------------------------------------------------ schemas


class PromotionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(examples=["spring-10"])
    name_fr: str
    name_en: str
    kind: str = Field(description="percent_off, amount_off, buy_x_get_y or free_delivery")
    percent_bp: int | None = Field(None, description="percent_off: basis points (1000 = 10 %)")
    amount_off: int | None = Field(None, description="amount_off: cents")
    currency: str = "EUR"
    buy_quantity: int | None = None
    get_quantity: int | None = None
    group_by: str = Field("sku", description="buy_x_get_y: units grouped by sku or category")
    categories: list[str] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    store_ids: list[str] = Field(default_factory=list)
    min_subtotal: int = Field(0, description="cents, on the lines the promotion covers")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True
    automatic: bool = Field(False, description="true: no code needed")


class ActiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool


class CodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=offers.MAX_BATCH)
    prefix: str = Field("", max_length=8)
    valid_days: int | None = None


class SharedCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=40, examples=["BIENVENUE10"])
    max_uses: int | None = None
    per_customer_max: int | None = None
    expires_at: datetime | None = None


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str
    category: str = ""
    quantity: int = Field(ge=1, le=999)
    unit_price: int = Field(ge=0, description="cents, VAT included")


class RedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = "store"
    store_id: uuid.UUID | None = None
    profile_id: uuid.UUID | None = None
    order_reference: str | None = Field(None, max_length=64)
    currency: str = "EUR"
    subtotal: int | None = Field(None, ge=0, description="cents, when no lines are given")
    lines: list[LineIn] = Field(default_factory=list, max_length=200)
    amount: int | None = Field(None, ge=0, description="cents the till took off (default: ours)")


class ProgrammeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    points_per_euro: int | None = None
    expiry_months: int | None = None
    tiers: list[dict[str, Any]] | None = None


class RewardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    name_fr: str
    name_en: str
    points_cost: int
    kind: str = Field(description="promo_code or discount")
    promotion_key: str | None = None
    amount_off: int | None = None
    currency: str = "EUR"


class RewardPatch(BaseModel):
    """What may change in a reward; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name_fr: str | None = None
    name_en: str | None = None
    points_cost: int | None = None
    amount_off: int | None = Field(None, description="cents, for a discount reward")
    active: bool | None = None


class RewardRedemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reward: str = Field(description="the reward's key")
    channel: str = "store"
    store_id: uuid.UUID | None = None


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: int
    reason: str = Field(min_length=1, max_length=200)
    reference: str = Field(min_length=1, max_length=120)


# ------------------------------------------------------------------ promotions


@router.post("/v1/promotions", status_code=201, summary="Create a promotion")
def create_promotion(
    request: Request, body: PromotionIn, caller: Manager, session: DbSession, clock: ClockDep,
    key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    now = clock.now()

    def action() -> dict[str, Any]:
        created = promotions.add_promotion(session, now, body.model_dump())
        return _json(promotions.describe(created))

    return respond_once(request, session, now, caller, key, body, action)


@router.get("/v1/promotions", summary="Promotions with their redemption counts")
def list_promotions(_: Manager, session: DbSession) -> dict[str, Any]:
    return {
        "items": [
            {**_json(promotions.describe(s.promotion)), "redemptions": s.redemptions,
             "discount_total": s.discount_total}
            for s in promotions.list_promotions(session)
        ]
    }  # fmt: skip


@router.get("/v1/promotions/{promotion_key}", summary="One promotion")
def get_promotion(promotion_key: str, _: Manager, session: DbSession) -> dict[str, Any]:
    return _json(promotions.describe(promotions.get_promotion(session, promotion_key)))


@router.patch("/v1/promotions/{promotion_key}", summary="Switch a promotion on or off")
def patch_promotion(
    promotion_key: str, body: ActiveIn, _: Manager, session: DbSession, clock: ClockDep
) -> dict[str, Any]:
    changed = promotions.set_active(session, clock.now(), promotion_key, body.active)
    return _json(promotions.describe(changed))


@router.post(
    "/v1/promotions/{promotion_key}/codes",
    status_code=201,
    summary="Generate unique single-use codes (returned when 1,000 or fewer)",
)
def create_codes(
    request: Request, promotion_key: str, body: CodesIn, caller: Manager, session: DbSession,
    clock: ClockDep, key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    now = clock.now()

    def action() -> dict[str, Any]:
        batch = offers.generate_codes(
            session, now, promotion_key, body.count, prefix=body.prefix, valid_days=body.valid_days
        )
        listed = list(offers.batch_codes(session, batch.id)) if batch.count <= 1_000 else None
        return _json({
            "batch_id": batch.id, "promotion": batch.promotion_key, "count": batch.count,
            "expires_at": batch.expires_at, "codes": listed,
            "csv": f"/v1/promotions/{promotion_key}/codes.csv?batch={batch.id}",
        })  # fmt: skip

    return respond_once(request, session, now, caller, key, body, action)


@router.get("/v1/promotions/{promotion_key}/codes.csv", summary="A batch of codes as CSV")
def codes_csv(
    promotion_key: str, batch: uuid.UUID, _: Manager, session: DbSession
) -> PlainTextResponse:
    promotions.get_promotion(session, promotion_key)
    text = "code\n" + "".join(f"{code}\n" for code in offers.batch_codes(session, batch))
    return PlainTextResponse(
        text,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{promotion_key}-{batch}.csv"'},
    )


@router.post(
    "/v1/promotions/{promotion_key}/shared-codes", status_code=201, summary="Add a shared code"
)
def create_shared_code(
    request: Request, promotion_key: str, body: SharedCodeIn, caller: Manager, session: DbSession,
    clock: ClockDep, key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    now = clock.now()

    def action() -> dict[str, Any]:
        row = offers.add_shared_code(
            session, now, promotion_key, body.code, max_uses=body.max_uses,
            per_customer_max=body.per_customer_max, expires_at=body.expires_at,
        )  # fmt: skip
        return _json({
            "code": row.code, "promotion": promotion_key, "max_uses": row.max_uses,
            "per_customer_max": row.per_customer_max, "expires_at": row.expires_at,
        })  # fmt: skip

    return respond_once(request, session, now, caller, key, body, action)


# ------------------------------------------------------------------ codes at the counter


def _basket(
    channel: str, store_id: uuid.UUID | None, profile_id: uuid.UUID | None, currency: str,
    subtotal: int | None, lines: list[LineIn],
) -> Basket:  # fmt: skip
    return Basket(
        channel=channel,
        currency=currency,
        lines=tuple(BasketLine(x.sku, x.category, x.quantity, x.unit_price) for x in lines),
        store_id=store_id,
        profile_id=profile_id,
        subtotal_hint=subtotal,
    )


@router.get("/v1/promo-codes/{code}", summary="Can this code be used now, here, on this basket?")
def check_promo_code(
    code: str,
    _: Counter,
    session: DbSession,
    clock: ClockDep,
    channel: str = "store",
    store_id: uuid.UUID | None = None,
    profile_id: uuid.UUID | None = None,
    currency: str = "EUR",
    subtotal: Annotated[int | None, Query(ge=0, description="basket total in cents")] = None,
) -> dict[str, Any]:
    basket = _basket(channel, store_id, profile_id, currency, subtotal, [])
    check = offers.check_code(session, clock.now(), code, basket)
    return _check_json(check)


def _check_json(check: offers.CodeCheck) -> dict[str, Any]:
    promotion = check.promotion
    return _json({
        "code": check.code, "valid": check.valid, "reason": check.reason,
        "message": check.message, "discount": check.discount,
        "free_delivery": check.free_delivery,
        "promotion": promotions.describe(promotion) if promotion is not None else None,
    })  # fmt: skip


@router.post(
    "/v1/promo-codes/{code}/redemptions",
    status_code=201,
    summary="Redeem a code for a sale (once: send an Idempotency-Key)",
)
def redeem_promo_code(
    request: Request, code: str, body: RedemptionIn, caller: Counter, session: DbSession,
    clock: ClockDep, key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    now = clock.now()
    basket = _basket(
        body.channel, body.store_id, body.profile_id, body.currency, body.subtotal, body.lines
    )

    def action() -> dict[str, Any]:
        done = offers.redeem_code(
            session, now, code, basket, order_reference=body.order_reference, amount=body.amount
        )
        return _json({
            "id": done.id, "code": done.code, "channel": done.channel, "store_id": done.store_id,
            "order_reference": done.order_reference, "profile_id": done.profile_id,
            "amount": done.amount, "currency": done.currency, "redeemed_at": done.redeemed_at,
        })  # fmt: skip

    return respond_once(request, session, now, caller, key, body, action)


# ------------------------------------------------------------------ the programme


@router.get("/v1/loyalty/settings", summary="The loyalty programme's settings")
def get_settings(_: Manager, session: DbSession) -> dict[str, Any]:
    return programme.programme(session).__dict__


@router.put("/v1/loyalty/settings", summary="Change the loyalty programme's settings")
def put_settings(
    body: ProgrammeIn, _: Manager, session: DbSession, clock: ClockDep
) -> dict[str, Any]:
    return programme.update_programme(session, clock.now(), body.model_dump()).__dict__


@router.get("/v1/loyalty/rewards", summary="The rewards catalogue")
def get_rewards(_: Counter, session: DbSession) -> dict[str, Any]:
    return {"items": [_reward(r) for r in programme.list_rewards(session)]}


def _reward(reward: Any) -> dict[str, Any]:
    return {
        "key": reward.key, "name_fr": reward.name_fr, "name_en": reward.name_en,
        "points_cost": reward.points_cost, "kind": reward.kind,
        "promotion_key": reward.promotion_key, "amount_off": reward.amount_off,
        "currency": reward.currency, "active": reward.active,
    }  # fmt: skip


@router.post("/v1/loyalty/rewards", status_code=201, summary="Add a reward")
def post_reward(
    request: Request, body: RewardIn, caller: Manager, session: DbSession, clock: ClockDep,
    key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    now = clock.now()
    return respond_once(
        request, session, now, caller, key, body,
        lambda: _reward(programme.add_reward(session, now, body.model_dump())),
    )  # fmt: skip


@router.patch("/v1/loyalty/rewards/{reward_key}", summary="Change or switch off a reward")
def patch_reward(
    reward_key: str, body: RewardPatch, _: Manager, session: DbSession
) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    return _reward(programme.update_reward(session, reward_key, changes))


def status_json(session: Session, now: datetime, profile_id: uuid.UUID) -> dict[str, Any]:
    status = programme.points_balance(session, now, profile_id)
    entries = programme.recent_entries(session, profile_id)
    return _json({
        **status.__dict__,
        "ledger": [
            {"kind": e.kind, "points": e.points, "reason": e.reason, "channel": e.channel,
             "order_reference": e.order_reference, "expires_at": e.expires_at,
             "at": e.created_at}
            for e in entries
        ],
    })  # fmt: skip


@router.get("/v1/loyalty/{profile_id}", summary="A member's balance, tier and latest entries")
def get_member(
    profile_id: uuid.UUID, _: Counter, session: DbSession, clock: ClockDep
) -> dict[str, Any]:
    return status_json(session, clock.now(), profile_id)


@router.post(
    "/v1/loyalty/{profile_id}/redemptions",
    status_code=201,
    summary="Spend points on a reward (refused when the balance is short)",
)
def redeem_reward(
    request: Request, profile_id: uuid.UUID, body: RewardRedemptionIn, caller: Counter,
    session: DbSession, clock: ClockDep, key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    now = clock.now()

    def action() -> dict[str, Any]:
        given = programme.redeem_reward(
            session, now, profile_id, body.reward, body.channel, body.store_id
        )
        done = given.redemption
        return _json({
            "id": done.id, "reward": given.reward.key, "points": done.points,
            "balance": given.balance, "code": done.code, "amount_off": done.amount_off,
            "currency": done.currency, "channel": done.channel, "at": done.created_at,
        })  # fmt: skip

    return respond_once(request, session, now, caller, key, body, action)


@router.post(
    "/v1/loyalty/{profile_id}/adjustments",
    status_code=201,
    summary="Give or take points by hand (idempotent on reference)",
)
def adjust(
    profile_id: uuid.UUID, body: AdjustmentIn, _: Manager, session: DbSession, clock: ClockDep
) -> dict[str, Any]:
    balance = programme.award_points(
        session, clock.now(), profile_id, body.points, body.reason, body.reference
    )
    return {"profile_id": str(profile_id), "balance": balance}


def _json(value: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON values (ids and times as strings)."""
    return {k: _plain(v) for k, v in value.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return _json(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
