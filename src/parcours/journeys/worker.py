"""What the worker does for journeys.

- `read_event_log`: reads the tracking log (customers' `events`, where order events
  arrive too) after its own cursor `journeys@events`: event and geo triggers enter
  people, exit events end instances, awaited events wake waiting instances.
- `journey_consumer`: reads the outbox for `Segment Entered` / `Segment Exited`
  (segments) and `Back In Stock` (inventory).
- `enter_date_triggers`: date traits (birthdays) at a local hour in each person's zone;
  the occurrence is the local date, so running it twice a day enters once.
- `run_due`: advances the instances whose `next_run_at` has come, in batches.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from parcours import customers, inventory, segments, stores
from parcours.core.clock import Clock, SystemClock
from parcours.core.db import Database
from parcours.core.events import Consumer, PeriodicJob
from parcours.core.geo import GeoPoint, haversine_km
from parcours.core.models import OutboxEvent
from parcours.journeys.definition import Definition, Trigger, parse
from parcours.journeys.engine import (
    Actions,
    Definitions,
    Entry,
    Run,
    advance,
    enter,
    exit_instances,
)
from parcours.journeys.log_cursor import events_cursor
from parcours.journeys.models import Journey, JourneyInstance, JourneyStepLog, JourneyVersion

CONSUMER_NAME = "journeys"
WINDOW = 20_000  # log positions read per pass
CHUNK = 2_000
DUE_BATCH = 500


@dataclass(frozen=True)
class LiveJourney:
    row: Journey
    definition: Definition


def active_journeys(session: Session) -> list[LiveJourney]:
    """The active journeys with their current definition (two queries)."""
    rows = list(session.scalars(select(Journey).where(Journey.status == "active")))
    if not rows:
        return []
    versions = {
        (v.journey_id, v.version): v
        for v in session.scalars(
            select(JourneyVersion).where(JourneyVersion.journey_id.in_([r.id for r in rows]))
        )
    }
    return [LiveJourney(r, parse(versions[(r.id, r.current_version)].definition)) for r in rows]


# ------------------------------------------------------------------ the tracking log


@dataclass(frozen=True)
class LoggedEvent:
    profile_id: uuid.UUID
    seq: int
    name: str
    channel: str | None
    properties: dict[str, Any]


def _matches(trigger: Trigger, event: LoggedEvent) -> bool:
    if event.name != trigger.event:
        return False
    if trigger.channel is not None and event.channel != trigger.channel:
        return False
    return all(event.properties.get(k) == v for k, v in trigger.properties.items())


class StoreFinder:
    """The active stores with coordinates, read once per pass."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._stores: list[Any] | None = None

    def near(self, trigger: Trigger, properties: dict[str, Any]) -> Any | None:
        try:
            point = GeoPoint(float(properties["latitude"]), float(properties["longitude"]))
        except (KeyError, TypeError, ValueError):
            return None
        if self._stores is None:
            self._stores = [
                s for s in stores.all_locations(self.session) if s.kind == "store" and s.active
            ]
        best = None
        best_km = trigger.radius_km
        for store in self._stores:
            if trigger.store is not None and store.code != trigger.store:
                continue
            km = haversine_km(point, GeoPoint(store.lat, store.lon))
            if km <= best_km:
                best, best_km = store, km
        return best


def _logged(session: Session, profile_ids: Sequence[uuid.UUID], after: int, up_to: int,
            names: set[str]) -> list[LoggedEvent]:  # fmt: skip
    # identify, page and screen messages have no event name: they go by their type.
    events = customers.profile_events(profile_ids).subquery("journey_log")
    name = func.coalesce(events.c.event, events.c.type)
    rows = session.execute(
        select(events.c.profile_id, events.c.seq, name, events.c.channel, events.c.properties)
        .where(events.c.seq > after, events.c.seq <= up_to, name.in_(sorted(names)))
        .order_by(events.c.seq)
    )
    return [LoggedEvent(r[0], int(r[1]), str(r[2]), r[3], dict(r[4] or {})) for r in rows]


def _entries(
    session: Session, journeys: list[LiveJourney], events: list[LoggedEvent]
) -> dict[uuid.UUID, list[Entry]]:
    finder = StoreFinder(session)
    found: dict[uuid.UUID, list[Entry]] = defaultdict(list)
    for live in journeys:
        trigger = live.definition.trigger
        for event in events:
            if trigger.type == "event" and _matches(trigger, event):
                state = {"trigger": {"event": event.name, "seq": event.seq}}
                for name in ("sku", "order_id", "cart_id"):
                    if name in event.properties:
                        state[name] = event.properties[name]
                occurrence = f"event:{event.seq}"
            elif trigger.type == "geo_entered" and event.name == trigger.event:
                store = finder.near(trigger, event.properties)
                if store is None:
                    continue
                state = {"store": {"code": store.code, "id": str(store.id), "name": store.name}}
                occurrence = f"geo:{store.code}:{event.seq}"
            else:
                continue
            found[live.row.id].append(Entry(event.profile_id, occurrence, event.seq, state))
    return found


def _listen(session: Session, now: datetime, events: list[LoggedEvent]) -> int:
    """Exit rules and awaited events of the active instances of these people."""
    by_profile: dict[uuid.UUID, list[LoggedEvent]] = defaultdict(list)
    for event in events:
        by_profile[event.profile_id].append(event)
    definitions = Definitions(session)
    moved = 0
    ids = list(by_profile)
    for start in range(0, len(ids), CHUNK):
        instances = session.scalars(
            select(JourneyInstance).where(
                JourneyInstance.profile_id.in_(ids[start : start + CHUNK]),
                JourneyInstance.status == "active",
            )
        )
        for instance in instances:
            definition = definitions.get(instance.journey_id, instance.version)
            exits = definition.exit_events()
            for event in by_profile[instance.profile_id]:
                if event.name in exits and event.seq > instance.since_seq:
                    moved += exit_instances(session, now, [instance], f"event {event.name}")
                    break
                if (
                    instance.waiting_for == event.name
                    and event.seq > (instance.waiting_since_seq or 0)
                    and instance.current_step is not None
                ):
                    heard = dict(instance.state.get("heard") or {})
                    heard[instance.current_step] = event.seq
                    instance.state = {**instance.state, "heard": heard}
                    instance.next_run_at, instance.waiting_for = now, None
                    moved += 1
    return moved


def read_event_log(session: Session, now: datetime) -> int:
    """One pass over the tracking log after the cursor (at most WINDOW positions):
    people entered, exited or woken; returns how many."""
    cursor = events_cursor(session, now)
    head = customers.event_log_head(session, now)
    if head <= cursor.position:
        return 0
    after, up_to = cursor.position, min(head, cursor.position + WINDOW)
    journeys = active_journeys(session)
    trigger_names = {
        str(j.definition.trigger.event)
        for j in journeys
        if j.definition.trigger.type in ("event", "geo_entered")
    }
    listened = _listened_names(session)
    names = trigger_names | listened
    done = 0
    if names and customers.logged_event_names(session, after, up_to) & names:
        touched = customers.touched_profiles(session, after, up_to)
        events: list[LoggedEvent] = []
        for start in range(0, len(touched), CHUNK):
            events.extend(_logged(session, touched[start : start + CHUNK], after, up_to, names))
        events.sort(key=lambda e: e.seq)
        entering = [e for e in events if e.name in trigger_names]
        for journey_id, entries in _entries(session, journeys, entering).items():
            live = next(j for j in journeys if j.row.id == journey_id)
            done += len(enter(session, now, live.row, live.definition, entries))
        done += _listen(session, now, [e for e in events if e.name in listened])
    cursor.position = up_to
    cursor.updated_at = now
    return done


def _listened_names(session: Session) -> set[str]:
    """Exit and awaited event names of every version with active instances."""
    pairs = session.execute(
        select(JourneyInstance.journey_id, JourneyInstance.version)
        .where(JourneyInstance.status == "active")
        .distinct()
    ).all()
    definitions = Definitions(session)
    names: set[str] = set()
    for journey_id, version in pairs:
        definition = definitions.get(journey_id, version)
        names |= definition.exit_events() | definition.wait_events()
    return names


def read_event_log_job(db: Database, clock: Clock) -> int:
    """The tracking-log pass in its own transaction (until caught up)."""
    total = 0
    while True:
        with db.transaction() as session:
            before = customers.event_log_head(session, clock.now())
            total += read_event_log(session, clock.now())
            caught_up = events_cursor(session, clock.now()).position >= before
        if caught_up:
            return total


# ------------------------------------------------------------------ the outbox


def handle_outbox_event(session: Session, row: OutboxEvent, now: datetime) -> None:
    """Segment entries and exits, and back-in-stock events."""
    if row.type == segments.SEGMENT_EXITED:
        _segment_exited(session, now, row.payload)
        return
    journeys = active_journeys(session)
    head = customers.event_log_head(session, now)
    for live in journeys:
        trigger = live.definition.trigger
        if row.type == segments.SEGMENT_ENTERED and trigger.type == "segment_entered":
            if trigger.segment != row.payload.get("segment_key"):
                continue
            profile_id = uuid.UUID(str(row.payload["profile_id"]))
            state = {"segment": trigger.segment}
            entries = [Entry(profile_id, f"segment:{row.event_id}", head, state)]
            enter(session, now, live.row, live.definition, entries)
        elif row.type == inventory.BACK_IN_STOCK and trigger.type == "back_in_stock":
            entries = _wanting(session, now, trigger, row, head)
            enter(session, now, live.row, live.definition, entries)


def _segment_exited(session: Session, now: datetime, payload: dict[str, Any]) -> None:
    key = payload.get("segment_key")
    profile_id = uuid.UUID(str(payload["profile_id"]))
    instances = session.scalars(
        select(JourneyInstance).where(
            JourneyInstance.profile_id == profile_id, JourneyInstance.status == "active"
        )
    )
    definitions = Definitions(session)
    for instance in instances:
        rules = definitions.get(instance.journey_id, instance.version).exits
        if any(rule.segment_exited == key for rule in rules):
            exit_instances(session, now, [instance], f"left segment {key}")


def _wanting(
    session: Session, now: datetime, trigger: Trigger, row: OutboxEvent, head: int
) -> list[Entry]:
    """People whose preferred store is the restocked one and who viewed or wanted the
    SKU within the trigger's days."""
    sku = str(row.payload.get("sku"))
    location_id = uuid.UUID(str(row.payload["location_id"]))
    events = customers.profile_events().subquery("restock_events")
    since = now - timedelta(days=trigger.viewed_within_days)
    rows = session.execute(
        select(events.c.profile_id, events.c.properties).where(
            events.c.event.in_(list(trigger.interest_events)), events.c.timestamp >= since
        )
    ).all()
    viewers = sorted({pid for pid, props in rows if str((props or {}).get("sku")) == sku})
    wanted = [
        pid for pid, store in preferred_stores(session, viewers).items() if store == location_id
    ]
    state = {"sku": sku, "store": {"id": str(location_id)}}
    return [Entry(pid, f"restock:{row.event_id}", head, state) for pid in wanted]


def preferred_stores(
    session: Session, profile_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each person's preferred store: the one they chose, else the one computed from
    their purchases (two queries)."""
    chosen = customers.live_profiles(session, profile_ids)
    computed = {
        row.profile_id: row.preferred_store_id
        for row in session.execute(customers.audience_profiles(list(profile_ids)))
    }
    out: dict[uuid.UUID, uuid.UUID | None] = {}
    for profile_id in profile_ids:
        profile = chosen.get(profile_id)
        explicit = profile.preferred_store_id if profile is not None else None
        out[profile_id] = explicit or computed.get(profile_id)
    return out


def journey_consumer(clock: Clock | None = None) -> Consumer:
    """The outbox consumer of journeys (segment entries/exits, back in stock)."""
    used = clock or SystemClock()

    def handler(session: Session, row: OutboxEvent) -> None:
        handle_outbox_event(session, row, used.now())

    types = frozenset({segments.SEGMENT_ENTERED, segments.SEGMENT_EXITED, inventory.BACK_IN_STOCK})
    return Consumer(CONSUMER_NAME, handler, types)


# ------------------------------------------------------------------ date traits


def _zone(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def _anniversary(born: date, year: int) -> date:
    try:
        return born.replace(year=year)
    except ValueError:  # 29 February in a common year: the 28th
        return date(year, 2, 28)


def enter_date_triggers(
    session: Session, now: datetime, fallback_zone: str = "Europe/Paris"
) -> int:
    """Enter the people whose date trait falls today (minus `days_before`) in their own
    zone, once their local time has reached the trigger's hour; how many entered."""
    dated = [j for j in active_journeys(session) if j.definition.trigger.type == "date_trait"]
    if not dated:
        return 0
    profiles = customers.audience_profiles().subquery("dated_profiles")
    born = session.execute(
        select(profiles.c.profile_id, profiles.c.birth_date).where(
            profiles.c.birth_date.is_not(None)
        )
    ).all()
    head = customers.event_log_head(session, now)
    done = 0
    for live in dated:
        trigger = live.definition.trigger
        near = []
        for profile_id, birth in born:
            for offset in (-1, 0, 1):  # local dates straddle the UTC one
                day = (now + timedelta(days=offset)).date()
                target = _anniversary(birth, (day + timedelta(days=trigger.days_before)).year)
                if target - timedelta(days=trigger.days_before) == day:
                    near.append((profile_id, day))
        zones = customers.live_profiles(session, [pid for pid, _ in near])
        entries = []
        for profile_id, day in near:
            profile = zones.get(profile_id)
            local = now.astimezone(_zone(profile.timezone if profile else None, fallback_zone))
            if local.date() != day or local.time() < trigger.local_time:
                continue
            state = {"date": day.isoformat(), "timezone": str(local.tzinfo)}
            entries.append(
                Entry(profile_id, f"date:{trigger.trait}:{day.isoformat()}", head, state)
            )
        done += len(enter(session, now, live.row, live.definition, entries))
    return done


def date_triggers_job(db: Database, clock: Clock) -> int:
    with db.transaction() as session:
        return enter_date_triggers(session, clock.now())


# ------------------------------------------------------------------ due instances


def run_due(db: Database, clock: Clock, actions: Actions | None = None,
            batch_size: int = DUE_BATCH) -> int:  # fmt: skip
    """Advance every instance whose time has come, a batch per transaction; how many
    steps ran."""
    steps = 0
    while True:
        with db.transaction() as session:
            now = clock.now()
            query = (
                select(JourneyInstance)
                .where(JourneyInstance.status == "active", JourneyInstance.next_run_at <= now)
                .order_by(JourneyInstance.next_run_at, JourneyInstance.id)
                .limit(batch_size)
            )
            if db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            due = list(session.scalars(query))
            run = Run(session, now, actions or Actions(), Definitions(session),
                      customers.event_log_head(session, now))  # fmt: skip
            run.read_carts([instance.profile_id for instance in due])
            for instance in due:
                advance(run, instance)
            run.send_all()  # every send step of the batch at once
            if run.logs:
                session.execute(insert(JourneyStepLog), run.logs)
            steps += run.steps_run
        if len(due) < batch_size:
            return steps


def run_all(db: Database, clock: Clock, actions: Actions | None = None) -> int:
    """Everything the worker does for journeys, once (the CLI's `run-due`)."""
    done = read_event_log_job(db, clock)
    done += date_triggers_job(db, clock)
    return done + run_due(db, clock, actions)


def periodic_jobs(actions: Actions | None = None) -> list[PeriodicJob]:
    def due(db: Database, clock: Clock) -> int:
        return run_due(db, clock, actions)

    return [
        PeriodicJob("journeys.events", 2.0, read_event_log_job),
        PeriodicJob("journeys.dates", 600.0, date_triggers_job),
        PeriodicJob("journeys.due", 5.0, due),
    ]
