"""Delivery options of a cart: what each way of getting the goods costs, when it is
promised, and whether stock allows it (and if not, why).

- **home delivery**: from a warehouse (or a ship-from-store store when warehouses lack
  stock); a flat fee, free from `FREE_DELIVERY_FROM`; promised in 2 working days;
- **click & collect**: free, at a store offering it; ready `preparation_minutes` after
  the order when the store is open long enough, else that long after it next opens;
- **reserve in store**: free, paid in store, held `reserve_hold_days` once ready;
- **drive**: free, in a time slot of the store's drive (slots are created lazily from
  `drive_slot_minutes`/`drive_slot_capacity` within opening hours; booking one is one
  conditional UPDATE, `booked < capacity`);
- **ship from store**: a store's stock sent as a parcel, within its `daily_ship_capacity`
  (one conditional write on `ShipCapacityUse`).

Availability comes from available-to-promise per location (the same figures routing
and checkout use), so an option shown possible is one checkout can honour unless
someone else takes the last units first.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from parcours import stores
from parcours.core.errors import Conflict, FieldError, InvalidInput
from parcours.core.geo import GeoPoint, haversine_km
from parcours.orders.carts import PricedCart
from parcours.orders.models import DriveSlot, FulfilmentSettings, ShipCapacityUse
from parcours.orders.routing import Need, Network, Plan, Site, route

HOME_DELIVERY_FEE = 490  # cents, VAT included
FREE_DELIVERY_FROM = 6_000  # cents: carts from 60 € ship free
SHIP_FROM_STORE_FEE = 490
HOME_DELIVERY_WORKING_DAYS = 2
DELIVERY_ZONE = "Europe/Paris"
DELIVERED_BY = time(19, 0)  # promised by the evening of the day
DRIVE_DAYS_AHEAD = 3
MAX_PICKUP_STORES = 5
MODES_OFFERED = (
    "home_delivery",
    "click_and_collect",
    "reserve_in_store",
    "drive",
    "ship_from_store",
)


@dataclass(frozen=True)
class StoreSettings:
    """A store's fulfilment settings, the model's defaults when it has no row."""

    preparation_minutes: int = 120
    reserve_hold_days: int = 3
    pickup_hold_days: int = 10
    daily_ship_capacity: int = 0
    drive_slot_minutes: int = 30
    drive_slot_capacity: int = 0


@dataclass(frozen=True)
class SlotView:
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    left: int


@dataclass
class DeliveryOption:
    mode: str
    available: bool
    cost: int  # cents, VAT included
    currency: str
    promised_at: datetime | None = None  # delivered by / ready by (UTC)
    hold_until: datetime | None = None  # reserve in store: held until
    store_id: uuid.UUID | None = None
    store_code: str | None = None
    store_name: str | None = None
    distance_km: float | None = None
    why_not: str | None = None
    slots: list[SlotView] = field(default_factory=list)
    plan: Plan | None = None


# ------------------------------------------------------------------ settings


def store_settings(
    session: Session, store_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, StoreSettings]:
    """Settings of many stores in one query (defaults for stores without a row)."""
    out = {sid: StoreSettings() for sid in store_ids}
    if not store_ids:
        return out
    for row in session.scalars(
        select(FulfilmentSettings).where(FulfilmentSettings.store_id.in_(list(store_ids)))
    ):
        out[row.store_id] = StoreSettings(
            row.preparation_minutes,
            row.reserve_hold_days,
            row.pickup_hold_days,
            row.daily_ship_capacity,
            row.drive_slot_minutes,
            row.drive_slot_capacity,
        )
    return out


def configure_store(
    session: Session, now: datetime, store_id: uuid.UUID, **values: int
) -> StoreSettings:
    """Create or change a store's fulfilment settings (unknown names are refused)."""
    allowed = set(StoreSettings.__dataclass_fields__)
    bad = [FieldError("unknown setting", f"#/{k}") for k in values if k not in allowed]
    bad += [
        FieldError("must be a whole number from 0", f"#/{k}")
        for k, v in values.items()
        if k in allowed and (isinstance(v, bool) or not isinstance(v, int) or v < 0)
    ]
    if bad:
        raise InvalidInput("The fulfilment settings are invalid.", bad)
    stores.get_store(session, store_id)
    row = session.get(FulfilmentSettings, store_id)
    if row is None:
        row = FulfilmentSettings(store_id=store_id, **{**StoreSettings().__dict__, **values})
        session.add(row)
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = now
    session.flush()
    return store_settings(session, [store_id])[store_id]


# ------------------------------------------------------------------ promised times


def working_days_later(now: datetime, days: int, zone: str = DELIVERY_ZONE) -> datetime:
    """`days` working days (Monday to Friday) after `now`'s local date, at 19:00 (UTC)."""
    local = now.astimezone(ZoneInfo(zone)).date()
    while days:
        local += timedelta(days=1)
        if local.weekday() < 5:
            days -= 1
    return datetime.combine(local, DELIVERED_BY, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def ready_by(
    schedule: stores.OpeningSchedule, now: datetime, preparation_minutes: int
) -> datetime | None:
    """When an order placed `now` is ready at the store: `preparation_minutes` later if
    the store is open until then, else that long after it next opens (None: it never
    opens again)."""
    prep = timedelta(minutes=preparation_minutes)
    closing = stores.closes_at(schedule, now)
    if closing is not None and now + prep <= closing:
        return now + prep
    opening = stores.next_opening(schedule, now)
    return None if opening is None else opening + prep


def _schedule(session: Session, store_id: uuid.UUID, now: datetime) -> stores.OpeningSchedule:
    return stores.opening_schedule(session, stores.get_store(session, store_id), now)


# ------------------------------------------------------------------ drive slots


def _insert_ignore(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def ensure_slots(
    session: Session,
    now: datetime,
    store_id: uuid.UUID,
    schedule: stores.OpeningSchedule,
    settings: StoreSettings,
    earliest: datetime,
    days: int = DRIVE_DAYS_AHEAD,
) -> list[SlotView]:
    """The drive slots of a store from `earliest` over `days` local days, created on first
    sight from its settings (inserting a slot twice is harmless), with places left."""
    if settings.drive_slot_capacity <= 0 or settings.drive_slot_minutes <= 0:
        return []
    step = timedelta(minutes=settings.drive_slot_minutes)
    zone = ZoneInfo(schedule.timezone)
    first_day = earliest.astimezone(zone).date()
    rows = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for opens, closes in schedule.ranges_on(day):
            start = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
            end = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
            while start + step <= end:
                if start >= earliest:
                    rows.append((start, start + step))
                start += step
    if not rows:
        return []
    insert = _insert_ignore(session)
    session.execute(
        insert(DriveSlot)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "store_id": store_id,
                    "starts_at": s,
                    "ends_at": e,
                    "capacity": settings.drive_slot_capacity,
                    "booked": 0,
                }
                for s, e in rows
            ]
        )
        .on_conflict_do_nothing(index_elements=["store_id", "starts_at"])
    )
    found = session.execute(
        select(
            DriveSlot.id,
            DriveSlot.starts_at,
            DriveSlot.ends_at,
            DriveSlot.capacity,
            DriveSlot.booked,
        )
        .where(
            DriveSlot.store_id == store_id,
            DriveSlot.starts_at >= rows[0][0],
            DriveSlot.starts_at <= rows[-1][0],
        )
        .order_by(DriveSlot.starts_at)
    )
    return [SlotView(r.id, r.starts_at, r.ends_at, r.capacity - r.booked) for r in found]


def book_slot(session: Session, store_id: uuid.UUID, slot_id: uuid.UUID) -> DriveSlot:
    """Take one place in a drive slot: one conditional UPDATE; `Conflict` when full."""
    row = session.execute(
        update(DriveSlot)
        .where(
            DriveSlot.id == slot_id,
            DriveSlot.store_id == store_id,
            DriveSlot.booked < DriveSlot.capacity,
        )
        .values(booked=DriveSlot.booked + 1)
        .returning(DriveSlot.id)
    ).first()
    if row is None:
        slot = session.get(DriveSlot, slot_id)
        if slot is None or slot.store_id != store_id:
            raise InvalidInput(
                "This drive slot does not exist at that store.",
                [FieldError("unknown slot", "#/slot_id")],
            )
        raise Conflict(
            f"The drive slot at {slot.starts_at.isoformat()} is full ({slot.capacity} orders); "
            "choose another slot.",
            slot_id=str(slot_id),
            capacity=slot.capacity,
        )
    slot = session.get(DriveSlot, slot_id, populate_existing=True)
    assert slot is not None
    return slot


# ------------------------------------------------------------------ ship-from-store capacity


def local_day(now: datetime, zone: str = DELIVERY_ZONE) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def ship_capacity_left(
    session: Session, now: datetime, settings: Mapping[uuid.UUID, StoreSettings]
) -> dict[uuid.UUID, int]:
    """Parcels each store may still send today (one query)."""
    ids = list(settings)
    used: dict[uuid.UUID, int] = {}
    if ids:
        used = dict(
            session.execute(
                select(ShipCapacityUse.store_id, ShipCapacityUse.used).where(
                    ShipCapacityUse.store_id.in_(ids), ShipCapacityUse.day == local_day(now)
                )
            ).all()
        )
    return {sid: max(0, s.daily_ship_capacity - used.get(sid, 0)) for sid, s in settings.items()}


def take_ship_capacity(session: Session, now: datetime, store_id: uuid.UUID, capacity: int) -> None:
    """Count one parcel against the store's day: a conditional write, `Conflict` when the
    store already took `capacity` parcels today."""
    day = local_day(now)
    insert = _insert_ignore(session)
    session.execute(
        insert(ShipCapacityUse)
        .values(store_id=store_id, day=day, used=0)
        .on_conflict_do_nothing(index_elements=["store_id", "day"])
    )
    row = session.execute(
        update(ShipCapacityUse)
        .where(
            ShipCapacityUse.store_id == store_id,
            ShipCapacityUse.day == day,
            ShipCapacityUse.used < capacity,
        )
        .values(used=ShipCapacityUse.used + 1)
        .returning(ShipCapacityUse.used)
    ).first()
    if row is None:
        raise Conflict(
            f"The store has sent its {capacity} ship-from-store parcels for today.",
            store_id=str(store_id),
            capacity=capacity,
        )


# ------------------------------------------------------------------ options


def home_fee(priced: PricedCart) -> int:
    """The home delivery fee in cents: none from `FREE_DELIVERY_FROM` or when a
    promotion waives it."""
    return 0 if priced.free_delivery or priced.total >= FREE_DELIVERY_FROM else HOME_DELIVERY_FEE


def ship_from_store_fee(priced: PricedCart) -> int:
    """The ship-from-store fee in cents (none when a promotion waives delivery)."""
    return 0 if priced.free_delivery else SHIP_FROM_STORE_FEE


def _needs(priced: PricedCart) -> list[Need]:
    return [Need(line.sku, line.quantity) for line in priced.lines]


def _why_not(plan: Plan) -> str:
    return "; ".join(s.message() for s in plan.shortages) or "no location can send it"


def home_delivery_option(
    priced: PricedCart, network: Network, now: datetime, place: GeoPoint | None
) -> DeliveryOption:
    plan = route("home_delivery", _needs(priced), network, place)
    option = DeliveryOption(
        "home_delivery", plan.possible, home_fee(priced), priced.currency, plan=plan
    )
    if plan.possible:
        option.promised_at = working_days_later(now, HOME_DELIVERY_WORKING_DAYS)
    else:
        option.why_not = _why_not(plan)
    return option


def pickup_option(
    session: Session,
    mode: str,
    priced: PricedCart,
    network: Network,
    now: datetime,
    site: Site,
    settings: StoreSettings,
    place: GeoPoint | None,
    schedules: dict[uuid.UUID, stores.OpeningSchedule] | None = None,
) -> DeliveryOption:
    """Click & collect, reserve in store or drive at one store (`schedules` keeps the
    stores' opening schedules between the three modes: two queries per store)."""
    plan = route(mode, _needs(priced), network, store_id=site.id)
    option = DeliveryOption(
        mode,
        False,
        0,
        priced.currency,
        store_id=site.id,
        store_code=site.code,
        store_name=site.name,
        distance_km=None if place is None else round(haversine_km(place, site.point), 1),
        plan=plan,
    )
    if mode not in site.services:
        option.why_not = f"{site.code} does not offer {mode.replace('_', ' ')}"
        return option
    if mode == "drive" and settings.drive_slot_capacity <= 0:
        option.why_not = f"{site.code} has no drive slots set up"
        return option
    if not plan.possible:
        option.why_not = _why_not(plan)
        return option
    schedules = {} if schedules is None else schedules
    if site.id not in schedules:
        schedules[site.id] = _schedule(session, site.id, now)
    schedule = schedules[site.id]
    ready = ready_by(schedule, now, settings.preparation_minutes)
    if ready is None:
        option.why_not = f"{site.code} has no opening hours ahead"
        return option
    option.promised_at = ready
    if mode == "reserve_in_store":
        option.hold_until = ready + timedelta(days=settings.reserve_hold_days)
    if mode == "drive":
        option.slots = [
            s for s in ensure_slots(session, now, site.id, schedule, settings, ready) if s.left > 0
        ]
        if not option.slots:
            option.why_not = (
                f"no drive slot left at {site.code} in the next {DRIVE_DAYS_AHEAD} days"
            )
            return option
        option.promised_at = option.slots[0].starts_at
    option.available = True
    return option


def ship_from_store_option(
    priced: PricedCart, network: Network, now: datetime, place: GeoPoint | None
) -> DeliveryOption:
    plan = route("ship_from_store", _needs(priced), network, place)
    option = DeliveryOption(
        "ship_from_store", plan.possible, ship_from_store_fee(priced), priced.currency, plan=plan
    )
    if not plan.shipments and not plan.shortages:
        option.why_not = "no store offering ship from store has parcel capacity left near you"
    elif not plan.possible:
        option.why_not = _why_not(plan)
    else:
        option.promised_at = working_days_later(now, HOME_DELIVERY_WORKING_DAYS)
        site = plan.shipments[0].site
        option.store_id, option.store_code, option.store_name = site.id, site.code, site.name
    return option


def pickup_stores(
    network: Network, place: GeoPoint | None, store_id: uuid.UUID | None
) -> list[Site]:
    """The stores to offer pickups at: the one asked for, else the nearest ones (all
    stores by code when the customer gave no place)."""
    shops = [s for s in network.sites.values() if s.kind == "store"]
    if store_id is not None:
        return [s for s in shops if s.id == store_id]
    if place is None:
        return sorted(shops, key=lambda s: s.code)[:MAX_PICKUP_STORES]
    return sorted(shops, key=lambda s: haversine_km(place, s.point))[:MAX_PICKUP_STORES]


def delivery_options(
    session: Session,
    now: datetime,
    priced: PricedCart,
    network: Network,
    place: GeoPoint | None = None,
    store_id: uuid.UUID | None = None,
) -> list[DeliveryOption]:
    """Every option for the priced cart: home delivery, then per nearby store click &
    collect, reserve in store and drive, then ship from store."""
    if not priced.lines:
        raise Conflict("The cart is empty: add something before choosing a delivery.")
    settings = store_settings(session, [s.id for s in network.sites.values() if s.kind == "store"])
    left = ship_capacity_left(session, now, settings)
    network = Network(
        network.stock,
        {
            sid: Site(s.id, s.code, s.name, s.kind, s.lat, s.lon, s.services, left.get(sid))
            for sid, s in network.sites.items()
        },
    )
    options = [home_delivery_option(priced, network, now, place)]
    schedules: dict[uuid.UUID, stores.OpeningSchedule] = {}
    for site in pickup_stores(network, place, store_id):
        for mode in ("click_and_collect", "reserve_in_store", "drive"):
            options.append(
                pickup_option(
                    session, mode, priced, network, now, site, settings[site.id], place, schedules
                )
            )
    options.append(ship_from_store_option(priced, network, now, place))
    return options
