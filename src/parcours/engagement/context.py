"""The variables a message template sees (the documented context).

`customer` (the profile's first name, last name, locale, city...), `store` (the store
the sender names with the `store_id` extra, such as a journey's nearby store, else the
preferred store, else the nearest one to the customer's postcode or city, with its
hours this week in its own zone; None when there is none), `cart` (from the sender's
extras, else the `CartSource` hook), `promo_code` (extras), `recommendations` (the
`Recommender` hook), `unsubscribe_url` (marketing only), `campaign` and `links`.

Carts and recommendations are hooks, read for a whole batch of people at once. The
default `CartSource` (`OrdersCartSource`) reads the person's open cart from the orders
context (`orders.open_carts`), priced now, with each item's stock at the person's
preferred store; the default `Recommender` (`BestSellers`) gives the best sellers of the
last 90 days in the person's favourite category that are in stock at their preferred
store (online stock without one), leaving out what they already bought.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parcours import catalog, customers, inventory, orders, stores
from parcours.core.errors import ParcoursError
from parcours.core.money import Money
from parcours.engagement.models import Campaign, Delivery
from parcours.engagement.policy import WEEKDAYS, zone_of


class CartSource(Protocol):
    def carts_for(
        self, session: Session, now: datetime, profiles: Sequence[Any]
    ) -> dict[uuid.UUID, dict[str, Any]]:
        """The open cart of each person (live profiles) as template data: `items` (sku,
        name, quantity, price, stock_at_store), `total`, `items_count`, `url`. People
        without a cart are absent. Called once per batch."""
        ...


class Recommender(Protocol):
    def recommend_for(
        self, session: Session, now: datetime, profiles: Sequence[Any], limit: int
    ) -> dict[uuid.UUID, list[dict[str, Any]]]:
        """Products to show each person ({sku, name, price, url}), once per batch."""
        ...


class NoCart:
    """No cart unless the sender gives one in the extras."""

    def carts_for(
        self, session: Session, now: datetime, profiles: Sequence[Any]
    ) -> dict[uuid.UUID, dict[str, Any]]:
        return {}


class NoRecommendations:
    """No recommendations (templates test `{% if recommendations %}`)."""

    def recommend_for(
        self, session: Session, now: datetime, profiles: Sequence[Any], limit: int
    ) -> dict[uuid.UUID, list[dict[str, Any]]]:
        return {}


def preferred_stores(session: Session, profiles: Sequence[Any]) -> dict[uuid.UUID, uuid.UUID]:
    """Each person's preferred store: the one they chose, else the one computed from
    their purchases (one query for the computed ones)."""
    out = {p.id: p.preferred_store_id for p in profiles if p.preferred_store_id is not None}
    missing = [p.id for p in profiles if p.id not in out]
    if missing:
        traits = customers.audience_profiles(missing).subquery("preferred_traits")
        rows = session.execute(
            select(traits.c.profile_id, traits.c.preferred_store_id).where(
                traits.c.preferred_store_id.is_not(None)
            )
        )
        out.update({row[0]: row[1] for row in rows})
    return out


def _stock_by_store(
    session: Session, wanted: dict[uuid.UUID, set[str]]
) -> dict[uuid.UUID, dict[str, int]]:
    """Units available per SKU at each store (one query per distinct store)."""
    return {
        store: inventory.available_at_location(session, store, sorted(skus))
        for store, skus in wanted.items()
        if skus
    }


def _money(amount: int | None, currency: str, locale: str) -> str:
    if amount is None:
        return ""
    try:
        return Money(amount, currency).format(locale)
    except ValueError:  # an unknown currency code: the plain figure
        return f"{amount / 100:.2f} {currency}"


class OrdersCartSource:
    """The default `CartSource`: the person's open cart in the orders context (carts
    from every channel once the shopper is known), priced now, each item with the units
    available at the person's preferred store (None without one)."""

    def carts_for(
        self, session: Session, now: datetime, profiles: Sequence[Any]
    ) -> dict[uuid.UUID, dict[str, Any]]:
        found = orders.open_carts(session, now, [p.id for p in profiles])
        if not found:
            return {}
        by_id = {p.id: p for p in profiles}
        store_of = preferred_stores(session, [by_id[pid] for pid in found])
        wanted: dict[uuid.UUID, set[str]] = defaultdict(set)
        for pid, cart in found.items():
            if pid in store_of:
                wanted[store_of[pid]].update(line.sku for line in cart.lines)
        stock = _stock_by_store(session, wanted)
        out: dict[uuid.UUID, dict[str, Any]] = {}
        for pid, cart in found.items():
            locale = by_id[pid].locale or "fr"
            store = store_of.get(pid)
            items = [
                {
                    "sku": line.sku,
                    "name": line.name(locale),
                    "quantity": line.quantity,
                    "price": _money(line.unit_price, cart.currency, locale),
                    "stock_at_store": stock.get(store, {}).get(line.sku) if store else None,
                }
                for line in cart.lines
            ]
            total = sum((line.unit_price or 0) * line.quantity for line in cart.lines)
            out[pid] = {
                "items": items,
                "total": _money(total, cart.currency, locale),
                "items_count": sum(line.quantity for line in cart.lines),
                "url": "",
                "cart_id": str(cart.cart_id),
            }
        return out


BEST_SELLER_DAYS = 90
ONLINE_CHANNEL = "web"


class BestSellers:
    """The default `Recommender`: the best sellers (most orders) of the last 90 days in
    the person's favourite category (computed traits), in stock at their preferred
    store (for people without one: available online, the `web` channel's stock),
    leaving out the SKUs they already bought. Set-based: a handful of queries per batch
    (traits, best sellers per category, past purchases, stock per store, names, prices)."""

    def __init__(self, days: int = BEST_SELLER_DAYS, channel: str = ONLINE_CHANNEL) -> None:
        self.days, self.channel = days, channel

    def recommend_for(
        self, session: Session, now: datetime, profiles: Sequence[Any], limit: int
    ) -> dict[uuid.UUID, list[dict[str, Any]]]:
        ids = [p.id for p in profiles]
        if not ids or limit <= 0:
            return {}
        traits = customers.audience_profiles(ids).subquery("recommend_traits")
        favourite = {
            pid: str(category)
            for pid, category in session.execute(
                select(traits.c.profile_id, traits.c.favourite_category).where(
                    traits.c.favourite_category.is_not(None)
                )
            )
        }
        if not favourite:
            return {}
        ranked = self._best_sellers(session, now, set(favourite.values()), limit)
        candidates = {sku for skus in ranked.values() for sku in skus}
        if not candidates:
            return {}
        bought = self._bought(session, list(favourite), candidates)
        by_id = {p.id: p for p in profiles}
        store_of = preferred_stores(session, [by_id[pid] for pid in favourite])
        wanted: dict[uuid.UUID, set[str]] = defaultdict(set)
        for pid, category in favourite.items():
            if pid in store_of:
                wanted[store_of[pid]].update(ranked.get(category, []))
        stock = _stock_by_store(session, wanted)
        online_skus = sorted({sku for pid, category in favourite.items() if pid not in store_of
                              for sku in ranked.get(category, [])})  # fmt: skip
        online = inventory.available_to_promise(session, online_skus, self.channel)
        labels = catalog.sku_labels(session, candidates)
        try:
            prices = catalog.current_prices(session, self.channel, now, sorted(candidates))
        except ParcoursError:  # no online price list: recommendations without prices
            prices = {}
        out: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for pid, category in favourite.items():
            store = store_of.get(pid)
            units = stock.get(store, {}) if store else online
            locale = by_id[pid].locale or "fr"
            picks = [
                {
                    "sku": sku,
                    "name": labels[sku].name(locale) if sku in labels else sku,
                    "price": _money(prices[sku].incl_vat, prices[sku].currency, locale)
                    if sku in prices
                    else "",
                    "url": "",
                }
                for sku in ranked.get(category, [])
                if units.get(sku, 0) > 0 and sku not in bought.get(pid, set())
            ]
            if picks:
                out[pid] = picks[:limit]
        return out

    def _best_sellers(
        self, session: Session, now: datetime, categories: set[str], limit: int
    ) -> dict[str, list[str]]:
        """The SKUs of each category by orders over the period, best first (enough to
        fill `limit` after leaving out what is out of stock or already bought)."""
        lines = orders.customer_order_lines().subquery("recent_lines")
        sold = func.count(lines.c.order_id.distinct())
        rows = session.execute(
            select(lines.c.category, lines.c.sku, sold)
            .where(
                lines.c.placed_at >= now - timedelta(days=self.days),
                lines.c.category.in_(sorted(categories)),
            )
            .group_by(lines.c.category, lines.c.sku)
            .order_by(lines.c.category, sold.desc(), lines.c.sku)
        )
        ranked: dict[str, list[str]] = defaultdict(list)
        for category, sku, _ in rows:
            if len(ranked[category]) < limit * 5:
                ranked[str(category)].append(str(sku))
        return ranked

    def _bought(
        self, session: Session, profile_ids: list[uuid.UUID], skus: set[str]
    ) -> dict[uuid.UUID, set[str]]:
        """Which of `skus` each person ever bought (merged profiles' orders count)."""
        walk = customers.live_profile_of(profile_ids).subquery("recommend_buyers")
        lines = orders.customer_order_lines().subquery("recommend_bought")
        rows = session.execute(
            select(walk.c.profile_id, lines.c.sku)
            .join(lines, lines.c.customer_id == walk.c.customer_id)
            .where(lines.c.sku.in_(sorted(skus)))
            .distinct()
        )
        out: dict[uuid.UUID, set[str]] = defaultdict(set)
        for pid, sku in rows:
            out[pid].add(str(sku))
        return out


def customer_data(profile: Any) -> dict[str, Any]:
    return {
        "id": str(profile.id),
        "first_name": profile.first_name or "",
        "last_name": profile.last_name or "",
        "locale": profile.locale or "fr",
        "city": profile.city or "",
        "postcode": profile.postcode or "",
        "country": profile.country or "",
        "timezone": profile.timezone or "",
        "traits": {},
    }


def store_data(session: Session, now: datetime, store: Any) -> dict[str, Any]:
    """A store as template data, with its hours for the next seven local days."""
    schedule = stores.opening_schedule(session, store, now)
    today = now.astimezone(zone_of(store.timezone, "Europe/Paris")).date()
    hours = []
    for offset in range(7):
        day = today + timedelta(days=offset)
        ranges = schedule.ranges_on(day)
        text = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in ranges)
        hours.append({"day": WEEKDAYS[day.weekday()], "date": day.isoformat(), "hours": text})
    return {
        "code": store.code,
        "name": store.name,
        "address": store.address,
        "postcode": store.postcode,
        "city": store.city,
        "phone": store.phone or "",
        "timezone": store.timezone,
        "hours": hours,
        "open_today": hours[0]["hours"],
    }


RECOMMENDATIONS = 4  # products in `recommendations`


class ContextBuilder:
    """Builds contexts for one batch, reading each store and campaign once."""

    def __init__(
        self,
        session: Session,
        now: datetime,
        public_url: str,
        timezone: str,
        carts: CartSource | None = None,
        recommender: Recommender | None = None,
    ) -> None:
        self.session, self.now, self.public_url, self.timezone = session, now, public_url, timezone
        self.carts: CartSource = carts or OrdersCartSource()
        self.recommender: Recommender = recommender or BestSellers()
        self._stores: dict[Any, dict[str, Any] | None] = {}
        self._campaigns: dict[uuid.UUID, dict[str, Any] | None] = {}
        self._carts: dict[uuid.UUID, dict[str, Any]] = {}
        self._recommended: dict[uuid.UUID, list[dict[str, Any]]] = {}
        self._prepared: set[uuid.UUID] = set()

    def prepare(self, profiles: Sequence[Any]) -> None:
        """Read the carts and recommendations of a batch's people at once (the hooks
        are called here, never per message)."""
        todo = [p for p in {p.id: p for p in profiles}.values() if p.id not in self._prepared]
        if not todo:
            return
        self._prepared.update(p.id for p in todo)
        self._carts.update(self.carts.carts_for(self.session, self.now, todo))
        self._recommended.update(
            self.recommender.recommend_for(self.session, self.now, todo, RECOMMENDATIONS)
        )

    def _store(self, profile: Any) -> dict[str, Any] | None:
        key = profile.preferred_store_id or (profile.postcode, profile.city)
        if key not in self._stores:
            self._stores[key] = self._find_store(profile)
        return self._stores[key]

    def _find_store(self, profile: Any) -> dict[str, Any] | None:
        try:
            if profile.preferred_store_id is not None:
                store = stores.get_store(self.session, profile.preferred_store_id)
                return store_data(self.session, self.now, store)
            if not (profile.postcode or profile.city):
                return None
            city = None if profile.postcode else profile.city
            centre = stores.resolve_place(postcode=profile.postcode or None, city=city)
            found = stores.nearest_stores(self.session, centre, self.now, limit=1)
            if not found:
                return None
            return store_data(self.session, self.now, stores.get_store(self.session, found[0].id))
        except ParcoursError:  # an unknown postcode: no store rather than no message
            return None

    def _chosen_store(self, store_id: Any) -> dict[str, Any] | None:
        """The store a sender names (a journey's nearby store), read once per batch."""
        if not store_id:
            return None
        key = ("id", str(store_id))
        if key not in self._stores:
            try:
                store = stores.get_store(self.session, uuid.UUID(str(store_id)))
                self._stores[key] = store_data(self.session, self.now, store)
            except (ParcoursError, ValueError):  # unknown: fall back to the person's store
                self._stores[key] = None
        return self._stores[key]

    def _campaign(self, campaign_id: uuid.UUID | None) -> dict[str, Any] | None:
        if campaign_id is None:
            return None
        if campaign_id not in self._campaigns:
            row = self.session.get(Campaign, campaign_id)
            self._campaigns[campaign_id] = (
                {"id": str(row.id), "name": row.name} if row is not None else None
            )
        return self._campaigns[campaign_id]

    def build(self, profile: Any, row: Delivery, extras: dict[str, Any]) -> dict[str, Any]:
        unsubscribe = ""
        if row.purpose == "marketing" and row.channel in customers.CHANNELS:
            unsubscribe = customers.unsubscribe_url(
                self.session, self.now, self.public_url, profile.id, "marketing", row.channel
            )
        self.prepare([profile])  # a no-op when the batch was prepared
        cart = extras.pop("cart", None) or self._carts.get(profile.id)
        return {
            "customer": customer_data(profile),
            "store": self._chosen_store(extras.pop("store_id", None)) or self._store(profile),
            "cart": cart,
            "promo_code": extras.pop("promo_code", None),
            "recommendations": list(self._recommended.get(profile.id, [])),
            "unsubscribe_url": unsubscribe,
            "campaign": self._campaign(row.campaign_id),
            "links": extras.pop("links", None) or {},
        }
