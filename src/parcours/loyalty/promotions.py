"""Promotions: what an offer gives, where it applies, and how a basket earns it.

A promotion is automatic (every basket that qualifies gets it) or code-only (a promo code
of the promotion must be on the basket). Promotions stack; each is worked out on the
lines' prices before any discount, and a line's discounts never exceed its price (carts
cap them). Rounding, always to the cent:

- `percent_off`: per line, `line total × basis points / 10 000`, half up;
- `amount_off`: the amount (at most the eligible lines' total) spread over the eligible
  lines in proportion to their totals, the cents left over going to the largest lines;
- `buy_x_get_y`: within each group (same SKU, or same category), for every X + Y units
  bought the Y cheapest units are free;
- `free_delivery`: the delivery fee is waived at checkout.

`min_subtotal` (cents) is compared with the eligible lines' total before discounts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours import orders
from parcours.core.errors import ONE_OF, FieldError, NotFound, Refused, SaidConflict, refusal
from parcours.core.money import Money
from parcours.loyalty.models import PROMOTION_KINDS, PromoCodeRedemption, Promotion

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
GROUPS = ("sku", "category")


# ------------------------------------------------------------------ baskets


@dataclass(frozen=True)
class BasketLine:
    """A line as promotions see it: price VAT included, in cents."""

    sku: str
    category: str
    quantity: int
    unit_price: int

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Basket:
    """Where and what a customer buys (a web cart, a till's basket)."""

    channel: str
    currency: str
    lines: tuple[BasketLine, ...] = ()
    store_id: uuid.UUID | None = None
    profile_id: uuid.UUID | None = None
    subtotal_hint: int | None = None  # the POS may give a total without lines

    @property
    def subtotal(self) -> int:
        if not self.lines and self.subtotal_hint is not None:
            return self.subtotal_hint
        return sum(line.total for line in self.lines)


@dataclass(frozen=True)
class Grant:
    """What one promotion gives a basket: cents off per SKU, and free delivery."""

    discounts: Mapping[str, int] = field(default_factory=dict)
    free_delivery: bool = False

    @property
    def amount(self) -> int:
        return sum(self.discounts.values())


# ------------------------------------------------------------------ managing promotions


# What managing promotions refuses, as `message % values` for the console.
PROMOTION_KEY = "2 to 64 of a-z, 0-9, _ and -, e.g. summer-10"
NAME_IN_LANGUAGE = "give a name in this language"
BASIS_POINTS = "basis points from 1 to 10000 (1000 = 10 %)"
CENTS_ABOVE_0 = "an amount in cents above 0"
UNITS = "a number of units from 1 to 99"
SKU_OR_CATEGORY = "must be sku or category"
CURRENCY_CODE = "an ISO 4217 code such as EUR"
UNKNOWN_CHANNELS = "unknown channel(s) %(channels)s"
NOT_A_STORE = "not a store id"
CENTS_0_OR_MORE = "cents, 0 or more"
AFTER_START = "must be after starts_at"
NOT_CREATED = "The promotion is invalid; nothing was created."
KEY_IN_USE = "A promotion already has the key %(key)s; choose another key."
MESSAGES = (
    PROMOTION_KEY, NAME_IN_LANGUAGE, ONE_OF, BASIS_POINTS, CENTS_ABOVE_0, UNITS,
    SKU_OR_CATEGORY, CURRENCY_CODE, UNKNOWN_CHANNELS, NOT_A_STORE, CENTS_0_OR_MORE,
    AFTER_START, NOT_CREATED, KEY_IN_USE,
)  # fmt: skip


def _check(data: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    kind = data.get("kind")
    if not KEY.match(str(data.get("key", ""))):
        errors.append(refusal(PROMOTION_KEY, pointer="#/key"))
    for name in ("name_fr", "name_en"):
        if not str(data.get(name) or "").strip():
            errors.append(refusal(NAME_IN_LANGUAGE, pointer=f"#/{name}"))
    if kind not in PROMOTION_KINDS:
        errors.append(refusal(ONE_OF, pointer="#/kind", choices=", ".join(PROMOTION_KINDS)))
    if kind == "percent_off" and not 1 <= int(data.get("percent_bp") or 0) <= 10_000:
        errors.append(refusal(BASIS_POINTS, pointer="#/percent_bp"))
    if kind == "amount_off" and int(data.get("amount_off") or 0) <= 0:
        errors.append(refusal(CENTS_ABOVE_0, pointer="#/amount_off"))
    if kind == "buy_x_get_y":
        for name in ("buy_quantity", "get_quantity"):
            if not 1 <= int(data.get(name) or 0) <= 99:
                errors.append(refusal(UNITS, pointer=f"#/{name}"))
        if data.get("group_by", "sku") not in GROUPS:
            errors.append(refusal(SKU_OR_CATEGORY, pointer="#/group_by"))
    if not re.fullmatch(r"[A-Z]{3}", str(data.get("currency", "EUR"))):
        errors.append(refusal(CURRENCY_CODE, pointer="#/currency"))
    unknown = [c for c in data.get("channels") or [] if c not in orders.ORDER_CHANNELS]
    if unknown:
        channels = ", ".join(map(str, unknown))
        errors.append(refusal(UNKNOWN_CHANNELS, pointer="#/channels", channels=channels))
    for index, store_id in enumerate(data.get("store_ids") or []):
        try:
            uuid.UUID(str(store_id))
        except ValueError:
            errors.append(refusal(NOT_A_STORE, pointer=f"#/store_ids/{index}"))
    if int(data.get("min_subtotal") or 0) < 0:
        errors.append(refusal(CENTS_0_OR_MORE, pointer="#/min_subtotal"))
    starts, ends = data.get("starts_at"), data.get("ends_at")
    if starts and ends and ends <= starts:
        errors.append(refusal(AFTER_START, pointer="#/ends_at"))
    return errors


def add_promotion(session: Session, now: datetime, data: Mapping[str, Any]) -> Promotion:
    """Create a promotion from `data` (the API's field names; amounts in cents, times
    UTC); refused with every bad field named, or 409 when the key is taken."""
    errors = _check(data)
    if errors:
        raise Refused(NOT_CREATED, errors)
    key = str(data["key"])
    if session.scalar(select(Promotion.id).where(Promotion.key == key)) is not None:
        raise SaidConflict(KEY_IN_USE, key=repr(key), extensions={"key": key})
    kind = str(data["kind"])
    promotion = Promotion(
        key=key,
        name_fr=str(data["name_fr"]).strip(),
        name_en=str(data["name_en"]).strip(),
        kind=kind,
        percent_bp=int(data["percent_bp"]) if kind == "percent_off" else None,
        amount_off=int(data["amount_off"]) if kind == "amount_off" else None,
        currency=str(data.get("currency", "EUR")),
        buy_quantity=int(data["buy_quantity"]) if kind == "buy_x_get_y" else None,
        get_quantity=int(data["get_quantity"]) if kind == "buy_x_get_y" else None,
        group_by=str(data.get("group_by", "sku")),
        categories=[str(c) for c in data.get("categories") or []],
        skus=[str(s) for s in data.get("skus") or []],
        channels=[str(c) for c in data.get("channels") or []],
        store_ids=[str(uuid.UUID(str(s))) for s in data.get("store_ids") or []],
        min_subtotal=int(data.get("min_subtotal") or 0),
        starts_at=data.get("starts_at"),
        ends_at=data.get("ends_at"),
        active=bool(data.get("active", True)),
        automatic=bool(data.get("automatic", False)),
        created_at=now,
        updated_at=now,
    )
    session.add(promotion)
    session.flush()
    return promotion


def get_promotion(session: Session, key: str) -> Promotion:
    promotion = session.scalar(select(Promotion).where(Promotion.key == key))
    if promotion is None:
        raise NotFound(f"No promotion has the key {key!r}.")
    return promotion


def set_active(session: Session, now: datetime, key: str, active: bool) -> Promotion:
    """Switch a promotion on or off (its codes follow it)."""
    promotion = get_promotion(session, key)
    promotion.active = active
    promotion.updated_at = now
    return promotion


@dataclass(frozen=True)
class PromotionSummary:
    promotion: Promotion
    redemptions: int
    discount_total: int


def list_promotions(session: Session) -> list[PromotionSummary]:
    """Every promotion, newest first, with its redemption count and amount (one query)."""
    used = (
        select(
            PromoCodeRedemption.promotion_id,
            func.count().label("n"),
            func.coalesce(func.sum(PromoCodeRedemption.amount), 0).label("amount"),
        )
        .group_by(PromoCodeRedemption.promotion_id)
        .subquery()
    )
    rows = session.execute(
        select(Promotion, used.c.n, used.c.amount)
        .outerjoin(used, used.c.promotion_id == Promotion.id)
        .order_by(Promotion.created_at.desc(), Promotion.key)
    )
    return [PromotionSummary(p, int(n or 0), int(a or 0)) for p, n, a in rows]


def describe(promotion: Promotion) -> dict[str, Any]:
    """A promotion as the API shows it."""
    return {
        "key": promotion.key,
        "name_fr": promotion.name_fr,
        "name_en": promotion.name_en,
        "kind": promotion.kind,
        "percent_bp": promotion.percent_bp,
        "amount_off": promotion.amount_off,
        "currency": promotion.currency,
        "buy_quantity": promotion.buy_quantity,
        "get_quantity": promotion.get_quantity,
        "group_by": promotion.group_by,
        "categories": list(promotion.categories),
        "skus": list(promotion.skus),
        "channels": list(promotion.channels),
        "store_ids": list(promotion.store_ids),
        "min_subtotal": promotion.min_subtotal,
        "starts_at": promotion.starts_at,
        "ends_at": promotion.ends_at,
        "active": promotion.active,
        "automatic": promotion.automatic,
    }


# ------------------------------------------------------------------ the rules


def eligible_lines(promotion: Promotion, basket: Basket) -> list[BasketLine]:
    """The basket's lines the promotion covers (all when it names no SKU or category)."""
    if not promotion.skus and not promotion.categories:
        return list(basket.lines)
    skus, categories = set(promotion.skus), set(promotion.categories)
    return [line for line in basket.lines if line.sku in skus or line.category in categories]


def why_not(promotion: Promotion, basket: Basket, now: datetime) -> str | None:
    """Why the promotion does not apply to the basket now, or None when it does."""
    if not promotion.active:
        return NOT_RUNNING
    if promotion.starts_at is not None and now < promotion.starts_at:
        return NOT_STARTED
    if promotion.ends_at is not None and now >= promotion.ends_at:
        return ENDED
    if promotion.channels and basket.channel not in promotion.channels:
        return OTHER_CHANNEL
    if promotion.store_ids and str(basket.store_id) not in promotion.store_ids:
        return OTHER_STORE
    if promotion.kind == "amount_off" and promotion.currency != basket.currency:
        return OTHER_CURRENCY
    lines = eligible_lines(promotion, basket)
    if basket.lines and not lines:
        return NO_PRODUCT
    covered = sum(line.total for line in lines) if basket.lines else basket.subtotal
    if covered < promotion.min_subtotal:
        return BELOW_MINIMUM % {"minimum": Money(promotion.min_subtotal, basket.currency)}
    return None


NOT_RUNNING = "this offer is not running"
NOT_STARTED = "this offer has not started yet"
ENDED = "this offer has ended"
OTHER_CHANNEL = "not valid on this channel"
OTHER_STORE = "not valid in this store"
OTHER_CURRENCY = "not valid in this currency"
NO_PRODUCT = "no product of this offer in the basket"
BELOW_MINIMUM = "minimum basket not reached (%(minimum)s)"
REFUSALS = (
    NOT_RUNNING, NOT_STARTED, ENDED, OTHER_CHANNEL, OTHER_STORE, OTHER_CURRENCY, NO_PRODUCT,
    BELOW_MINIMUM,
)  # fmt: skip


def grant(promotion: Promotion, basket: Basket) -> Grant:
    """What the promotion gives the basket (assumes `why_not` said None). A basket given
    as a total without lines (a till asking) counts as one line of that total."""
    lines = eligible_lines(promotion, basket)
    if not basket.lines:
        lines = [BasketLine("", "", 1, basket.subtotal)]
    if promotion.kind == "percent_off":
        bp = promotion.percent_bp or 0
        return Grant(_merge((line.sku, (line.total * bp + 5_000) // 10_000) for line in lines))
    if promotion.kind == "amount_off":
        return Grant(spread(promotion.amount_off or 0, lines))
    if promotion.kind == "buy_x_get_y":
        buy, get = promotion.buy_quantity or 1, promotion.get_quantity or 1
        return Grant(cheapest_free(lines, buy, get, promotion.group_by))
    return Grant({}, free_delivery=True)


def _merge(pairs: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for sku, cents in pairs:
        if cents:
            out[sku] = out.get(sku, 0) + cents
    return out


def spread(amount: int, lines: Sequence[BasketLine]) -> dict[str, int]:
    """`amount` cents (at most the lines' total) shared in proportion to the lines'
    totals; the cents a floor leaves go to the largest remainders, then larger lines."""
    base = sum(line.total for line in lines)
    amount = min(amount, base)
    if amount <= 0 or base <= 0:
        return {}
    shares = [(line, amount * line.total // base, amount * line.total % base) for line in lines]
    left = amount - sum(share for _, share, _ in shares)
    ranked = sorted(range(len(shares)), key=lambda i: (-shares[i][2], -shares[i][0].total, i))
    extra = set(ranked[:left])
    return _merge((line.sku, share + (i in extra)) for i, (line, share, _) in enumerate(shares))


def cheapest_free(lines: Sequence[BasketLine], buy: int, get: int, group_by: str) -> dict[str, int]:
    """Buy `buy`, get `get` free: in each group, for every `buy + get` units the `get`
    cheapest units of the group are free (cents off per SKU)."""
    groups: dict[str, list[BasketLine]] = {}
    for line in lines:
        groups.setdefault(line.sku if group_by == "sku" else line.category, []).append(line)
    pairs: list[tuple[str, int]] = []
    for members in groups.values():
        units = sorted(
            (unit for line in members for unit in [(line.unit_price, line.sku)] * line.quantity),
        )
        free = (len(units) // (buy + get)) * get
        pairs.extend((sku, price) for price, sku in units[:free])
    return _merge(pairs)


def basket_of(cart: Any, lines: Sequence[orders.PricedLine]) -> Basket:
    """A cart and its priced lines as a basket (prices before any discount)."""
    return Basket(
        channel=cart.channel,
        currency=cart.currency,
        lines=tuple(BasketLine(x.sku, x.category, x.quantity, x.unit_price) for x in lines),
        store_id=cart.store_id,
        profile_id=cart.customer_id,
    )


def automatic_promotions(session: Session, now: datetime) -> list[Promotion]:
    """The automatic promotions running now (one query)."""
    return list(
        session.scalars(
            select(Promotion)
            .where(
                Promotion.automatic.is_(True),
                Promotion.active.is_(True),
                (Promotion.starts_at.is_(None)) | (Promotion.starts_at <= now),
                (Promotion.ends_at.is_(None)) | (Promotion.ends_at > now),
            )
            .order_by(Promotion.key)
        )
    )
