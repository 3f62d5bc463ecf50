"""A synthetic French retailer, deterministic from a seed.

Each capability adds a step to `STEPS`, so the demo always shows everything that
exists. Steps draw from one seeded `random.Random` in a fixed order; ids are UUIDv7
stamped with the simulated creation time, so they too are the same for a seed.
"""

from __future__ import annotations

import random
import time
import unicodedata
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from faker import Faker

from parcours import customers, stores
from parcours.core import auth
from parcours.core.audit import CLI_ACTOR
from parcours.core.db import Database
from parcours.core.errors import Conflict
from parcours.core.ids import id_at
from parcours.core.settings import Settings
from parcours.demo.activation import generate_activation
from parcours.demo.activity import generate_activity
from parcours.demo.catalog import generate_catalog
from parcours.demo.cities import City, french_cities
from parcours.demo.footfall import generate_footfall
from parcours.demo.holidays import december_sundays_before_christmas, french_public_holidays
from parcours.demo.inventory import generate_inventory
from parcours.demo.orders import generate_orders

BRAND = "Maison Lavande"
DEMO_PASSWORD = "parcours-demo"  # noqa: S105  (documented demo login, demo data only)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "courriel.example")
BATCH = 5_000


@dataclass(frozen=True)
class DemoSize:
    stores: int
    warehouses: int
    customers: int


SIZES = {
    "tiny": DemoSize(stores=4, warehouses=1, customers=300),  # tests and a first look
    "small": DemoSize(stores=12, warehouses=1, customers=2_000),
    "medium": DemoSize(stores=60, warehouses=2, customers=50_000),
    "large": DemoSize(stores=150, warehouses=3, customers=500_000),
}

Progress = Callable[[str, int, int], None]


@dataclass
class DemoRun:
    """Shared state of one generation: the seed's random source and what exists so far."""

    db: Database
    seed: int
    size: DemoSize
    now: datetime
    progress: Progress
    settings: Settings | None = None  # where the demo's e-mails go (None: the environment's)
    rng: random.Random = field(init=False)
    faker: Faker = field(init=False)
    stores: list[dict[str, Any]] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    # For the activity step: one dict per variant (sku, product_id, category, name, price
    # in cents) and per customer (id, email, phone, customer_number, store, created_at).
    products: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    # For the orders step: each `Order Completed` the activity sent (time, channel, store,
    # customer, properties), stored as an order with its fulfilment, payment and returns.
    orders: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.faker = Faker("fr_FR")
        self.faker.seed_instance(self.seed)

    @property
    def size_name(self) -> str:
        return next((name for name, size in SIZES.items() if size == self.size), "small")

    @property
    def history_start(self) -> datetime:
        return self.now - timedelta(days=3 * 365)

    def id_at(self, at: datetime) -> uuid.UUID:
        return id_at(int(at.timestamp() * 1000), self.rng.getrandbits(74))


# ------------------------------------------------------------------ stores


def _opening_hours(rng: random.Random, big_city: bool) -> dict[str, list[list[str]]]:
    weekday = [["10:00", "19:30"]] if big_city else [["09:30", "12:30"], ["14:00", "19:00"]]
    hours: dict[str, list[list[str]]] = dict.fromkeys(("tue", "wed", "thu", "fri"), weekday)
    hours["mon"] = [["14:00", "19:00"]] if rng.random() < 0.4 else weekday
    hours["sat"] = [["09:30", "19:30"]]
    hours["sun"] = [["10:00", "13:00"]] if big_city and rng.random() < 0.5 else []
    return hours


def _store_services(rng: random.Random, big_city: bool) -> list[str]:
    services = ["click_and_collect", "reserve_in_store", "returns"]
    if big_city or rng.random() < 0.4:
        services.append("ship_from_store")
    if not big_city and rng.random() < 0.5:
        services.append("drive")
    if rng.random() < 0.3:
        services.append("after_sales")
    return services


def _place_stores(run: DemoRun) -> list[tuple[City, int]]:
    """Which cities get stores: the largest first, big cities several."""
    cities = list(french_cities())
    placed: list[tuple[City, int]] = []
    rounds = 0
    while len(placed) < run.size.stores:
        for city in cities:
            if len(placed) >= run.size.stores:
                break
            # A second store only in cities of 250k+, a third in 500k+.
            if rounds == 0 or city.population > 250_000 * rounds:
                placed.append((city, rounds + 1))
        rounds += 1
    return placed


EMAIL_BRAND = "maison-lavande.example"
CHRISTMAS_SUNDAY = [["10:00", "19:00"]]
ExceptionDay = tuple[date, list[list[str]], str]  # local date, hours (none: closed), label


def _store_exceptions(run: DemoRun, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exceptions to every store's hours: the public holidays of each year of the history
    and of the next one (closed), and the December Sundays before Christmas (open all day)
    for the stores that open on Sundays."""
    closures: dict[date, str] = {}
    sundays: list[date] = []
    for year in range(run.history_start.year, run.now.year + 2):
        closures |= french_public_holidays(year)
        sundays += december_sundays_before_christmas(year)
    closed: list[ExceptionDay] = [(day, [], label) for day, label in sorted(closures.items())]
    christmas: list[ExceptionDay] = [
        (day, CHRISTMAS_SUNDAY, "Ouverture dominicale de Noël") for day in sundays
    ]
    exceptions: list[dict[str, Any]] = []
    for row in rows:
        days = list(closed)
        if row["kind"] == "store" and row["opening_hours"].get("sun"):
            days += christmas
        exceptions += [
            {
                "id": run.id_at(datetime.combine(day, datetime.min.time(), UTC)),
                "store_id": row["id"],
                "day": day,
                "hours": hours,
                "label": label,
            }
            for day, hours, label in days
        ]
    return exceptions


def generate_stores(run: DemoRun) -> None:
    rows = []
    opened = run.history_start - timedelta(days=365)
    for city, number in _place_stores(run):
        big = city.population > 150_000
        # Extra stores in a city sit a few km from its centre.
        jitter = 0.0 if number == 1 else 0.02
        suffix = "" if number == 1 else f" {number}"
        rows.append(
            {
                "id": run.id_at(opened),
                "code": f"{_slug(city.name)[:3].upper()}-{city.insee}-{number}",
                "name": f"{BRAND} {city.name}{suffix}",
                "kind": "store",
                "address": run.faker.street_address(),
                "postcode": city.postcode,
                "city": city.name,
                "lat": round(city.lat + run.rng.uniform(-jitter, jitter), 5),
                "lon": round(city.lon + run.rng.uniform(-jitter, jitter), 5),
                "timezone": city.timezone,
                "phone": _phone(run.rng, landline=True),
                "email": f"{_slug(city.name)}{'' if number == 1 else f'-{number}'}@{EMAIL_BRAND}",
                "opening_hours": _opening_hours(run.rng, big),
                "services": _store_services(run.rng, big),
            }
        )
    metropolitan = [c for c in french_cities() if c.timezone == "Europe/Paris"]
    for index in range(run.size.warehouses):
        city = metropolitan[(index * 7 + 3) % len(metropolitan)]
        rows.append(
            {
                "id": run.id_at(opened),
                "code": f"WH-{index + 1:02d}",
                "name": f"{BRAND} entrepôt {city.name}",
                "kind": "warehouse",
                "address": run.faker.street_address(),
                "postcode": city.postcode,
                "city": city.name,
                "lat": city.lat,
                "lon": city.lon,
                "timezone": city.timezone,
                "email": f"entrepot-{index + 1:02d}@{EMAIL_BRAND}",
                "opening_hours": {},
                "services": ["ship_from_store"],
            }
        )
    exceptions = _store_exceptions(run, rows)
    with run.db.transaction() as session:
        stores.add_stores(session, run.now, rows)
        stores.add_exceptions(session, exceptions)
    run.stores = rows
    run.counts["stores"] = len(rows)
    run.counts["store_exceptions"] = len(exceptions)
    run.progress("stores", len(rows), len(rows))


# ------------------------------------------------------------------ customers


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum() or ch in ".-")


def _phone(rng: random.Random, landline: bool = False) -> str:
    lead = rng.choice("12345") if landline else rng.choice("67")
    return f"+33{lead}{rng.randrange(10**8):08d}"


def _signup_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    # More sign-ups recently: the square root skews draws towards the end.
    span = (end - start).total_seconds()
    return start + timedelta(seconds=span * rng.random() ** 0.6)


@dataclass
class _Pools:
    female: list[str]
    male: list[str]
    last: list[str]
    streets: list[str]


def _name_pools(faker: Faker) -> _Pools:
    # Drawing from pools is ~50x faster than asking Faker per customer, and as deterministic.
    return _Pools(
        female=list(dict.fromkeys(faker.first_name_female() for _ in range(600))),
        male=list(dict.fromkeys(faker.first_name_male() for _ in range(600))),
        last=list(dict.fromkeys(faker.last_name() for _ in range(3000))),
        streets=[faker.street_address() for _ in range(4000)],
    )


def _customer_number(rng: random.Random, taken: set[str]) -> str:
    # Drawn at random, so two customers could get the same one (likely at 50k): redraw.
    number = f"C{rng.randrange(10**9):09d}"
    while number in taken:
        number = f"C{rng.randrange(10**9):09d}"
    taken.add(number)
    return number


def _customer(
    run: DemoRun, pools: _Pools, store: dict[str, Any], taken: set[str]
) -> dict[str, Any]:
    rng = run.rng
    female = rng.random() < 0.56
    first = rng.choice(pools.female if female else pools.male)
    last = rng.choice(pools.last)
    local = f"{_slug(first)}.{_slug(last)}"
    email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
    while email in taken:
        email = f"{local}{rng.randrange(10, 9999)}@{rng.choice(EMAIL_DOMAINS)}"
    taken.add(email)
    created = _signup_time(rng, run.history_start, run.now)
    age = int(rng.triangular(18, 85, 38))
    birthday = date(run.now.year - age, rng.randint(1, 12), rng.randint(1, 28))
    return {
        "id": run.id_at(created),
        "customer_number": _customer_number(rng, taken) if rng.random() < 0.6 else None,
        "email": email,
        "phone": _phone(rng) if rng.random() < 0.85 else None,
        "first_name": first,
        "last_name": last,
        "birth_date": birthday if rng.random() < 0.7 else None,
        "address": rng.choice(pools.streets),
        "postcode": store["postcode"],
        "city": store["city"],
        "locale": "en" if rng.random() < 0.05 else "fr",
        "timezone": store["timezone"],
        "preferred_store_id": store["id"],
        "created_at": created,
        "updated_at": created,
    }


ACTIVITY_FIELDS = (
    "id",
    "email",
    "phone",
    "customer_number",
    "first_name",
    "last_name",
    "birth_date",
    "postcode",
    "preferred_store_id",
    "created_at",
    "locale",
)

CONSENT_SOURCES = (
    ("web_signup", "web sign-up form v3, unticked box ticked by the customer"),
    ("store_pos", "loyalty enrolment at the till, signed on the tablet"),
    ("app", "app onboarding screen 2, toggle switched on"),
    ("call_centre", "oral consent recorded by the call centre"),
)
CONSENT_RATES = {"email": 0.62, "sms": 0.38, "push": 0.27}


def _consents(run: DemoRun, customer: dict[str, Any]) -> list[dict[str, Any]]:
    rng = run.rng
    source, proof = rng.choice(CONSENT_SOURCES)
    at = customer["created_at"]
    rows = []
    for channel, rate in CONSENT_RATES.items():
        if channel == "sms" and customer["phone"] is None:
            continue
        rows.append({"channel": channel, "purpose": "marketing", "granted": rng.random() < rate})
    rows.append({"channel": "email", "purpose": "analytics", "granted": rng.random() < 0.7})
    return [
        {
            **row,
            "id": run.id_at(at),
            "customer_id": customer["id"],
            "at": at,
            "source": source,
            "proof": proof,
        }
        for row in rows
    ]


def generate_customers(run: DemoRun) -> None:
    pools = _name_pools(run.faker)
    selling = [s for s in run.stores if s["kind"] == "store"]
    weights = [1.0 / (1 + i) ** 0.5 for i in range(len(selling))]  # bigger cities first
    taken: set[str] = set()  # emails and customer numbers already handed out
    total = run.size.customers
    made = consents = 0
    while made < total:
        batch = [
            _customer(run, pools, run.rng.choices(selling, weights)[0], taken)
            for _ in range(min(BATCH, total - made))
        ]
        consent_rows = [row for c in batch for row in _consents(run, c)]
        with run.db.transaction() as session:
            customers.add_customers(session, run.now, batch)
            customers.add_consents(session, consent_rows)
        run.customers.extend({key: c[key] for key in ACTIVITY_FIELDS} for c in batch)
        made += len(batch)
        consents += len(consent_rows)
        run.progress("customers", made, total)
    run.counts["customers"] = made
    run.counts["consents"] = consents


# ------------------------------------------------------------------ console users


def generate_users(run: DemoRun) -> None:
    first_store = next(s for s in run.stores if s["kind"] == "store")
    with run.db.transaction() as session:
        now = run.now
        auth.create_user(session, now, CLI_ACTOR, "admin", DEMO_PASSWORD, "admin", "Camille Admin")
        auth.create_user(
            session, now, CLI_ACTOR, "marketing", DEMO_PASSWORD, "marketer", "Léa Marketing"
        )
        auth.create_user(
            session,
            now,
            CLI_ACTOR,
            "vendeur",
            DEMO_PASSWORD,
            "staff",
            "Hugo Vendeur",
            [first_store["code"]],
        )
    run.counts["users"] = 3
    run.progress("users", 3, 3)


STEPS: list[tuple[str, Callable[[DemoRun], None]]] = [
    ("stores", generate_stores),
    ("catalog", generate_catalog),
    ("inventory", generate_inventory),
    ("customers", generate_customers),
    ("activity", generate_activity),
    ("orders", generate_orders),
    ("footfall", generate_footfall),
    ("activation", generate_activation),
    ("users", generate_users),
]


def demo_is_present(db: Database) -> bool:
    with db.transaction() as session:
        return stores.count_stores(session) > 0 or customers.count_customers(session) > 0


def generate(
    db: Database,
    seed: int = 42,
    size: str = "small",
    now: datetime | None = None,
    progress: Progress | None = None,
    skip: Collection[str] = (),
    settings: Settings | None = None,
) -> dict[str, float]:
    """Fill an empty database with the demo retailer; returns counts and seconds.

    `skip` names steps to leave out (tests about one part skip the long history).
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}")
    if demo_is_present(db):
        raise Conflict(
            "The database already holds stores or customers; generate the demo into an "
            "empty database (e.g. set PARCOURS_DATA_DIR to a new folder)."
        )
    # Anchored at midnight so that the same seed gives the same data all day long.
    now = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    run = DemoRun(
        db, seed, SIZES[size], now, progress or (lambda step, done, total: None), settings
    )
    started = time.perf_counter()
    for name, step in STEPS:
        if name not in skip:
            step(run)
    return {**run.counts, "seconds": round(time.perf_counter() - started, 3)}
