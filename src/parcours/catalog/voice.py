"""One voice: the same name, description, price and availability on every channel, within
the differences the retailer allows.

Each channel is compared with a reference channel under its `OneVoiceRule` (channels
without a rule: the report's default reference and the strictest rule). Only products
visible on both channels are compared. The report reads the whole catalogue in a fixed
number of set-based queries, whatever the number of products.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours import inventory
from parcours.catalog.models import Channel, ChannelListing, OneVoiceRule, Price, Product, Variant
from parcours.catalog.service import (
    LOCALES,
    NO_CHANNEL,
    NOT_LISTED,
    PriceQuote,
    get_channel,
    list_channels,
    quote,
    set_price,
    variant_by_sku,
    visible_listing,
)
from parcours.core import audit
from parcours.core.errors import (
    ONE_OF,
    FieldError,
    InvalidInput,
    Refused,
    SaidConflict,
    SaidNotFound,
    refusal,
)

FIELDS = ("name", "description", "price", "availability")
TEXT_FIELDS = ("name", "description")
# What the one-voice page and its fixes can be refused, as `message % values` for the
# console (see `core.errors.refusal`); unknown channels and listings are `service`'s.
UNKNOWN_FIELD = "Unknown field."
CURRENCIES_DIFFER = (
    "%(channel)s sells in %(currency)s and %(reference)s in %(reference_currency)s: "
    "a price cannot be copied across currencies."
)
NO_PRICE_TO_ALIGN = "SKU %(sku)s has no price on channel %(reference)s to align on."
ONLY_TEXTS = "Only a name or a description in French or English can be removed."
NAME_OR_DESCRIPTION = "must be name or description"
FR_OR_EN = "must be fr or en"
NO_OWN_TEXT = "The listing on %(channel)s has no own %(field)s in %(locale)s to remove."
MESSAGES = (
    UNKNOWN_FIELD, ONE_OF, CURRENCIES_DIFFER, NO_PRICE_TO_ALIGN, ONLY_TEXTS,
    NAME_OR_DESCRIPTION, FR_OR_EN, NO_OWN_TEXT,
)  # fmt: skip
# How many SKUs one availability lookup asks for (bounded SQL parameter lists).
_ATP_CHUNK = 20_000


@dataclass(frozen=True)
class VoiceRule:
    """What a channel may differ in from its reference channel."""

    channel: str
    reference: str
    price_tolerance_bp: int = 0  # basis points of the reference price: 500 = 5 %
    price_tolerance_cents: int = 0  # minor units of the channel's currency
    allow_name_override: bool = False
    allow_description_override: bool = False
    availability_must_match: bool = True

    def price_allowed(self, difference: int, reference_amount: int) -> bool:
        """Whether a price `difference` (minor units) is within either tolerance."""
        gap = abs(difference)
        return (
            gap <= self.price_tolerance_cents
            or gap * 10_000 <= abs(reference_amount) * self.price_tolerance_bp
        )

    def allows_override(self, field: str) -> bool:
        return self.allow_name_override if field == "name" else self.allow_description_override


@dataclass(frozen=True)
class VoiceFinding:
    """One difference beyond the rules: `field` of `product_code` (for one `locale` or
    `sku` where it applies) shows `channel_value` on `channel` and `reference_value` on
    `reference`. Prices are minor units in the checked channel's stored VAT mode
    (`includes_vat`); availability is units available to promise.

    `fix` names the repair the console offers (`align_price`, `remove_text`, or None when
    the cause lies elsewhere, e.g. inventory allocation rules); `fix_channel` is the
    channel the repair changes.
    """

    product_code: str
    product_name: str
    field: str
    rule: str
    channel: str
    reference: str
    channel_value: str | int
    reference_value: str | int
    locale: str | None = None
    sku: str | None = None
    currency: str | None = None
    includes_vat: bool | None = None
    fix: str | None = None
    fix_channel: str | None = None


@dataclass(frozen=True)
class VoiceReport:
    default_reference: str | None
    rules: list[VoiceRule]
    products_checked: int
    findings: list[VoiceFinding]


# ------------------------------------------------------------------ rules


def _rule_of(row: OneVoiceRule, codes: Mapping[uuid.UUID, str]) -> VoiceRule:
    return VoiceRule(
        channel=codes[row.channel_id],
        reference=codes[row.reference_channel_id],
        price_tolerance_bp=row.price_tolerance_bp,
        price_tolerance_cents=row.price_tolerance_cents,
        allow_name_override=row.allow_name_override,
        allow_description_override=row.allow_description_override,
        availability_must_match=row.availability_must_match,
    )


def list_voice_rules(session: Session) -> list[VoiceRule]:
    """Every channel's one-voice rule, by channel code."""
    codes = {c.id: c.code for c in list_channels(session)}
    rules = [_rule_of(row, codes) for row in session.scalars(select(OneVoiceRule))]
    return sorted(rules, key=lambda r: r.channel)


def _check_tolerance(value: Any, pointer: str, upper: int | None = None) -> list[FieldError]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return [FieldError("must be a whole number from 0", pointer=pointer)]
    if upper is not None and value > upper:
        return [FieldError(f"must be at most {upper}", pointer=pointer)]
    return []


def set_voice_rule(session: Session, now: datetime, rule: VoiceRule) -> VoiceRule:
    """Create or replace the one-voice rule of `rule.channel`."""
    errors = _check_tolerance(rule.price_tolerance_bp, "#/price_tolerance_bp", 10_000)
    errors += _check_tolerance(rule.price_tolerance_cents, "#/price_tolerance_cents")
    if rule.channel == rule.reference:
        errors.append(FieldError("a channel cannot be its own reference", pointer="#/reference"))
    if errors:
        raise InvalidInput("The one-voice rule is invalid.", errors)
    channel = get_channel(session, rule.channel)
    reference = get_channel(session, rule.reference)
    if reference.currency != channel.currency and (
        rule.price_tolerance_bp or rule.price_tolerance_cents
    ):
        raise InvalidInput(
            "Prices in different currencies are not compared; a price tolerance means nothing.",
            [FieldError(f"{reference.code} sells in {reference.currency}", pointer="#/reference")],
        )
    row = session.scalar(select(OneVoiceRule).where(OneVoiceRule.channel_id == channel.id))
    if row is None:
        row = OneVoiceRule(channel_id=channel.id)
        session.add(row)
    row.reference_channel_id = reference.id
    row.price_tolerance_bp = rule.price_tolerance_bp
    row.price_tolerance_cents = rule.price_tolerance_cents
    row.allow_name_override = rule.allow_name_override
    row.allow_description_override = rule.allow_description_override
    row.availability_must_match = rule.availability_must_match
    row.updated_at = now
    session.flush()
    return rule


def default_reference(channels: Sequence[Channel]) -> Channel | None:
    """The reference for channels without a rule: the first web shop by code, else the
    first channel."""
    webs = [c for c in channels if c.kind == "web"]
    if webs:
        return webs[0]
    return channels[0] if channels else None


# ------------------------------------------------------------------ the report


@dataclass
class _Facts:
    """What the report compares, read in a fixed number of queries."""

    products: dict[uuid.UUID, Product]
    listings: dict[uuid.UUID, dict[uuid.UUID, ChannelListing]]  # product → channel → listing
    skus: dict[uuid.UUID, list[str]]  # product → SKUs in position order
    prices: dict[tuple[str, uuid.UUID], PriceQuote]  # (sku, channel) → price in force
    stock: dict[uuid.UUID, dict[str, int]]  # channel → SKU → units available to promise


def one_voice_report(
    session: Session,
    at: datetime,
    reference: str | None = None,
    channel: str | None = None,
    field: str | None = None,
) -> VoiceReport:
    """Every difference between channels beyond their one-voice rules at `at` (UTC).

    `reference` is the reference of channels without a rule (default: the first web
    shop); `channel` and `field` narrow the report to one checked channel or field.
    """
    if field is not None and field not in FIELDS:
        raise Refused(
            UNKNOWN_FIELD, [refusal(ONE_OF, pointer="#/field", choices=", ".join(FIELDS))]
        )
    channels = list_channels(session)
    by_code = {c.code: c for c in channels}
    if channel is not None and channel not in by_code:
        raise SaidNotFound(NO_CHANNEL, code=repr(channel))
    fallback = get_channel(session, reference) if reference else default_reference(channels)
    rules = {r.channel: r for r in list_voice_rules(session)}
    checked: list[VoiceRule] = []
    for candidate in channels:
        rule = rules.get(candidate.code)
        if rule is None and fallback is not None and candidate.id != fallback.id:
            rule = VoiceRule(candidate.code, fallback.code)
        if rule is not None and channel in (None, candidate.code):
            checked.append(rule)
    if not checked:
        return VoiceReport(fallback.code if fallback else None, list(rules.values()), 0, [])
    facts = _read_facts(session, at, checked, by_code, field)
    findings: list[VoiceFinding] = []
    compared: set[uuid.UUID] = set()
    for rule in checked:
        mine, theirs = by_code[rule.channel], by_code[rule.reference]
        for product_id, listings in facts.listings.items():
            if mine.id not in listings or theirs.id not in listings:
                continue
            compared.add(product_id)
            findings += _compare(facts, rule, mine, theirs, product_id, field)
    findings.sort(key=lambda f: (f.product_code, FIELDS.index(f.field), f.channel, f.sku or ""))
    return VoiceReport(
        fallback.code if fallback else None, list(rules.values()), len(compared), findings
    )


def _read_facts(
    session: Session,
    at: datetime,
    checked: Sequence[VoiceRule],
    by_code: Mapping[str, Channel],
    field: str | None,
) -> _Facts:
    involved = sorted(
        {by_code[r.channel].id for r in checked} | {by_code[r.reference].id for r in checked}
    )
    listings: dict[uuid.UUID, dict[uuid.UUID, ChannelListing]] = defaultdict(dict)
    for listing in session.scalars(
        select(ChannelListing).where(ChannelListing.channel_id.in_(involved), visible_listing(at))
    ):
        listings[listing.product_id][listing.channel_id] = listing
    shared = {p: c for p, c in listings.items() if len(c) > 1}
    listed = select(ChannelListing.product_id).where(
        ChannelListing.channel_id.in_(involved), visible_listing(at)
    )
    products = {
        p.id: p
        for p in session.scalars(select(Product).where(Product.id.in_(listed)))
        if p.id in shared
    }
    skus: dict[uuid.UUID, list[str]] = defaultdict(list)
    if field in (None, "price", "availability"):
        for product_id, sku in session.execute(
            select(Variant.product_id, Variant.sku).order_by(Variant.product_id, Variant.position)
        ):
            if product_id in shared:
                skus[product_id].append(sku)
    prices = _current_prices(session, at, involved, by_code) if field in (None, "price") else {}
    stock: dict[uuid.UUID, dict[str, int]] = {}
    if field in (None, "availability"):
        stock = _availability(session, checked, by_code, [s for v in skus.values() for s in v])
    return _Facts(products, shared, skus, prices, stock)


def _current_prices(
    session: Session, at: datetime, channel_ids: Sequence[uuid.UUID], by_code: Mapping[str, Channel]
) -> dict[tuple[str, uuid.UUID], PriceQuote]:
    """The channel-wide price in force at `at` of every variant on these channels, in one
    query (a window over variant x channel)."""
    ranked = (
        select(
            Price,
            func.row_number()
            .over(
                partition_by=(Price.variant_id, Price.channel_id),
                order_by=(Price.valid_from.desc(), Price.id.desc()),
            )
            .label("rank"),
        )
        .where(Price.channel_id.in_(channel_ids), Price.store_id.is_(None), Price.valid_from <= at)
        .subquery()
    )
    codes = {c.id: c.code for c in by_code.values()}
    stmt = (
        select(Variant.sku, Product.vat_rate_bp, ranked)
        .join(Variant, Variant.id == ranked.c.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(ranked.c.rank == 1)
    )
    out = {}
    for row in session.execute(stmt):
        price = Price(
            amount=row.amount,
            currency=row.currency,
            includes_vat=row.includes_vat,
            sale_amount=row.sale_amount,
            sale_from=row.sale_from,
            sale_to=row.sale_to,
            valid_from=row.valid_from,
            store_id=None,
        )
        out[(row.sku, row.channel_id)] = quote(
            price, row.sku, codes[row.channel_id], row.vat_rate_bp, at
        )
    return out


def _availability(
    session: Session,
    checked: Sequence[VoiceRule],
    by_code: Mapping[str, Channel],
    skus: Sequence[str],
) -> dict[uuid.UUID, dict[str, int]]:
    codes = {r.channel for r in checked if r.availability_must_match}
    codes |= {r.reference for r in checked if r.availability_must_match}
    out: dict[uuid.UUID, dict[str, int]] = {}
    for code in sorted(codes):
        units: dict[str, int] = {}
        for start in range(0, len(skus), _ATP_CHUNK):
            units.update(
                inventory.available_to_promise(session, skus[start : start + _ATP_CHUNK], code)
            )
        out[by_code[code].id] = units
    return out


def _compare(
    facts: _Facts,
    rule: VoiceRule,
    mine: Channel,
    theirs: Channel,
    product_id: uuid.UUID,
    field: str | None,
) -> list[VoiceFinding]:
    product = facts.products[product_id]
    found: list[VoiceFinding] = []
    if field in (None, "name", "description"):
        found += _text_findings(facts, rule, mine, theirs, product, field)
    if field in (None, "price") and mine.currency == theirs.currency:
        found += _price_findings(facts, rule, mine, theirs, product)
    if field in (None, "availability") and rule.availability_must_match:
        found += _stock_findings(facts, rule, mine, theirs, product)
    return found


def _text_findings(
    facts: _Facts,
    rule: VoiceRule,
    mine: Channel,
    theirs: Channel,
    product: Product,
    field: str | None,
) -> list[VoiceFinding]:
    listings = facts.listings[product.id]
    found = []
    for name in TEXT_FIELDS:
        if field not in (None, name) or rule.allows_override(name):
            continue
        for locale in [loc for loc in LOCALES if loc in mine.locales and loc in theirs.locales]:
            column = f"{name}_{locale}"
            own = getattr(listings[mine.id], column)
            ref = getattr(listings[theirs.id], column)
            base = getattr(product, column)
            shown, expected = own if own is not None else base, ref if ref is not None else base
            if shown == expected:
                continue
            found.append(
                VoiceFinding(
                    product_code=product.code,
                    product_name=product.name_fr,
                    field=name,
                    rule=f"no_{name}_override",
                    channel=mine.code,
                    reference=theirs.code,
                    channel_value=shown,
                    reference_value=expected,
                    locale=locale,
                    fix="remove_text",
                    fix_channel=mine.code if own is not None else theirs.code,
                )
            )
    return found


def _price_findings(
    facts: _Facts, rule: VoiceRule, mine: Channel, theirs: Channel, product: Product
) -> list[VoiceFinding]:
    found = []
    for sku in facts.skus.get(product.id, []):
        own, ref = facts.prices.get((sku, mine.id)), facts.prices.get((sku, theirs.id))
        if own is None or ref is None:
            continue  # a missing price is a completeness problem, not a difference
        # Compared in the checked channel's stored VAT mode, so aligning it is exact.
        vat = mine.prices_include_vat
        shown, expected = _stored(own, vat), _stored(ref, vat)
        if rule.price_allowed(shown - expected, expected):
            continue
        found.append(
            VoiceFinding(
                product_code=product.code,
                product_name=product.name_fr,
                field="price",
                rule="price_tolerance",
                channel=mine.code,
                reference=theirs.code,
                channel_value=shown,
                reference_value=expected,
                sku=sku,
                currency=mine.currency,
                includes_vat=vat,
                fix="align_price",
                fix_channel=mine.code,
            )
        )
    return found


def _stock_findings(
    facts: _Facts, rule: VoiceRule, mine: Channel, theirs: Channel, product: Product
) -> list[VoiceFinding]:
    found = []
    own_stock, ref_stock = facts.stock.get(mine.id, {}), facts.stock.get(theirs.id, {})
    for sku in facts.skus.get(product.id, []):
        shown, expected = own_stock.get(sku, 0), ref_stock.get(sku, 0)
        if (shown > 0) == (expected > 0):
            continue
        # Stock exists (one side sees it); the other channel's allocation rule hides it.
        found.append(
            VoiceFinding(
                product_code=product.code,
                product_name=product.name_fr,
                field="availability",
                rule="availability_must_match",
                channel=mine.code,
                reference=theirs.code,
                channel_value=shown,
                reference_value=expected,
                sku=sku,
            )
        )
    return found


def _stored(price: PriceQuote, includes_vat: bool) -> int:
    """The regular price as a channel storing prices with or without VAT states it."""
    return price.regular_incl_vat if includes_vat else price.regular_excl_vat


# ------------------------------------------------------------------ fixes (audited)


def align_price(
    session: Session, now: datetime, actor: audit.Actor, sku: str, channel: str, reference: str
) -> Price:
    """Record on `channel` the regular price `sku` has on `reference` now (a new price
    decision, in the channel's VAT mode), and audit it."""
    mine, theirs = get_channel(session, channel), get_channel(session, reference)
    if mine.currency != theirs.currency:
        raise SaidConflict(
            CURRENCIES_DIFFER,
            channel=channel,
            currency=mine.currency,
            reference=reference,
            reference_currency=theirs.currency,
        )
    variant = variant_by_sku(session, sku)
    prices = _current_prices(
        session, now, [mine.id, theirs.id], {mine.code: mine, theirs.code: theirs}
    )
    ref = prices.get((sku, theirs.id))
    if ref is None:
        raise SaidNotFound(NO_PRICE_TO_ALIGN, sku=repr(sku), reference=repr(reference))
    amount = _stored(ref, mine.prices_include_vat)
    before = prices.get((sku, mine.id))
    price = set_price(session, now, sku, channel, amount)
    audit.record(
        session,
        now,
        actor,
        "catalog.price_aligned",
        "variant",
        str(variant.id),
        sku=sku,
        channel=channel,
        reference=reference,
        amount=amount,
        previous=None if before is None else _stored(before, mine.prices_include_vat),
    )
    return price


def remove_listing_text(
    session: Session,
    now: datetime,
    actor: audit.Actor,
    product_code: str,
    channel: str,
    field: str,
    locale: str,
) -> ChannelListing:
    """Drop a channel's own name or description in one locale (the product's text shows
    again there), and audit it."""
    if field not in TEXT_FIELDS or locale not in LOCALES:
        raise Refused(
            ONLY_TEXTS,
            [refusal(NAME_OR_DESCRIPTION, pointer="#/field")]
            if field not in TEXT_FIELDS
            else [refusal(FR_OR_EN, pointer="#/locale")],
        )
    listing = _listing(session, product_code, channel)
    column = f"{field}_{locale}"
    if getattr(listing, column) is None:
        raise SaidConflict(NO_OWN_TEXT, channel=channel, field=field, locale=locale)
    setattr(listing, column, None)
    listing.updated_at = now
    audit.record(
        session,
        now,
        actor,
        "catalog.listing_text_removed",
        "channel_listing",
        str(listing.id),
        product=product_code,
        channel=channel,
        field=column,
    )
    session.flush()
    return listing


def _listing(session: Session, product_code: str, channel: str) -> ChannelListing:
    listing = session.scalar(
        select(ChannelListing)
        .join(Product, Product.id == ChannelListing.product_id)
        .join(Channel, Channel.id == ChannelListing.channel_id)
        .where(Product.code == product_code, Channel.code == channel)
    )
    if listing is None:
        raise SaidNotFound(NOT_LISTED, product=repr(product_code), channel=repr(channel))
    return listing
