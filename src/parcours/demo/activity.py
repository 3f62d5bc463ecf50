"""Two years of omnichannel activity, sent through the tracking API's own ingestion.

Each demo customer gets a persona (which channels they use, how often) and leaves the
traces a real shopper leaves: web and app sessions (some logged in, some not), store
purchases scanned with a loyalty number or an e-receipt email, call-centre calls found by
phone, newsletter opens. Strangers browse anonymously. On purpose the identifiers
conflict now and then, as they do in real files: households share an email or a phone
or a tablet, a few people type test@test.com, and some shoppers opened a second web
account with another email (same name, birth date and postcode: work for the
probabilistic matcher, not for the deterministic rules).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from parcours import customers

if TYPE_CHECKING:
    from parcours.demo.generator import DemoRun

HISTORY_DAYS = 730
CHUNK = 1_000  # customers per transaction
BATCH = 500  # messages per ingestion call, as a client library sends them
SEARCHES = ("robe lin", "sac cuir", "bougie lavande", "chemise", "foulard soie", "sandales")
CALL_REASONS = ("order_status", "product_question", "complaint", "return", "loyalty")
REFERRERS = ("https://www.google.fr/", "https://www.instagram.com/", "", "", "")
CAMPAIGNS = (
    {"source": "newsletter", "medium": "email", "name": "soldes-ete"},
    {"source": "google", "medium": "cpc", "name": "marque"},
    {"source": "facebook", "medium": "social", "name": "nouvelle-collection"},
)


@dataclass(frozen=True)
class Persona:
    """Which channels a customer uses and how often over two years."""

    web_sessions: int
    app_sessions: int
    store_purchases: int
    calls: int
    email_opens: int
    web_account: bool
    scans_loyalty_card: bool


@dataclass
class _Stream:
    """The messages of one chunk and the counter that keeps message ids unique."""

    run: DemoRun
    counter: list[int]
    messages: list[dict[str, Any]] = field(default_factory=list)
    customer: dict[str, Any] | None = None  # whose activity this is (None: a visitor)

    def add(
        self,
        kind: str,
        at: datetime,
        channel: str,
        ids: dict[str, str],
        **body: Any,
    ) -> None:
        self.counter[0] += 1
        context: dict[str, Any] = {"channel": channel, **body.pop("context", {})}
        store_id = body.pop("store_id", None)
        if store_id is not None:
            context["store_id"] = str(store_id)
        device = body.pop("device_id", None)
        if device is not None:
            context["device"] = {"id": device, "type": "ios"}
        if body.get("event") == "Order Completed":  # the orders step stores it as an order
            self.run.orders.append(
                {
                    "at": at,
                    "channel": channel,
                    "store_id": store_id,
                    "customer_id": self.customer["id"] if self.customer else None,
                    "anonymous_id": ids.get("anonymousId"),
                    "properties": body["properties"],
                }
            )
        self.messages.append(
            {
                "type": kind,
                "messageId": f"demo-{self.run.seed}-{self.counter[0]}",
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                **ids,
                "context": context,
                **body,
            }
        )


def _persona(rng: random.Random, customer: dict[str, Any]) -> Persona:
    web = rng.random() < 0.7
    app = rng.random() < 0.3
    return Persona(
        web_sessions=int(rng.expovariate(1 / 6)) if web else 0,
        app_sessions=int(rng.expovariate(1 / 7)) if app else 0,
        store_purchases=int(rng.expovariate(1 / 3.5)) + (1 if rng.random() < 0.8 else 0),
        calls=1 if rng.random() < 0.12 else 0,
        email_opens=int(rng.expovariate(1 / 3)) if rng.random() < 0.5 else 0,
        web_account=web and rng.random() < 0.75,
        scans_loyalty_card=customer["customer_number"] is not None and rng.random() < 0.85,
    )


def _moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    seconds = max((end - start).total_seconds(), 60.0)
    at = start + timedelta(seconds=rng.random() * seconds)
    # Shops and sites are busiest from 10:00 to 20:00 (local time is about UTC+1).
    return at.replace(hour=rng.choice((9, 10, 11, 12, 13, 14, 15, 16, 17, 17, 18, 18, 19)))


def _basket(run: DemoRun, chosen: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], int]:
    """A basket of one to three products; `chosen` (one the customer looked at) first."""
    rng = run.rng
    lines = []
    total = 0
    picked = rng.sample(run.products, min(len(run.products), rng.choice((1, 1, 2, 3))))
    if chosen is not None:
        picked = [chosen, *(p for p in picked if p["sku"] != chosen["sku"])][: max(len(picked), 1)]
    for product in picked:
        quantity = 1 if rng.random() < 0.85 else 2
        lines.append(
            {
                "product_id": product["product_id"],
                "sku": product["sku"],
                "category": product["category"],
                "name": product["name"],
                "price": product["price"] / 100,
                "quantity": quantity,
            }
        )
        total += product["price"] * quantity
    return lines, total


def _order(
    run: DemoRun, order_id: str, fulfilment: str, chosen: dict[str, Any] | None = None
) -> dict[str, Any]:
    lines, total = _basket(run, chosen)
    return {
        "order_id": order_id,
        "total": total / 100,
        "revenue": total / 100,
        "currency": "EUR",
        "products": lines,
        "fulfilment": fulfilment,
    }


def _product(run: DemoRun, product: dict[str, Any] | None = None) -> dict[str, Any]:
    """The properties of a product event (a random product unless one is given)."""
    product = product or run.rng.choice(run.products)
    return {
        "product_id": product["product_id"],
        "sku": product["sku"],
        "category": product["category"],
        "name": product["name"],
        "price": product["price"] / 100,
        "currency": "EUR",
    }


def _identify_traits(customer: dict[str, Any], email: str | None) -> dict[str, Any]:
    traits: dict[str, Any] = {
        "firstName": customer["first_name"],
        "lastName": customer["last_name"],
    }
    if email:
        traits["email"] = email
    if customer["customer_number"]:
        traits["customer_number"] = customer["customer_number"]
    if customer["birth_date"]:
        traits["birthday"] = customer["birth_date"].isoformat()
    traits["address"] = {"postalCode": customer["postcode"]}
    return traits


def _web_session(
    stream: _Stream,
    at: datetime,
    channel: str,
    ids: dict[str, str],
    store_ids: list[str],
    device_id: str | None = None,
) -> None:
    """One browsing session: search, views, maybe a cart and an order."""
    run, rng = stream.run, stream.run.rng
    extra: dict[str, Any] = {} if device_id is None else {"device_id": device_id}
    page_kind = "screen" if channel == "app" else "page"
    context: dict[str, Any] = {}
    if channel == "web":
        referrer = rng.choice(REFERRERS)
        context["page"] = {"path": "/", "referrer": referrer}
        if rng.random() < 0.2:
            context["campaign"] = rng.choice(CAMPAIGNS)
    stream.add(page_kind, at, channel, ids, name="Home", context=context, **extra)
    if rng.random() < 0.3:
        return  # a bounce: one page and gone
    at += timedelta(seconds=rng.randint(5, 60))
    if rng.random() < 0.4:
        props = {"query": rng.choice(SEARCHES)}
        stream.add("track", at, channel, ids, event="Products Searched", properties=props, **extra)
    viewed = chosen = None
    for _ in range(rng.randint(1, 4)):
        at += timedelta(seconds=rng.randint(10, 120))
        chosen = rng.choice(run.products)
        viewed = _product(run, chosen)
        stream.add("track", at, channel, ids, event="Product Viewed", properties=viewed, **extra)
    if rng.random() < 0.15:
        at += timedelta(seconds=rng.randint(10, 90))
        props = {"store_id": rng.choice(store_ids)}
        stream.add(
            "track", at, channel, ids, event="Store Locator Searched", properties=props, **extra
        )
    if viewed is None or rng.random() > 0.3:
        return
    at += timedelta(seconds=rng.randint(10, 90))
    stream.add("track", at, channel, ids, event="Product Added", properties=viewed, **extra)
    if rng.random() > 0.5:
        return  # an abandoned cart
    at += timedelta(seconds=rng.randint(30, 300))
    stream.add("track", at, channel, ids, event="Checkout Started", properties={}, **extra)
    if rng.random() > 0.6:
        return
    at += timedelta(seconds=rng.randint(60, 600))
    mode = _online_mode(run, at)
    order = _order(run, f"{channel[0].upper()}{stream.counter[0]:09d}", mode, chosen)
    if mode != "home_delivery":
        home = stream.customer["preferred_store_id"] if stream.customer else None
        store = str(home) if home and rng.random() < 0.7 else rng.choice(store_ids)
        offered = next(s["services"] for s in run.stores if str(s["id"]) == store)
        order["fulfilment"] = mode if mode in offered else "click_and_collect"
        order["store_id"] = store
    stream.add("track", at, channel, ids, event="Order Completed", properties=order, **extra)


def _online_mode(run: DemoRun, at: datetime) -> str:
    """How an online order is fulfilled: click & collect and drive grow over the two years
    (from 25 % to 40 % and from 2 % to 12 % of orders), home delivery gives way."""
    start = run.now - timedelta(days=HISTORY_DAYS)
    progress = min(max((at - start) / timedelta(days=HISTORY_DAYS), 0.0), 1.0)
    draw = run.rng.random()
    for mode, share in (
        ("click_and_collect", 0.25 + 0.15 * progress),
        ("drive", 0.02 + 0.10 * progress),
        ("reserve_in_store", 0.04),
        ("ship_from_store", 0.05),
    ):
        if draw < share:
            return mode
        draw -= share
    return "home_delivery"


def _customer_activity(
    stream: _Stream, customer: dict[str, Any], persona: Persona, index: int, store_ids: list[str]
) -> None:
    run, rng = stream.run, stream.run.rng
    stream.customer = customer
    start = max(customer["created_at"], run.now - timedelta(days=HISTORY_DAYS))
    end = run.now - timedelta(hours=1)
    user_id = f"u{index:07d}" if persona.web_account else None
    email = customer["email"]
    if rng.random() < 0.01:
        email = "test@test.com"  # typed to get past a form: a blocked value
    browser = f"web-{rng.getrandbits(64):016x}"
    for session in range(persona.web_sessions):
        at = _moment(rng, start, end)
        ids = {"anonymousId": browser if rng.random() < 0.8 else f"web-{rng.getrandbits(64):016x}"}
        if user_id and rng.random() < 0.55:
            ids["userId"] = user_id
            if session == 0 or rng.random() < 0.2:
                stream.add("identify", at, "web", ids, traits=_identify_traits(customer, email))
        _web_session(stream, at, "web", ids, store_ids)
    device = f"dev-{rng.getrandbits(48):012x}"
    app_anonymous = f"app-{rng.getrandbits(64):016x}"
    for session in range(persona.app_sessions):
        at = _moment(rng, start, end)
        ids = {"anonymousId": app_anonymous}
        if user_id and rng.random() < 0.9:
            ids["userId"] = user_id
            if session == 0:
                stream.add(
                    "identify",
                    at,
                    "app",
                    ids,
                    traits=_identify_traits(customer, email),
                    device_id=device,
                )
        _web_session(stream, at, "app", ids, store_ids, device_id=device)
    home = str(customer["preferred_store_id"])
    app_ids = {"anonymousId": app_anonymous, **({"userId": user_id} if user_id else {})}
    for _ in range(persona.store_purchases // 2 if persona.app_sessions else 0):
        # The app notices a visit that ends without a purchase (store geofence).
        store = home if rng.random() < 0.8 else rng.choice(store_ids)
        at = _moment(rng, start, end)
        _store_visit(stream, at, app_ids, store, device)
    for _ in range(persona.store_purchases):
        at = _moment(rng, start, end)
        store = home if rng.random() < 0.8 else rng.choice(store_ids)
        if persona.app_sessions and rng.random() < 0.6:
            _store_visit(stream, at - timedelta(minutes=rng.randint(5, 40)), app_ids, store, device)
        researched = None
        if user_id and persona.web_sessions and rng.random() < 0.35:
            # Research online, purchase offline: the product was looked at on the web first.
            researched = rng.choice(run.products)
            seen = at - timedelta(days=rng.randint(1, 6), minutes=rng.randint(0, 600))
            web_ids = {"anonymousId": browser, "userId": user_id}
            stream.add(
                "track", seen, "web", web_ids, event="Product Viewed",
                properties=_product(run, researched),
            )  # fmt: skip
        receipt = f"pos-{stream.counter[0] + 1:010d}"
        ids = {"anonymousId": receipt}
        if persona.scans_loyalty_card:
            traits = {"customer_number": customer["customer_number"]}
            stream.add("identify", at, "store", ids, traits=traits, store_id=store)
        elif rng.random() < 0.35:  # an e-receipt by email
            stream.add("identify", at, "store", ids, traits={"email": email}, store_id=store)
        order = _order(run, receipt.upper(), "carry_out", researched)
        order["payment_method"] = rng.choice(("card", "card", "card", "cash", "gift_card"))
        stream.add(
            "track", at, "store", ids, event="Order Completed", properties=order, store_id=store
        )
    for _ in range(persona.calls):
        if not customer["phone"]:
            break
        at = _moment(rng, start, end)
        ids = {"anonymousId": f"call-{stream.counter[0] + 1:010d}"}
        stream.add("identify", at, "call_centre", ids, traits={"phone": customer["phone"]})
        props = {"reason": rng.choice(CALL_REASONS), "duration_s": rng.randint(60, 900)}
        stream.add("track", at, "call_centre", ids, event="Call Completed", properties=props)
        if rng.random() < 0.3:
            order = _order(run, f"CC{stream.counter[0]:09d}", "home_delivery")
            stream.add("track", at, "call_centre", ids, event="Order Completed", properties=order)
    if user_id:
        for _ in range(persona.email_opens):
            at = _moment(rng, start, end)
            props = {"campaign_id": rng.choice(CAMPAIGNS)["name"]}
            stream.add(
                "track", at, "email", {"userId": user_id}, event="Email Opened", properties=props
            )


def _store_visit(
    stream: _Stream, at: datetime, ids: dict[str, str], store: str, device: str
) -> None:
    """A visit to a store, seen by the app when the customer walks in."""
    props = {"store_id": store, "detected_by": "geofence"}
    stream.add(
        "track",
        at,
        "store",
        ids,
        event="Store Visited",
        properties=props,
        store_id=store,
        device_id=device,
    )


def _second_account(stream: _Stream, customer: dict[str, Any], index: int) -> None:
    """The same person opened another web account with another email: no shared key."""
    rng = stream.run.rng
    at = _moment(rng, customer["created_at"], stream.run.now - timedelta(hours=1))
    ids = {"userId": f"u-second-{index:07d}", "anonymousId": f"web-{rng.getrandbits(64):016x}"}
    traits = _identify_traits({**customer, "customer_number": None}, None)
    local = f"{customer['first_name']}.{customer['last_name']}".lower().replace(" ", "")
    traits["email"] = f"{local}.{rng.randrange(100, 999)}@second.example"
    stream.add("identify", at, "web", ids, traits=traits)


def _shared_identifier(
    stream: _Stream, customer: dict[str, Any], partner: dict[str, Any], index: int
) -> None:
    """A household: one person logs in with the partner's email or phone."""
    rng = stream.run.rng
    at = _moment(rng, customer["created_at"], stream.run.now - timedelta(hours=1))
    ids = {"userId": f"u{index:07d}", "anonymousId": f"web-{rng.getrandbits(64):016x}"}
    if rng.random() < 0.5 or not partner["phone"]:
        traits: dict[str, Any] = {"email": partner["email"]}
    else:
        traits = {"phone": partner["phone"]}
    stream.add("identify", at, "web", ids, traits=traits)


def _anonymous_visits(stream: _Stream, count: int, store_ids: list[str]) -> None:
    rng, run = stream.run.rng, stream.run
    stream.customer = None
    for _ in range(count):
        at = _moment(rng, run.now - timedelta(days=HISTORY_DAYS), run.now - timedelta(hours=1))
        channel = "web" if rng.random() < 0.8 else "app"
        ids = {"anonymousId": f"{channel}-{rng.getrandbits(64):016x}"}
        _web_session(stream, at, channel, ids, store_ids)


def _chunks(run: DemoRun) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    for start in range(0, len(run.customers), CHUNK):
        yield start, run.customers[start : start + CHUNK]


def generate_activity(run: DemoRun) -> None:
    """Send every customer's history through the tracking ingestion, chunk by chunk."""
    rng = run.rng
    store_ids = [str(s["id"]) for s in run.stores if s["kind"] == "store"]
    counter = [0]
    total_events = 0
    for start, chunk in _chunks(run):
        stream = _Stream(run, counter)
        for offset, customer in enumerate(chunk):
            index = start + offset
            _customer_activity(stream, customer, _persona(rng, customer), index, store_ids)
            draw = rng.random()
            if draw < 0.02:
                _second_account(stream, customer, index)
            elif draw < 0.05:
                _shared_identifier(stream, customer, rng.choice(run.customers), index)
        _anonymous_visits(stream, len(chunk) // 2, store_ids)
        stream.messages.sort(key=lambda message: message["timestamp"])
        with run.db.transaction() as session:
            for first in range(0, len(stream.messages), BATCH):
                result = customers.ingest_messages(
                    session, run.now, stream.messages[first : first + BATCH]
                )
                if result.rejected:  # the generator's own bug: say which and stop
                    raise RuntimeError(f"demo events refused: {result.rejected[:3]}")
        total_events += len(stream.messages)
        run.progress("activity", start + len(chunk), len(run.customers))
    run.counts["events"] = total_events
