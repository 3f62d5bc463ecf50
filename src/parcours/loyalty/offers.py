"""Promo codes in the database: generating them in bulk, judging them against a basket,
and redeeming them once, atomically.

A redemption is one conditional UPDATE (`uses = uses + 1` only while under the cap and
not expired), never a read-modify-write: of two checkouts or tills racing for a unique
code, exactly one moves the counter; the other gets a 409 naming the code. Every refusal
is logged (the code masked, the reason, the channel; never who asked).

`PromotionEngine` is the orders context's promotion hook: automatic promotions plus the
cart's codes when a cart is priced, and the codes' redemption when its order is placed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from parcours import orders
from parcours.core.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    Refused,
    SaidConflict,
    refusal,
)
from parcours.loyalty import codes
from parcours.loyalty.models import PromoCode, PromoCodeRedemption, Promotion
from parcours.loyalty.promotions import Basket, Grant, basket_of, get_promotion, grant, why_not

log = logging.getLogger("parcours.loyalty")

APPLIED = "applied"
UNKNOWN = "unknown code"
MISTYPED = "this code is mistyped: check it and type it again"
EXPIRED = "this code has expired"
USED = "this code was already used"
USED_UP = "this code has been used up"
NOT_YOURS = "this code belongs to another customer"
LOG_IN = "log in to use this code"
CUSTOMER_CAP = "you have already used this code"
TWICE = "this offer is already applied"
MAX_BATCH = 2_000_000
CHUNK = 50_000
# What generating and adding codes refuses, as `message % values` for the console.
COUNT_RANGE = f"from 1 to {MAX_BATCH:,}"
DAYS_RANGE = "from 1 to 3660 days"
NOT_GENERATED = "The codes cannot be generated as asked; none was created."
NO_CAP = "1 or more, or leave it out for no cap"
SHARED_NOT_CREATED = "The shared code is invalid; nothing was created."
CODE_EXISTS = "The code %(code)s already exists."
NO_FREE_CODE = "Could not draw a free code; try again."
MESSAGES = (
    COUNT_RANGE, DAYS_RANGE, NOT_GENERATED, NO_CAP, SHARED_NOT_CREATED, CODE_EXISTS, NO_FREE_CODE,
    *codes.MESSAGES,
)  # fmt: skip


def reason_slug(message: str) -> str:
    """A stable machine word for a code's outcome (`expired`, `used`, `not-valid`...)."""
    known = {
        APPLIED: "applied", UNKNOWN: "unknown", MISTYPED: "mistyped", EXPIRED: "expired",
        USED: "used", USED_UP: "used-up", NOT_YOURS: "not-yours", LOG_IN: "log-in",
        CUSTOMER_CAP: "customer-cap", TWICE: "duplicate",
    }  # fmt: skip
    return known.get(message, "not-valid")


def mask(code: str) -> str:
    """A code as logs show it: enough to find it again, not enough to use it."""
    return f"{code[:4]}…{code[-2:]}" if len(code) > 8 else f"{code[:2]}…"


def log_refusal(code: str, reason: str, channel: str, where: str) -> None:
    log.info(
        "promo code refused",
        extra={"code": mask(code), "reason": reason_slug(reason), "channel": channel,
               "where": where},
    )  # fmt: skip


# ------------------------------------------------------------------ creating codes


def _bulk_insert(session: Session, constants: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """The driver-level `INSERT … ON CONFLICT DO NOTHING` of codes, and the other columns'
    values bound once (they are the same for the whole batch): per code, only the code
    itself crosses to the driver, which is what makes a million rows take seconds."""
    dialect = session.get_bind().dialect
    columns = list(constants)
    table = PromoCode.__table__
    fixed = []
    for name in columns:
        processor = table.c[name].type.bind_processor(dialect)
        value = constants[name]
        fixed.append(processor(value) if processor is not None and value is not None else value)
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(["code", *columns])
    marks = ", ".join([marker] * (len(columns) + 1))
    # Only our own column names are formatted in; every value is a bound parameter.
    statement = f"INSERT INTO promo_codes ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608
    return statement, tuple(fixed)


@dataclass(frozen=True)
class Batch:
    id: uuid.UUID
    promotion_key: str
    count: int
    expires_at: datetime | None


def generate_codes(
    session: Session,
    now: datetime,
    promotion_key: str,
    count: int,
    *,
    prefix: str = "",
    valid_days: int | None = None,
    profile_id: uuid.UUID | None = None,
) -> Batch:
    """`count` new unique single-use codes of the promotion, inserted set-based (chunks of
    50,000 rows, `ON CONFLICT DO NOTHING` on the code; a collision, about one in 10^12,
    is simply generated again). Returns the batch, whose codes `batch_codes` lists."""
    prefix = codes.normalise(prefix) if len(prefix) > codes.SHARED_MAX else prefix.upper()
    errors = []
    if not 1 <= count <= MAX_BATCH:
        errors.append(refusal(COUNT_RANGE, pointer="#/count"))
    problem = codes.prefix_problem(prefix, "#/prefix")
    if problem:
        errors.append(problem)
    if valid_days is not None and not 1 <= valid_days <= 3_660:
        errors.append(refusal(DAYS_RANGE, pointer="#/valid_days"))
    if errors:
        raise Refused(NOT_GENERATED, errors)
    promotion = get_promotion(session, promotion_key)
    batch_id = uuid.uuid4()
    expires = now + timedelta(days=valid_days) if valid_days else None
    constants = {
        "promotion_id": promotion.id, "kind": "unique", "batch_id": batch_id,
        "profile_id": profile_id, "max_uses": 1, "per_customer_max": None, "uses": 0,
        "expires_at": expires, "created_at": now,
    }  # fmt: skip
    statement, fixed = _bulk_insert(session, constants)
    done = 0
    while done < count:
        wanted = min(CHUNK, count - done)
        session.connection().exec_driver_sql(
            statement, [(code, *fixed) for code in codes.generate(wanted, prefix)]
        )
        done = (
            session.scalar(
                select(func.count()).select_from(PromoCode).where(PromoCode.batch_id == batch_id)
            )
            or 0
        )
    return Batch(batch_id, promotion.key, count, expires)


def batch_codes(session: Session, batch_id: uuid.UUID) -> Iterable[str]:
    """The codes of a batch, streamed (for a CSV download)."""
    return session.scalars(
        select(PromoCode.code)
        .where(PromoCode.batch_id == batch_id)
        .order_by(PromoCode.code)
        .execution_options(yield_per=10_000)
    )


@dataclass(frozen=True)
class BatchSummary:
    id: uuid.UUID
    count: int
    used: int
    created_at: datetime


def list_batches(session: Session, promotion_id: uuid.UUID) -> list[BatchSummary]:
    rows = session.execute(
        select(
            PromoCode.batch_id,
            func.count(),
            func.sum(PromoCode.uses),
            func.min(PromoCode.created_at),
        )
        .where(PromoCode.promotion_id == promotion_id, PromoCode.batch_id.is_not(None))
        .group_by(PromoCode.batch_id)
        .order_by(func.min(PromoCode.created_at).desc())
    )
    return [BatchSummary(b, int(n), int(u or 0), at) for b, n, u, at in rows if b is not None]


def add_shared_code(
    session: Session,
    now: datetime,
    promotion_key: str,
    code: str,
    *,
    max_uses: int | None = None,
    per_customer_max: int | None = None,
    expires_at: datetime | None = None,
) -> PromoCode:
    """A shared code (one word, many uses), optionally capped in all and per customer."""
    normalised = codes.normalise(code)
    errors = []
    problem = codes.shared_code_problem(normalised, "#/code")
    if problem:
        errors.append(problem)
    for name, value in (("max_uses", max_uses), ("per_customer_max", per_customer_max)):
        if value is not None and value < 1:
            errors.append(refusal(NO_CAP, pointer=f"#/{name}"))
    if errors:
        raise Refused(SHARED_NOT_CREATED, errors)
    promotion = get_promotion(session, promotion_key)
    if session.get(PromoCode, normalised) is not None:
        raise SaidConflict(CODE_EXISTS, code=normalised, extensions={"code": normalised})
    row = PromoCode(
        code=normalised,
        promotion_id=promotion.id,
        kind="shared",
        max_uses=max_uses,
        per_customer_max=per_customer_max,
        uses=0,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class IssuedCode:
    """A unique code given to one person (`expires_at` UTC, None: no expiry)."""

    code: str
    promotion_key: str
    profile_id: uuid.UUID
    expires_at: datetime | None


def issue_code(
    session: Session,
    now: datetime,
    promotion_key: str,
    profile_id: uuid.UUID,
    *,
    valid_days: int | None = None,
) -> IssuedCode:
    """A new unique single-use code of `promotion_key` assigned to `profile_id`: only
    they may use it. `valid_days` sets its expiry (None: the promotion's own end)."""
    promotion = get_promotion(session, promotion_key)
    expires = now + timedelta(days=valid_days) if valid_days else None
    for _ in range(3):  # a collision is about one chance in 10^18; retrying is enough
        code = codes.generate(1)[0]
        try:
            with session.begin_nested():
                session.add(
                    PromoCode(
                        code=code, promotion_id=promotion.id, kind="unique",
                        profile_id=profile_id, max_uses=1, uses=0, expires_at=expires,
                        created_at=now,
                    )
                )  # fmt: skip
                session.flush()
        except IntegrityError:
            continue
        return IssuedCode(code, promotion.key, profile_id, expires)
    raise SaidConflict(NO_FREE_CODE)


# ------------------------------------------------------------------ judging codes


@dataclass(frozen=True)
class Found:
    code: PromoCode
    promotion: Promotion


def find_codes(session: Session, normalised: Sequence[str]) -> dict[str, Found]:
    """The codes (and their promotions) among `normalised`, in one query."""
    if not normalised:
        return {}
    rows = session.execute(
        select(PromoCode, Promotion)
        .join(Promotion, Promotion.id == PromoCode.promotion_id)
        .where(PromoCode.code.in_(list(normalised)))
    )
    return {code.code: Found(code, promotion) for code, promotion in rows}


def uses_by(
    session: Session, profile_id: uuid.UUID | None, found: Iterable[Found]
) -> dict[str, int]:
    """How often `profile_id` used each capped shared code (one query, only if needed)."""
    capped = [f.code.code for f in found if f.code.per_customer_max is not None]
    if profile_id is None or not capped:
        return {}
    rows = session.execute(
        select(PromoCodeRedemption.code, func.count())
        .where(PromoCodeRedemption.code.in_(capped), PromoCodeRedemption.profile_id == profile_id)
        .group_by(PromoCodeRedemption.code)
    )
    return {code: int(n) for code, n in rows}


def judge(found: Found | None, typed: str, basket: Basket, now: datetime, used: int) -> str:
    """What becomes of one code on a basket: `APPLIED` or the reason it is refused."""
    normalised = codes.normalise(typed)
    if codes.is_unique_shape(normalised) and not codes.has_valid_check(normalised):
        return MISTYPED
    if found is None:
        return UNKNOWN
    row = found.code
    if row.expires_at is not None and now >= row.expires_at:
        return EXPIRED
    if row.max_uses is not None and row.uses >= row.max_uses:
        return USED if row.kind == "unique" else USED_UP
    if row.profile_id is not None and basket.profile_id is None:
        return LOG_IN
    if row.profile_id is not None and row.profile_id != basket.profile_id:
        return NOT_YOURS
    if row.per_customer_max is not None and basket.profile_id is None:
        return LOG_IN
    if row.per_customer_max is not None and used >= row.per_customer_max:
        return CUSTOMER_CAP
    return why_not(found.promotion, basket, now) or APPLIED


@dataclass
class Outcome:
    """Promotions on a basket: cents off per SKU, free delivery, a message per typed code,
    and the codes applied with what each gave."""

    discounts: dict[str, int] = field(default_factory=dict)
    free_delivery: bool = False
    messages: dict[str, str] = field(default_factory=dict)
    applied: dict[str, tuple[Found, int]] = field(default_factory=dict)  # code -> (row, cents)

    def add(self, given: Grant) -> None:
        for sku, cents in given.discounts.items():
            self.discounts[sku] = self.discounts.get(sku, 0) + cents
        self.free_delivery = self.free_delivery or given.free_delivery


def evaluate(
    session: Session,
    now: datetime,
    basket: Basket,
    typed_codes: Sequence[str],
    automatic: Sequence[Promotion] | None = None,
) -> Outcome:
    """Automatic promotions plus the typed codes on a basket (three queries at most)."""
    from parcours.loyalty.promotions import automatic_promotions

    outcome = Outcome()
    granted: set[uuid.UUID] = set()
    running = automatic if automatic is not None else automatic_promotions(session, now)
    for promotion in running:
        if why_not(promotion, basket, now) is None:
            outcome.add(grant(promotion, basket))
            granted.add(promotion.id)
    normalised = {typed: codes.normalise(typed) for typed in typed_codes}
    lookup = [
        n for n in normalised.values() if not codes.is_unique_shape(n) or codes.has_valid_check(n)
    ]
    found = find_codes(session, lookup)
    used = uses_by(session, basket.profile_id, found.values())
    for typed, code in normalised.items():
        hit = found.get(code)
        message = judge(hit, typed, basket, now, used.get(code, 0))
        if message == APPLIED and hit is not None and hit.promotion.id in granted:
            message = TWICE
        outcome.messages[typed] = message
        if message == APPLIED and hit is not None:
            given = grant(hit.promotion, basket)
            outcome.add(given)
            granted.add(hit.promotion.id)
            outcome.applied[code] = (hit, given.amount)
    return outcome


# ------------------------------------------------------------------ redeeming


def _use(session: Session, now: datetime, row: PromoCode, profile_id: uuid.UUID | None) -> bool:
    """The one conditional write of a redemption: True if this call took the use."""
    conditions = [
        PromoCode.code == row.code,
        or_(PromoCode.max_uses.is_(None), PromoCode.uses < PromoCode.max_uses),
        or_(PromoCode.expires_at.is_(None), PromoCode.expires_at > now),
    ]
    if row.per_customer_max is not None and profile_id is not None:
        taken = (
            select(func.count())
            .select_from(PromoCodeRedemption)
            .where(
                PromoCodeRedemption.code == row.code, PromoCodeRedemption.profile_id == profile_id
            )
            .scalar_subquery()
        )
        conditions.append(taken < row.per_customer_max)
    result = session.execute(
        update(PromoCode).where(*conditions).values(uses=PromoCode.uses + 1),
        execution_options={"synchronize_session": False},
    )
    return cast("CursorResult[Any]", result).rowcount == 1


def record_use(
    session: Session,
    now: datetime,
    found: Found,
    basket: Basket,
    order_reference: str | None,
    amount: int,
) -> PromoCodeRedemption:
    """Take one use of the code (409 naming it if another sale took it meanwhile) and
    record the redemption."""
    code = found.code.code
    if not _use(session, now, found.code, basket.profile_id):
        log_refusal(code, USED, basket.channel, "race")
        raise Conflict(
            f"The promo code {code} was used by another sale meanwhile; remove it and try "
            "again. Nothing was charged.",
            code=code,
            reason=reason_slug(USED),
        )
    redemption = PromoCodeRedemption(
        code=code,
        promotion_id=found.promotion.id,
        channel=basket.channel,
        store_id=basket.store_id,
        order_reference=order_reference,
        profile_id=basket.profile_id,
        amount=amount,
        currency=basket.currency,
        redeemed_at=now,
    )
    session.add(redemption)
    session.flush()
    return redemption


@dataclass(frozen=True)
class CodeCheck:
    """Whether a code may be used now on a basket, and what it would give (cents)."""

    code: str
    valid: bool
    reason: str
    message: str
    promotion: Promotion | None
    discount: int
    free_delivery: bool


def check_code(session: Session, now: datetime, typed: str, basket: Basket) -> CodeCheck:
    """Judge one code for a basket (the POS asks before the sale); nothing changes."""
    code = codes.normalise(typed)
    if codes.is_unique_shape(code) and not codes.has_valid_check(code):
        return CodeCheck(code, False, reason_slug(MISTYPED), MISTYPED, None, 0, False)
    found = find_codes(session, [code]).get(code)
    used = uses_by(session, basket.profile_id, [found] if found else [])
    message = judge(found, typed, basket, now, used.get(code, 0))
    if message != APPLIED or found is None:
        promotion = found.promotion if found is not None else None
        return CodeCheck(code, False, reason_slug(message), message, promotion, 0, False)
    given = grant(found.promotion, basket)
    return CodeCheck(
        code, True, "valid", "valid", found.promotion, given.amount, given.free_delivery
    )


def redeem_code(
    session: Session,
    now: datetime,
    typed: str,
    basket: Basket,
    *,
    order_reference: str | None = None,
    amount: int | None = None,
) -> PromoCodeRedemption:
    """Redeem one code for a sale (the POS, after the customer paid): refused with the
    reason (422 mistyped, 404 unknown, 409 expired, used, not valid here...), logged."""
    check = check_code(session, now, typed, basket)
    if not check.valid:
        log_refusal(check.code, check.message, basket.channel, "api")
        if check.reason == "mistyped":
            raise InvalidInput(
                f"The code {typed!r} is mistyped (its check character does not match): "
                "check it and type it again.",
                [FieldError("the check character does not match", parameter="code")],
            )
        if check.reason == "unknown":
            raise NotFound(f"No promo code {check.code} exists.")
        raise Conflict(
            f"The promo code {check.code} cannot be used: {check.message}.",
            code=check.code,
            reason=check.reason,
        )
    assert check.promotion is not None
    found = find_codes(session, [check.code])[check.code]
    cents = check.discount if amount is None else amount
    return record_use(session, now, found, basket, order_reference, cents)


# ------------------------------------------------------------------ the orders hook


class PromotionEngine:
    """The promotions engine as the orders context calls it (see `orders.PromotionHook`)."""

    def apply(
        self, session: Session, now: datetime, cart: Any, lines: Sequence[orders.PricedLine]
    ) -> orders.PromotionResult:
        outcome = evaluate(session, now, basket_of(cart, lines), list(cart.promo_codes))
        return orders.PromotionResult(outcome.discounts, outcome.messages, outcome.free_delivery)

    def redeem(
        self, session: Session, now: datetime, priced: orders.PricedCart, order_reference: str
    ) -> None:
        cart = priced.cart
        if not cart.promo_codes:
            return
        refused = {c: m for c, m in priced.promo_messages.items() if m != APPLIED}
        if refused:
            code, message = next(iter(refused.items()))
            log_refusal(codes.normalise(code), message, cart.channel, "checkout")
            raise Conflict(
                f"The promo code {code} cannot be used: {message}. Remove it to place the order.",
                code=code,
                reason=reason_slug(message),
            )
        basket = basket_of(cart, priced.lines)
        outcome = evaluate(session, now, basket, list(cart.promo_codes))
        for code in outcome.messages:
            if outcome.messages[code] != APPLIED:  # changed since the cart was priced
                log_refusal(codes.normalise(code), outcome.messages[code], cart.channel, "checkout")
                raise Conflict(
                    f"The promo code {code} cannot be used: {outcome.messages[code]}.",
                    code=code,
                    reason=reason_slug(outcome.messages[code]),
                )
        for found, amount in outcome.applied.values():
            record_use(session, now, found, basket, order_reference, amount)


def redemption_counts(
    session: Session, promotion_ids: Sequence[uuid.UUID]
) -> Mapping[uuid.UUID, int]:
    """Codes issued per promotion (one query), for the offers page."""
    if not promotion_ids:
        return {}
    rows = session.execute(
        select(PromoCode.promotion_id, func.count())
        .where(PromoCode.promotion_id.in_(list(promotion_ids)))
        .group_by(PromoCode.promotion_id)
    )
    return {pid: int(n) for pid, n in rows}
