"""Carts: a basket per channel, anonymous or identified, priced from the channel's list.

A cart only stores SKUs and quantities; its prices are worked out when it is read (one
price query for every line), so a price change shows at once and checkout re-prices.
Amounts include VAT (French rates from the product); the VAT part is kept per line and
in total. Promotions and promo codes go through a `PromotionHook` (none by default: the
activation context plugs its engine in with `set_promotion_hook`).

Logging in merges: `attach_customer` folds the anonymous cart into the customer's open
cart on the same channel (quantities summed) and marks the absorbed cart `merged`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours import catalog, customers
from parcours.core.audit import Actor
from parcours.core.errors import Conflict, FieldError, InvalidInput, NotFound
from parcours.orders.models import ORDER_CHANNELS, Cart, CartLine
from parcours.orders.service import segment_ids

MAX_QUANTITY = 99
PRODUCT_ADDED = "Product Added"  # Segment e-commerce spec names
PRODUCT_REMOVED = "Product Removed"
CHECKOUT_STARTED = "Checkout Started"
MAX_LINES = 100
# Channels whose carts are made here (POS receipts and marketplace orders come whole).
CART_CHANNELS = tuple(c for c in ORDER_CHANNELS if c != "marketplace")


# ------------------------------------------------------------------ pricing types


@dataclass(frozen=True)
class PricedLine:
    """One cart line priced now; amounts in cents, VAT included."""

    sku: str
    name: str
    category: str
    quantity: int
    unit_price: int
    vat_rate_bp: int
    discount: int  # on the whole line, from promotions
    total: int  # unit_price * quantity - discount
    vat: int  # the VAT part of total


@dataclass(frozen=True)
class PricedCart:
    cart: Cart
    lines: list[PricedLine]
    currency: str
    subtotal: int  # lines after their discounts
    discount_total: int
    vat_total: int
    total: int  # subtotal; delivery is added by the chosen option at checkout
    unpriced: list[str] = field(default_factory=list)  # SKUs without a price on the channel
    promo_messages: dict[str, str] = field(default_factory=dict)  # code -> what happened
    free_delivery: bool = False  # a promotion waives the delivery fee at checkout


@dataclass(frozen=True)
class PromotionResult:
    """What promotions give a cart: a discount per SKU (cents, on the whole line),
    per promo code of the cart, what became of it ("applied", or why not), and whether
    the delivery fee is waived (`free_delivery`: checkout then charges no delivery)."""

    line_discounts: Mapping[str, int] = field(default_factory=dict)
    code_messages: Mapping[str, str] = field(default_factory=dict)
    free_delivery: bool = False


class PromotionHook(Protocol):
    """The promotions engine as carts see it (filled by the activation context)."""

    def apply(
        self, session: Session, now: datetime, cart: Cart, lines: Sequence[PricedLine]
    ) -> PromotionResult: ...

    def redeem(
        self, session: Session, now: datetime, priced: PricedCart, order_reference: str
    ) -> None:
        """Use the cart's promo codes for the order being placed, in the checkout's
        transaction; raise `Conflict` (409) naming a code that can no longer be used."""


class NoPromotions:
    """The default: no discount; promo codes are kept on the cart but not applied."""

    def apply(
        self, session: Session, now: datetime, cart: Cart, lines: Sequence[PricedLine]
    ) -> PromotionResult:
        return PromotionResult({}, dict.fromkeys(cart.promo_codes, "no promotion is running"))

    def redeem(
        self, session: Session, now: datetime, priced: PricedCart, order_reference: str
    ) -> None:
        return None


_hook: list[PromotionHook] = [NoPromotions()]


def set_promotion_hook(hook: PromotionHook) -> PromotionHook:
    """Install the promotions engine; returns the previous one (tests put it back)."""
    previous = _hook[0]
    _hook[0] = hook
    return previous


def promotion_hook() -> PromotionHook:
    return _hook[0]


def vat_part(amount: int, vat_rate_bp: int) -> int:
    """The VAT inside an amount that includes it, rounded half up to the cent."""
    base = 10_000 + vat_rate_bp
    excl = (amount * 10_000 * 2 + base) // (2 * base)
    return amount - excl


# ------------------------------------------------------------------ carts


def create_cart(
    session: Session,
    now: datetime,
    channel: str,
    *,
    customer_id: uuid.UUID | None = None,
    anonymous_id: str | None = None,
    store_id: uuid.UUID | None = None,
) -> Cart:
    """A new open cart on `channel` for a visitor (`anonymous_id`) or a customer;
    `store_id` for a cart made on an in-store tablet."""
    errors = []
    if channel not in CART_CHANNELS:
        errors.append(FieldError(f"must be one of {', '.join(CART_CHANNELS)}", "#/channel"))
    if customer_id is None and not (anonymous_id or "").strip():
        errors.append(FieldError("give an anonymous_id or a customer_id", "#/anonymous_id"))
    if errors:
        raise InvalidInput("The cart is invalid; nothing was created.", errors)
    try:
        currency = catalog.get_channel(session, channel).currency
    except NotFound:
        raise InvalidInput(
            f"The channel {channel!r} is not set up in the catalogue.",
            [FieldError("unknown channel", "#/channel")],
        ) from None
    cart = Cart(
        id=uuid.uuid4(),
        channel=channel,
        currency=currency,
        customer_id=customer_id,
        anonymous_id=(anonymous_id or "").strip() or None,
        store_id=store_id,
        promo_codes=[],
        status="open",
        created_at=now,
        updated_at=now,
    )
    session.add(cart)
    return cart


def get_cart(session: Session, cart_id: uuid.UUID) -> Cart:
    cart = session.get(Cart, cart_id)
    if cart is None:
        raise NotFound(f"No cart has the id {cart_id}.")
    return cart


def open_cart(session: Session, cart_id: uuid.UUID) -> Cart:
    """The cart, refused when an order was already placed from it or it was merged."""
    cart = get_cart(session, cart_id)
    if cart.status != "open":
        raise Conflict(
            f"Cart {cart_id} is {cart.status}; start a new cart.",
            cart_status=cart.status,
            order_id=str(cart.order_id) if cart.order_id else None,
        )
    return cart


def cart_lines(session: Session, cart_id: uuid.UUID) -> list[CartLine]:
    return list(
        session.scalars(
            select(CartLine)
            .where(CartLine.cart_id == cart_id)
            .order_by(CartLine.added_at, CartLine.sku)
        )
    )


def _check_quantity(quantity: int, allow_zero: bool) -> None:
    low = 0 if allow_zero else 1
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        quantity = -1
    if not low <= quantity <= MAX_QUANTITY:
        raise InvalidInput(
            f"The quantity must be a whole number from {low} to {MAX_QUANTITY}.",
            [FieldError(f"must be from {low} to {MAX_QUANTITY}", "#/quantity")],
        )


def _check_sku(session: Session, sku: str) -> None:
    if not catalog.known_skus(session, [sku]):
        raise InvalidInput(
            f"The SKU {sku!r} is not in the catalogue.", [FieldError("unknown SKU", "#/sku")]
        )


def set_line(
    session: Session,
    now: datetime,
    cart_id: uuid.UUID,
    sku: str,
    quantity: int,
    *,
    announce: bool = True,
) -> Cart:
    """Set how many of `sku` the cart holds (0 removes the line). With `announce`, the
    change goes to the tracking log as a Segment `Product Added` / `Product Removed`."""
    _check_quantity(quantity, allow_zero=True)
    cart = open_cart(session, cart_id)
    line = session.scalar(select(CartLine).where(CartLine.cart_id == cart_id, CartLine.sku == sku))
    before = line.quantity if line is not None else 0
    if quantity == 0:
        if line is not None:
            session.delete(line)
    else:
        _check_sku(session, sku)
        if line is None:
            _check_room(session, cart_id)
            session.add(CartLine(cart_id=cart_id, sku=sku, quantity=quantity, added_at=now))
        else:
            line.quantity = quantity
    cart.updated_at = now
    if announce and quantity != before:
        event = PRODUCT_ADDED if quantity > before else PRODUCT_REMOVED
        track(session, now, cart, event, {"sku": sku, "quantity": abs(quantity - before)})
    return cart


def add_line(
    session: Session,
    now: datetime,
    cart_id: uuid.UUID,
    sku: str,
    quantity: int = 1,
    *,
    announce: bool = True,
) -> Cart:
    """Add `quantity` of `sku` to what the cart already holds (at most 99 in all)."""
    _check_quantity(quantity, allow_zero=False)
    held = session.scalar(
        select(CartLine.quantity).where(CartLine.cart_id == cart_id, CartLine.sku == sku)
    )
    if (held or 0) + quantity > MAX_QUANTITY:
        raise InvalidInput(
            f"The cart would hold {(held or 0) + quantity} of {sku!r}; at most {MAX_QUANTITY}.",
            [FieldError(f"at most {MAX_QUANTITY - (held or 0)} more", "#/quantity")],
        )
    return set_line(session, now, cart_id, sku, (held or 0) + quantity, announce=announce)


def remove_line(session: Session, now: datetime, cart_id: uuid.UUID, sku: str) -> Cart:
    return set_line(session, now, cart_id, sku, 0)


def track(
    session: Session,
    now: datetime,
    cart: Cart,
    event: str,
    properties: Mapping[str, Any],
    message_id: str | None = None,
) -> None:
    """Put a cart step in the tracking log as the shop would send it (Segment spec
    `cart_id` and product fields, the cart's channel and store), in the caller's
    transaction, so profiles and journeys see carts from every channel."""
    ids, _ = segment_ids(session, cart.anonymous_id or f"cart-{cart.id}", cart.customer_id)
    context: dict[str, Any] = {"channel": cart.channel}
    if cart.store_id is not None:
        context["store_id"] = str(cart.store_id)
    message = {
        "type": "track",
        "event": event,
        "messageId": message_id or f"cart-{uuid.uuid4()}",
        "timestamp": now.isoformat(),
        "properties": {"cart_id": str(cart.id), **properties},
        "context": context,
        **ids,
    }
    customers.ingest_messages(session, now, [message])


def checkout_started(session: Session, now: datetime, priced: PricedCart) -> None:
    """The shopper reached the delivery step: `Checkout Started` in the tracking log, once
    per cart (its message id is the cart's), with the basket as the spec has it."""
    cart = priced.cart
    properties = {
        "value": priced.total / 100,
        "currency": priced.currency,
        "products": [
            {"sku": line.sku, "name": line.name, "category": line.category,
             "price": line.unit_price / 100, "quantity": line.quantity}
            for line in priced.lines
        ],
    }  # fmt: skip
    track(session, now, cart, CHECKOUT_STARTED, properties, f"cart-{cart.id}-checkout-started")


def _check_room(session: Session, cart_id: uuid.UUID) -> None:
    if len(cart_lines(session, cart_id)) >= MAX_LINES:
        raise InvalidInput(
            f"A cart holds at most {MAX_LINES} different SKUs.", [FieldError("too many", "#/sku")]
        )


def set_promo_codes(session: Session, now: datetime, cart_id: uuid.UUID, codes: list[str]) -> Cart:
    """Replace the cart's promo codes (upper-cased, deduplicated); the hook judges them."""
    cart = open_cart(session, cart_id)
    cleaned = list(dict.fromkeys(c.strip().upper() for c in codes if c.strip()))
    if any(len(c) > 40 for c in cleaned) or len(cleaned) > 5:
        raise InvalidInput(
            "At most 5 promo codes of up to 40 characters.",
            [FieldError("too many or too long", "#/promo_codes")],
        )
    cart.promo_codes = cleaned
    cart.updated_at = now
    return cart


# ------------------------------------------------------------------ pricing


def price_cart(
    session: Session, now: datetime, cart: Cart, lines: Sequence[CartLine] | None = None
) -> PricedCart:
    """The cart priced from its channel's list now: one price query and one name query
    for every line, then the promotion hook."""
    lines = list(lines) if lines is not None else cart_lines(session, cart.id)
    skus = [line.sku for line in lines]
    quotes = catalog.current_prices(session, cart.channel, now, skus) if skus else {}
    labels = catalog.sku_labels(session, skus)
    gross: list[PricedLine] = []
    unpriced = []
    for line in lines:
        quote, label = quotes.get(line.sku), labels.get(line.sku)
        if quote is None or label is None:
            unpriced.append(line.sku)
            continue
        total = quote.incl_vat * line.quantity
        gross.append(
            PricedLine(
                line.sku,
                label.name_fr,
                label.category,
                line.quantity,
                quote.incl_vat,
                quote.vat_rate_bp,
                0,
                total,
                vat_part(total, quote.vat_rate_bp),
            )
        )
    result = promotion_hook().apply(session, now, cart, gross)
    priced = [_discounted(line, result.line_discounts.get(line.sku, 0)) for line in gross]
    subtotal = sum(line.total for line in priced)
    return PricedCart(
        cart=cart,
        lines=priced,
        currency=cart.currency,
        subtotal=subtotal,
        discount_total=sum(line.discount for line in priced),
        vat_total=sum(line.vat for line in priced),
        total=subtotal,
        unpriced=unpriced,
        promo_messages=dict(result.code_messages),
        free_delivery=result.free_delivery,
    )


def _discounted(line: PricedLine, discount: int) -> PricedLine:
    discount = max(0, min(discount, line.unit_price * line.quantity))
    if not discount:
        return line
    total = line.unit_price * line.quantity - discount
    return PricedLine(
        line.sku,
        line.name,
        line.category,
        line.quantity,
        line.unit_price,
        line.vat_rate_bp,
        discount,
        total,
        vat_part(total, line.vat_rate_bp),
    )


# ------------------------------------------------------------------ login


def attach_customer(
    session: Session,
    now: datetime,
    cart_id: uuid.UUID,
    customer_id: uuid.UUID,
    actor: Actor | None = None,
) -> Cart:
    """The visitor logged in: their cart becomes the customer's.

    When the customer already has an open cart on the same channel, this cart is folded
    into it (quantities summed, at most 99) and marked `merged`; the customer's cart is
    returned. With an `actor`, the customer is looked up (audited) so an unknown id is
    refused.
    """
    cart = open_cart(session, cart_id)
    if actor is not None:
        customers.get_customer(session, now, actor, customer_id)
    if cart.customer_id not in (None, customer_id):
        raise Conflict(f"Cart {cart_id} belongs to another customer.")
    target = session.scalar(
        select(Cart)
        .where(
            Cart.customer_id == customer_id,
            Cart.channel == cart.channel,
            Cart.status == "open",
            Cart.id != cart.id,
        )
        .order_by(Cart.updated_at.desc())
        .limit(1)
    )
    if target is None:
        cart.customer_id = customer_id
        cart.updated_at = now
        return cart
    _merge_lines(session, now, cart, target)
    cart.status = "merged"
    cart.customer_id = customer_id
    cart.updated_at = now
    target.promo_codes = list(dict.fromkeys([*target.promo_codes, *cart.promo_codes]))
    target.store_id = target.store_id or cart.store_id
    target.updated_at = now
    return target


def _merge_lines(session: Session, now: datetime, source: Cart, target: Cart) -> None:
    kept = {line.sku: line for line in cart_lines(session, target.id)}
    for line in cart_lines(session, source.id):
        if line.sku in kept:
            kept[line.sku].quantity = min(MAX_QUANTITY, kept[line.sku].quantity + line.quantity)
        else:
            session.add(
                CartLine(cart_id=target.id, sku=line.sku, quantity=line.quantity, added_at=now)
            )
        session.delete(line)


# ------------------------------------------------------------------ open carts by person


@dataclass(frozen=True)
class OpenCartLine:
    """One line of a person's open cart: `unit_price` in cents of the cart's currency,
    VAT included, from the channel's list now (None when the SKU has no price)."""

    sku: str
    name_fr: str
    name_en: str
    quantity: int
    unit_price: int | None

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" and self.name_en else self.name_fr


@dataclass(frozen=True)
class OpenCart:
    cart_id: uuid.UUID
    channel: str
    currency: str
    store_id: uuid.UUID | None
    updated_at: datetime
    lines: list[OpenCartLine]


def open_carts(
    session: Session, now: datetime, profile_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, OpenCart]:
    """Each person's open cart (the most recently changed one with lines, on any
    channel), by live profile id: carts of profiles merged into them count. Empty carts
    and anonymous carts are left out. Queries: one for the carts and lines, one name
    query and one price query per channel among them, whatever the number of people."""
    wanted = list(dict.fromkeys(profile_ids))
    if not wanted:
        return {}
    walk = customers.live_profile_of(wanted).subquery("open_cart_owner")
    columns = (walk.c.profile_id, Cart.id, Cart.channel, Cart.currency, Cart.store_id,
               Cart.updated_at, CartLine.sku, CartLine.quantity)  # fmt: skip
    rows = session.execute(
        select(*columns)
        .join(Cart, Cart.customer_id == walk.c.customer_id)
        .join(CartLine, CartLine.cart_id == Cart.id)
        .where(Cart.status == "open")
        .order_by(walk.c.profile_id, Cart.updated_at.desc(), Cart.id, CartLine.added_at)
    ).all()
    chosen: dict[uuid.UUID, uuid.UUID] = {}
    raw: dict[uuid.UUID, tuple[Any, list[tuple[str, int]]]] = {}
    for profile_id, cart_id, channel, currency, store_id, updated_at, sku, quantity in rows:
        if chosen.setdefault(profile_id, cart_id) != cart_id:
            continue  # an older open cart of the same person
        head, lines = raw.setdefault(
            profile_id, ((cart_id, channel, currency, store_id, updated_at), [])
        )
        lines.append((sku, int(quantity)))
    skus = {sku for _, lines in raw.values() for sku, _ in lines}
    labels = catalog.sku_labels(session, skus)
    prices: dict[str, dict[str, int]] = {}
    for channel in {head[1] for head, _ in raw.values()}:
        channel_skus = sorted({s for head, lines in raw.values() if head[1] == channel
                               for s, _ in lines})  # fmt: skip
        try:
            quotes = catalog.current_prices(session, channel, now, channel_skus)
        except NotFound:  # a channel without a price list: lines without prices
            quotes = {}
        prices[channel] = {sku: quote.incl_vat for sku, quote in quotes.items()}
    out: dict[uuid.UUID, OpenCart] = {}
    for profile_id, (head, lines) in raw.items():
        cart_id, channel, currency, store_id, updated_at = head
        out[profile_id] = OpenCart(
            cart_id, channel, currency, store_id, updated_at,
            [
                OpenCartLine(
                    sku,
                    labels[sku].name_fr if sku in labels else sku,
                    labels[sku].name_en if sku in labels else sku,
                    quantity,
                    prices[channel].get(sku),
                )
                for sku, quantity in lines
            ],
        )  # fmt: skip
    return out


def open_cart_lines(session: Session, now: datetime, profile_id: uuid.UUID) -> list[OpenCartLine]:
    """The lines of one person's open cart (empty when none): `open_carts` for one."""
    found = open_carts(session, now, [profile_id]).get(profile_id)
    return found.lines if found is not None else []
