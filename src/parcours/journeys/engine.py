"""Running instances: entering people, running their steps, exiting them.

An instance runs from its `current_step` until a wait (it sleeps until `next_run_at`),
the end (completed) or an exit (exited). Each step is logged (`reached`, then its
outcome) for the counts per step. Actions are keyed on (instance, step): the send's
idempotency key is `journey:<instance>:<step>`, points carry the same reference, and a
code, a tag or a webhook event is written in the transaction that moves the instance
on, so running an instance again after a crash never acts twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from parcours import catalog, customers, engagement, inventory, loyalty, orders, segments
from parcours.core.errors import ParcoursError
from parcours.core.events import DomainEvent, publish
from parcours.core.ids import new_id
from parcours.journeys.definition import Definition, Step, parse
from parcours.journeys.models import (
    Journey,
    JourneyInstance,
    JourneyStepLog,
    JourneyVersion,
    ProfileTag,
)

log = logging.getLogger("parcours.journeys")

MAX_STEPS_PER_RUN = 101  # more than a definition holds: a run always stops at a wait
JOURNEY_ENTERED = "Journey Entered"
JOURNEY_EXITED = "Journey Exited"
CART_EVENTS = ("Product Added", "Product Removed", "Order Completed")
ORDER_COMPLETED = "Order Completed"
NAMESPACE = uuid.UUID("6f1c1f7e-5a57-4d8e-9c55-2f0c7c5d1a10")


@dataclass
class Actions:
    """What steps reach outside the context with: the engagement outlets (None: from the
    settings) and the retailer's zone for profiles without a valid one."""

    outlets: engagement.Outlets | None = None
    timezone: str = "Europe/Paris"


@dataclass(frozen=True)
class Entry:
    """One person entering a journey on one trigger occurrence."""

    profile_id: uuid.UUID
    occurrence: str
    since_seq: int
    state: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ definitions


class Definitions:
    """Parsed definitions by (journey id, version), read once per batch."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._found: dict[tuple[uuid.UUID, int], Definition] = {}
        self._keys: dict[uuid.UUID, str] = {}

    def get(self, journey_id: uuid.UUID, version: int) -> Definition:
        wanted = (journey_id, version)
        if wanted not in self._found:
            row = self.session.get(JourneyVersion, wanted)
            assert row is not None, "an instance always points at a saved version"
            self._found[wanted] = parse(row.definition)
        return self._found[wanted]

    def key(self, journey_id: uuid.UUID) -> str:
        if journey_id not in self._keys:
            journey = self.session.get(Journey, journey_id)
            self._keys[journey_id] = journey.key if journey is not None else str(journey_id)
        return self._keys[journey_id]


# ------------------------------------------------------------------ entering


def enter(
    session: Session,
    now: datetime,
    journey: Journey,
    definition: Definition,
    entries: Sequence[Entry],
) -> list[uuid.UUID]:
    """Start instances for the entries the re-entry rule allows; returns their ids.

    One active instance per person and journey at a time; `never` refuses anyone who
    was ever in it, `after_days` anyone who entered within the days; an occurrence
    already seen (a replayed trigger) is skipped. Three statements per call."""
    wanted: dict[uuid.UUID, Entry] = {}
    for entry in entries:  # the first occurrence of a batch wins
        wanted.setdefault(entry.profile_id, entry)
    if not wanted:
        return []
    past = session.execute(
        select(
            JourneyInstance.profile_id,
            JourneyInstance.status,
            JourneyInstance.entered_at,
            JourneyInstance.occurrence,
        ).where(
            JourneyInstance.journey_id == journey.id,
            JourneyInstance.profile_id.in_(list(wanted)),
        )
    ).all()
    refused: set[uuid.UUID] = set()
    for profile_id, status, entered_at, occurrence in past:
        entry = wanted[profile_id]
        recent = entered_at > now - timedelta(days=definition.reentry_days)
        if (
            status == "active"
            or occurrence == entry.occurrence
            or definition.reentry == "never"
            or (definition.reentry == "after_days" and recent)
        ):
            refused.add(profile_id)
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "journey_id": journey.id,
            "version": journey.current_version,
            "profile_id": entry.profile_id,
            "occurrence": entry.occurrence[:200],
            "status": "active",
            "current_step": definition.start,
            "state": entry.state,
            "next_run_at": now,
            "since_seq": entry.since_seq,
            "waiting_for": None,
            "waiting_since_seq": None,
            "entered_at": now,
            "ended_at": None,
            "exit_reason": None,
        }
        for entry in wanted.values()
        if entry.profile_id not in refused
    ]
    if rows:
        session.execute(insert(JourneyInstance), rows)
    return [row["id"] for row in rows]


# ------------------------------------------------------------------ exiting


def exit_instances(
    session: Session, now: datetime, instances: Iterable[JourneyInstance], reason: str
) -> int:
    """End active instances as exited with `reason`, logged at the step they were on."""
    done = 0
    logs = []
    for instance in instances:
        if instance.status != "active":
            continue
        instance.status, instance.exit_reason = "exited", reason[:200]
        instance.ended_at, instance.next_run_at, instance.waiting_for = now, None, None
        logs.append(_log_row(instance, instance.current_step or "-", "exited", now))
        done += 1
    if logs:
        session.execute(insert(JourneyStepLog), logs)
    return done


def _log_row(
    instance: JourneyInstance, step_id: str, outcome: str, now: datetime
) -> dict[str, Any]:
    return {
        "instance_id": instance.id,
        "journey_id": instance.journey_id,
        "version": instance.version,
        "step_id": step_id,
        "outcome": outcome[:40],
        "at": now,
    }


# ------------------------------------------------------------------ running


@dataclass
class PendingSend:
    """A send step reached in this batch: sent with the others by `Run.send_all`, then
    its outcome is written into the step's log row."""

    instance: JourneyInstance
    step_id: str
    request: engagement.SendRequest
    log_index: int = -1


SENDING = "sending"  # the outcome of a send step until the batch has gone


@dataclass
class Run:
    """One batch of instances advanced in one transaction. Send steps are gathered and
    go out together (`send_all`, one `engagement.send_batch`): each keeps its own
    idempotency key (`journey:<instance>:<step>`) and its own step log row."""

    session: Session
    now: datetime
    actions: Actions
    definitions: Definitions
    head_seq: int
    logs: list[dict[str, Any]] = field(default_factory=list)
    steps_run: int = 0
    carts: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)
    sends: list[PendingSend] = field(default_factory=list)
    shop_carts: set[uuid.UUID] = field(default_factory=set)
    carts_read: set[uuid.UUID] = field(default_factory=set)

    def read_carts(self, profile_ids: Sequence[uuid.UUID]) -> None:
        """Read the open carts the orders context holds for these people at once (the
        due job calls it for its batch); the others fall back to the tracking log."""
        wanted = [pid for pid in dict.fromkeys(profile_ids) if pid not in self.carts_read]
        self.carts_read.update(wanted)
        for pid, cart in orders.open_carts(self.session, self.now, wanted).items():
            lines: dict[str, int] = {}
            for line in cart.lines:
                lines[line.sku] = lines.get(line.sku, 0) + line.quantity
            self.carts[pid] = lines
            self.shop_carts.add(pid)

    def send_all(self) -> int:
        """Send the gathered messages in one batch and log each outcome; how many."""
        pending, self.sends = self.sends, []
        if not pending:
            return 0
        outcomes = engagement.send_batch(
            self.session, self.now, [p.request for p in pending], self.actions.outlets
        )
        for send, outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, ParcoursError):  # e.g. an archived template
                log.warning(
                    "journey action refused",
                    extra={"instance_id": str(send.instance.id), "step": send.step_id,
                           "error": outcome.detail},
                )  # fmt: skip
                text = "failed"
            elif outcome.reason is None:
                text = outcome.status
            else:
                text = f"{outcome.status}:{outcome.reason}"
            if send.log_index >= 0:
                self.logs[send.log_index]["outcome"] = text[:40]
        return len(pending)

    def cart(self, profile_id: uuid.UUID) -> dict[str, int]:
        """The person's cart, read once per batch (a condition and a send share it):
        their open cart in the orders context, else the tracking log's (`cart_of`)."""
        if profile_id not in self.carts_read:
            self.read_carts([profile_id])
        if profile_id not in self.carts:
            # The tracking log for every person of the batch still without a cart, once.
            missing = [pid for pid in self.carts_read if pid not in self.carts]
            found = carts_from_log(self.session, missing)
            self.carts.update({pid: found.get(pid, {}) for pid in missing})
        return self.carts[profile_id]


def advance(run: Run, instance: JourneyInstance) -> None:
    """Run the instance's steps until a wait, the end or an exit."""
    definition = run.definitions.get(instance.journey_id, instance.version)
    for _ in range(MAX_STEPS_PER_RUN):
        if instance.status != "active" or instance.current_step is None:
            return
        step = definition.steps.get(instance.current_step)
        if step is None:  # cannot happen with a checked definition
            _finish(run, instance, "exited", "unknown step")
            return
        if instance.state.get("at") != step.id:
            run.logs.append(_log_row(instance, step.id, "reached", run.now))
            _set_state(instance, at=step.id)
        outcome, target, sleep_until = _run_step(run, instance, definition, step)
        run.steps_run += 1
        if sleep_until is not None:
            instance.next_run_at = sleep_until
            return
        run.logs.append(_log_row(instance, step.id, outcome, run.now))
        if outcome == SENDING:
            run.sends[-1].log_index = len(run.logs) - 1
        if step.type == "exit":
            _finish(run, instance, "exited", str(step.raw.get("reason") or f"step {step.id}"))
            return
        if target is None:
            _finish(run, instance, "completed", None)
            return
        instance.current_step = target


def _finish(run: Run, instance: JourneyInstance, status: str, reason: str | None) -> None:
    instance.status, instance.exit_reason, instance.ended_at = status, reason, run.now
    instance.next_run_at, instance.waiting_for = None, None


def _set_state(instance: JourneyInstance, **values: Any) -> None:
    # A new dict: the JSON column notices reassignment, not in-place changes.
    instance.state = {**(instance.state or {}), **values}


def _run_step(
    run: Run, instance: JourneyInstance, definition: Definition, step: Step
) -> tuple[str, str | None, datetime | None]:
    """(outcome, next step id, sleep until) of one step."""
    if step.type == "wait":
        return _wait(run, instance, step)
    if step.type == "condition":
        met = evaluate(run, instance, step.raw["if"])
        return ("yes", step.yes, None) if met else ("no", step.no, None)
    if step.type == "exit":
        return "exited", None, None
    try:
        outcome = ACTIONS[step.type](run, instance, step)
    except ParcoursError as error:  # e.g. an archived template: log it and move on
        log.warning(
            "journey action refused",
            extra={"instance_id": str(instance.id), "step": step.id, "error": error.detail},
        )
        outcome = "failed"
    return outcome, step.next, None


# ------------------------------------------------------------------ waits


def _zone(instance: JourneyInstance, run: Run) -> ZoneInfo:
    name = instance.state.get("timezone")
    if name is None:
        profile = customers.live_profiles(run.session, [instance.profile_id]).get(
            instance.profile_id
        )
        name = (profile.timezone if profile is not None else None) or run.actions.timezone
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(run.actions.timezone)


def _duration(raw: dict[str, Any]) -> timedelta:
    return timedelta(
        days=float(raw.get("days", 0)),
        hours=float(raw.get("hours", 0)),
        minutes=float(raw.get("minutes", 0)),
    )


def next_local_time(now: datetime, zone: ZoneInfo, at: time) -> datetime:
    """The next moment (UTC-aware) the wall clock in `zone` shows `at`, now included."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate


def _wait(
    run: Run, instance: JourneyInstance, step: Step
) -> tuple[str, str | None, datetime | None]:
    waits = dict(instance.state.get("waits") or {})
    deadline_text = waits.get(step.id)
    if deadline_text is None:
        raw = step.raw
        if "until_local_time" in raw:
            at = time.fromisoformat(str(raw["until_local_time"]))
            deadline = next_local_time(run.now, _zone(instance, run), at)
        else:
            deadline = run.now + _duration(raw)
        waits[step.id] = deadline.isoformat()
        _set_state(instance, waits=waits)
        if raw.get("until_event"):
            instance.waiting_for = str(raw["until_event"])
            instance.waiting_since_seq = run.head_seq
        if deadline > run.now:
            return "waiting", None, deadline
    deadline = datetime.fromisoformat(str(waits[step.id]))
    heard = instance.state.get("heard") or {}
    if step.raw.get("until_event") and step.id in heard:
        instance.waiting_for = None
        return "event", step.next, None
    if deadline > run.now:  # woken early (an event for another wait): sleep again
        return "waiting", None, deadline
    instance.waiting_for = None
    if step.raw.get("until_event"):
        return "timeout", step.on_timeout, None
    return "done", step.next, None


# ------------------------------------------------------------------ conditions


def _compare(value: Any, operator: str, expected: Any) -> bool:
    if operator == "exists":
        return value is not None
    if operator == "missing":
        return value is None
    if value is None:
        return False
    if operator == "in":
        return isinstance(expected, list) and value in expected
    if isinstance(value, datetime | time) or hasattr(value, "isoformat"):
        value = value.isoformat()
    try:
        checks = {
            "eq": value == expected,
            "ne": value != expected,
            "gt": value > expected,
            "gte": value >= expected,
            "lt": value < expected,
            "lte": value <= expected,
        }
    except TypeError:
        return False
    return bool(checks.get(operator, False))


def _trait(run: Run, profile_id: uuid.UUID, name: str) -> Any:
    row = run.session.execute(customers.audience_profiles([profile_id])).mappings().first()
    if row is None:
        return None
    return row.get(name)


def evaluate(run: Run, instance: JourneyInstance, condition: dict[str, Any]) -> bool:
    """Whether the condition holds for the instance's person now."""
    kind = condition["kind"]
    if kind == "all":
        return all(evaluate(run, instance, c) for c in condition["conditions"])
    if kind == "any":
        return any(evaluate(run, instance, c) for c in condition["conditions"])
    if kind == "not":
        return not evaluate(run, instance, condition["condition"])
    if kind == "trait":
        value = _trait(run, instance.profile_id, str(condition["field"]))
        return _compare(value, str(condition.get("operator", "eq")), condition.get("value"))
    if kind == "segment":
        try:
            found = segments.find_segment(run.session, str(condition["segment"]))
        except ParcoursError:
            return False
        return segments.is_member(run.session, found.id, instance.profile_id)
    if kind == "event":
        return bool(_events_since(run, instance, [str(condition["event"])], condition))
    if kind == "consent":
        decision = customers.can_contact(
            run.session,
            instance.profile_id,
            str(condition.get("purpose", "marketing")),
            str(condition["channel"]),
            run.now,
        )
        return bool(decision.allowed)
    return bool(run.cart(instance.profile_id)) == bool(condition.get("value", True))


def _events_since(
    run: Run, instance: JourneyInstance, names: Sequence[str], condition: dict[str, Any]
) -> list[Any]:
    events = customers.profile_events([instance.profile_id]).subquery("journey_events")
    rows = run.session.execute(
        select(events.c.properties).where(
            events.c.seq > instance.since_seq, events.c.event.in_(list(names))
        )
    ).all()
    wanted = condition.get("properties") or {}
    return [r for r in rows if all((r.properties or {}).get(k) == v for k, v in wanted.items())]


# ------------------------------------------------------------------ carts


def cart_of(session: Session, profile_id: uuid.UUID) -> dict[str, int]:
    """The person's open cart as the tracking log tells it: quantities per SKU added
    and not removed since their last `Order Completed` (empty when none)."""
    return carts_from_log(session, [profile_id]).get(profile_id, {})


def carts_from_log(
    session: Session, profile_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """`cart_of` for many people in one query (people without a cart are absent)."""
    if not profile_ids:
        return {}
    events = customers.profile_events(list(profile_ids)).subquery("cart_events")
    rows = session.execute(
        select(events.c.profile_id, events.c.event, events.c.properties)
        .where(events.c.event.in_(CART_EVENTS))
        .order_by(events.c.profile_id, events.c.seq)
    ).all()
    found: dict[uuid.UUID, dict[str, int]] = {}
    for profile_id, name, properties in rows:
        lines = found.setdefault(profile_id, {})
        if name == ORDER_COMPLETED:
            lines.clear()
            continue
        sku = str((properties or {}).get("sku") or "")
        if not sku:
            continue
        quantity = (properties or {}).get("quantity", 1)
        step = int(quantity) if isinstance(quantity, int | float) else 1
        lines[sku] = lines.get(sku, 0) + (step if name == "Product Added" else -step)
    out = {}
    for profile_id, lines in found.items():
        kept = {sku: n for sku, n in lines.items() if n > 0}
        if kept:
            out[profile_id] = kept
    return out


def cart_context(
    session: Session, profile_id: uuid.UUID, locale: str, lines: dict[str, int] | None = None
) -> dict[str, Any] | None:
    """The cart as message data: each item with its name and the units available at the
    person's preferred store (`stock_at_store`, None without a preferred store)."""
    lines = cart_of(session, profile_id) if lines is None else lines
    if not lines:
        return None
    labels = catalog.sku_labels(session, list(lines))
    store_id = preferred_store(session, profile_id)
    stock = inventory.available_at_location(session, store_id, list(lines)) if store_id else {}
    items = [
        {
            "sku": sku,
            "name": labels[sku].name(locale) if sku in labels else sku,
            "quantity": quantity,
            "price": "",
            "stock_at_store": stock.get(sku) if store_id else None,
        }
        for sku, quantity in sorted(lines.items())
    ]
    return {"items": items, "total": "", "items_count": sum(lines.values()), "url": ""}


def product_context(session: Session, instance: JourneyInstance, sku: str) -> dict[str, Any]:
    """One product (the instance's SKU) shaped as a one-line cart, with its stock at the
    store of the instance (back in stock) or the person's preferred store."""
    store = instance.state.get("store") or {}
    store_id = uuid.UUID(str(store["id"])) if store.get("id") else None
    store_id = store_id or preferred_store(session, instance.profile_id)
    labels = catalog.sku_labels(session, [sku])
    profile = customers.live_profiles(session, [instance.profile_id]).get(instance.profile_id)
    locale = profile.locale if profile is not None else "fr"
    stock = inventory.available_at_location(session, store_id, [sku]) if store_id else {}
    item = {
        "sku": sku,
        "name": labels[sku].name(locale) if sku in labels else sku,
        "quantity": 1,
        "price": "",
        "stock_at_store": stock.get(sku) if store_id else None,
    }
    return {"items": [item], "total": "", "items_count": 1, "url": ""}


def preferred_store(session: Session, profile_id: uuid.UUID) -> uuid.UUID | None:
    """The store the person chose, else the one computed from their purchases."""
    profile = customers.live_profiles(session, [profile_id]).get(profile_id)
    if profile is not None and profile.preferred_store_id is not None:
        chosen: uuid.UUID = profile.preferred_store_id
        return chosen
    traits = customers.computed_traits(session, profile_id)
    return traits.preferred_store_id if traits is not None else None


# ------------------------------------------------------------------ actions


def action_key(instance: JourneyInstance, step: Step) -> str:
    return f"journey:{instance.id}:{step.id}"


def _send(run: Run, instance: JourneyInstance, step: Step) -> str:
    extras: dict[str, Any] = {}
    if instance.state.get("promo_code"):
        extras["promo_code"] = instance.state["promo_code"]
    store = instance.state.get("store") or {}
    if store.get("id"):  # the store the trigger found (nearby, back in stock there)
        extras["store_id"] = store["id"]
    lines = run.cart(instance.profile_id) if step.raw.get("with_cart") else {}
    if lines and instance.profile_id not in run.shop_carts:
        # A cart only the tracking log knows (a shop whose carts are not kept in the
        # orders context); an open cart there is given by engagement's CartSource.
        profile = customers.live_profiles(run.session, [instance.profile_id]).get(
            instance.profile_id
        )
        locale = profile.locale if profile is not None else "fr"
        cart = cart_context(run.session, instance.profile_id, locale, lines)
        if cart is not None:
            extras["cart"] = cart
    if step.raw.get("with_product") and instance.state.get("sku"):
        extras["cart"] = product_context(run.session, instance, str(instance.state["sku"]))
    request = engagement.SendRequest(
        profile_id=instance.profile_id,
        template_key=str(step.raw["template"]),
        idempotency_key=action_key(instance, step),
        context=extras,
        source=f"journey:{run.definitions.key(instance.journey_id)}",
    )
    run.sends.append(PendingSend(instance, step.id, request))
    return SENDING


def _promo_code(run: Run, instance: JourneyInstance, step: Step) -> str:
    issued_codes = dict(instance.state.get("codes") or {})
    if step.id in issued_codes:  # this step already drew its code
        return "issued"
    valid = step.raw.get("valid_days")
    issued = loyalty.issue_code(
        run.session,
        run.now,
        str(step.raw["promotion"]),
        instance.profile_id,
        valid_days=int(valid) if valid else None,
    )
    issued_codes[step.id] = issued.code
    _set_state(instance, promo_code=issued.code, codes=issued_codes)
    return "issued"


def _points(run: Run, instance: JourneyInstance, step: Step) -> str:
    reason = str(step.raw.get("reason") or f"journey {run.definitions.key(instance.journey_id)}")
    loyalty.award_points(
        run.session, run.now, instance.profile_id, int(step.raw["points"]), reason,
        action_key(instance, step),
    )  # fmt: skip
    return "awarded"


def _tag(run: Run, instance: JourneyInstance, step: Step) -> str:
    tag = str(step.raw["tag"])[:64]
    if run.session.get(ProfileTag, (instance.profile_id, tag)) is None:
        run.session.add(
            ProfileTag(
                profile_id=instance.profile_id, tag=tag,
                journey_key=run.definitions.key(instance.journey_id), tagged_at=run.now,
            )
        )  # fmt: skip
        run.session.flush()
    return "tagged"


def _webhook(run: Run, instance: JourneyInstance, step: Step) -> str:
    # The event's id is derived from (instance, step): the outbox refuses a second one
    # and core.webhooks posts it signed, once per endpoint, with retries.
    event_id = uuid.uuid5(NAMESPACE, action_key(instance, step))
    payload = {
        "journey": run.definitions.key(instance.journey_id),
        "step": step.id,
        "instance_id": str(instance.id),
        "profile_id": str(instance.profile_id),
        "store": instance.state.get("store"),
        "sku": instance.state.get("sku"),
    }
    publish(run.session, DomainEvent(str(step.raw["event"]), payload, run.now, event_id), run.now)
    return "published"


ACTIONS = {
    "send": _send,
    "promo_code": _promo_code,
    "points": _points,
    "tag": _tag,
    "webhook": _webhook,
}
