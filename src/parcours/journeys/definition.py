"""A journey's definition: JSON checked into plain dataclasses.

```json
{"trigger": {"type": "event", "event": "Product Added"},
 "steps": [{"id": "wait", "type": "wait", "hours": 1, "next": "send"},
           {"id": "send", "type": "send", "template": "abandoned-cart"}],
 "exit": [{"event": "Order Completed"}],
 "reentry": {"mode": "after_days", "days": 7}}
```

The first step is where an instance starts; a step without `next` ends the journey.
Every problem is a `FieldError` whose pointer names the part (`#/steps/2/next`): unknown
step types, dangling next-step ids, unreachable steps and cycles without a wait.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from parcours.core.errors import FieldError, InvalidInput

TRIGGERS = ("event", "segment_entered", "date_trait", "geo_entered", "back_in_stock")
STEP_TYPES = ("wait", "condition", "send", "promo_code", "points", "tag", "webhook", "exit")
REENTRY = ("never", "after_days", "always")
DATE_TRAITS = ("birth_date",)
CONDITION_KINDS = ("trait", "segment", "event", "consent", "cart_open", "all", "any", "not")
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "missing")
LOCATION_EVENT = "Location Updated"
STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
MAX_STEPS = 100
MAX_WAIT_DAYS = 400


@dataclass(frozen=True)
class Trigger:
    type: str
    event: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None
    segment: str | None = None
    trait: str | None = None
    days_before: int = 0
    local_time: time = time(9, 0)
    store: str | None = None
    radius_km: float = 1.0
    viewed_within_days: int = 30
    interest_events: tuple[str, ...] = ("Product Viewed", "Product Added")


@dataclass(frozen=True)
class Step:
    id: str
    type: str
    raw: dict[str, Any]
    next: str | None = None
    yes: str | None = None
    no: str | None = None
    on_timeout: str | None = None

    def targets(self) -> list[str]:
        return [t for t in (self.next, self.yes, self.no, self.on_timeout) if t]


@dataclass(frozen=True)
class ExitRule:
    event: str | None = None
    segment_exited: str | None = None


@dataclass(frozen=True)
class Definition:
    trigger: Trigger
    steps: dict[str, Step]
    order: tuple[str, ...]
    exits: tuple[ExitRule, ...]
    reentry: str
    reentry_days: int

    @property
    def start(self) -> str:
        return self.order[0]

    def exit_events(self) -> set[str]:
        return {e.event for e in self.exits if e.event}

    def wait_events(self) -> set[str]:
        return {str(s.raw["until_event"]) for s in self.steps.values() if s.raw.get("until_event")}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(value: Any, low: float, high: float) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and low <= value <= high


def _local_time(value: Any, pointer: str, errors: list[FieldError]) -> time:
    if value is None:
        return time(9, 0)
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        errors.append(FieldError("a local time of day such as 09:00", pointer=pointer))
        return time(9, 0)


def _trigger(raw: Any, errors: list[FieldError]) -> Trigger:
    p = "#/trigger"
    if not isinstance(raw, dict):
        errors.append(FieldError("give the trigger as an object with a type", pointer=p))
        return Trigger("event", event="?")
    kind = raw.get("type")
    if kind not in TRIGGERS:
        errors.append(FieldError(f"must be one of {', '.join(TRIGGERS)}", pointer=f"{p}/type"))
        return Trigger("event", event="?")
    properties = raw.get("properties") or {}
    if not isinstance(properties, dict):
        errors.append(FieldError("an object of property values", pointer=f"{p}/properties"))
        properties = {}
    if kind == "event":
        event = _text(raw.get("event"))
        if event is None:
            errors.append(FieldError("name the tracking event", pointer=f"{p}/event"))
        channel = _text(raw.get("channel"))
        return Trigger("event", event=event, properties=properties, channel=channel)
    if kind == "segment_entered":
        segment = _text(raw.get("segment"))
        if segment is None:
            errors.append(FieldError("give the segment key", pointer=f"{p}/segment"))
        return Trigger(kind, segment=segment)
    if kind == "date_trait":
        trait = raw.get("trait", "birth_date")
        if trait not in DATE_TRAITS:
            errors.append(
                FieldError(f"must be one of {', '.join(DATE_TRAITS)}", pointer=f"{p}/trait")
            )
        days = raw.get("days_before", 0)
        if not _number(days, 0, 60) or not isinstance(days, int):
            errors.append(FieldError("whole days from 0 to 60", pointer=f"{p}/days_before"))
            days = 0
        at = _local_time(raw.get("at_local_time"), f"{p}/at_local_time", errors)
        return Trigger(kind, trait=str(trait), days_before=days, local_time=at)
    if kind == "geo_entered":
        radius = raw.get("radius_km", 1.0)
        if not _number(radius, 0.01, 100):
            errors.append(FieldError("kilometres from 0.01 to 100", pointer=f"{p}/radius_km"))
            radius = 1.0
        event = _text(raw.get("event")) or LOCATION_EVENT
        return Trigger(kind, event=event, store=_text(raw.get("store")), radius_km=float(radius))
    days = raw.get("viewed_within_days", 30)
    if not _number(days, 1, 365) or not isinstance(days, int):
        errors.append(FieldError("whole days from 1 to 365", pointer=f"{p}/viewed_within_days"))
        days = 30
    names = raw.get("interest_events") or ["Product Viewed", "Product Added"]
    if not isinstance(names, list) or not all(_text(n) for n in names):
        errors.append(FieldError("a list of event names", pointer=f"{p}/interest_events"))
        names = ["Product Viewed", "Product Added"]
    return Trigger(kind, viewed_within_days=days, interest_events=tuple(names))


def _condition(raw: Any, pointer: str, errors: list[FieldError]) -> None:
    if not isinstance(raw, dict) or len(raw) == 0:
        errors.append(FieldError("give a condition object", pointer=pointer))
        return
    kind = raw.get("kind")
    if kind not in CONDITION_KINDS:
        choices = ", ".join(CONDITION_KINDS)
        errors.append(FieldError(f"must be one of {choices}", pointer=f"{pointer}/kind"))
        return
    if kind in ("all", "any"):
        items = raw.get("conditions")
        if not isinstance(items, list) or not items:
            errors.append(FieldError("a non-empty list", pointer=f"{pointer}/conditions"))
            return
        for index, item in enumerate(items):
            _condition(item, f"{pointer}/conditions/{index}", errors)
        return
    if kind == "not":
        _condition(raw.get("condition"), f"{pointer}/condition", errors)
        return
    required = {"trait": "field", "segment": "segment", "event": "event", "consent": "channel"}
    name = required.get(str(kind))
    if name is not None and _text(raw.get(name)) is None:
        errors.append(FieldError(f"give the {name}", pointer=f"{pointer}/{name}"))
    if kind == "trait" and raw.get("operator", "eq") not in OPERATORS:
        choices = ", ".join(OPERATORS)
        errors.append(FieldError(f"must be one of {choices}", pointer=f"{pointer}/operator"))


def _wait(raw: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    kinds = [k for k in ("minutes", "hours", "days", "until_local_time", "until_event") if k in raw]
    if len(kinds) == 0:
        detail = "say how long: minutes, hours, days, until_local_time or until_event"
        errors.append(FieldError(detail, pointer=pointer))
        return
    if "until_local_time" in raw:
        _local_time(raw["until_local_time"], f"{pointer}/until_local_time", errors)
    for unit, most in (("minutes", MAX_WAIT_DAYS * 1440), ("hours", MAX_WAIT_DAYS * 24)):
        if unit in raw and not _number(raw[unit], 0, most):
            errors.append(FieldError(f"a number from 0 to {most}", pointer=f"{pointer}/{unit}"))
    if "days" in raw and not _number(raw["days"], 0, MAX_WAIT_DAYS):
        errors.append(FieldError(f"from 0 to {MAX_WAIT_DAYS}", pointer=f"{pointer}/days"))
    if "until_event" in raw:
        if _text(raw["until_event"]) is None:
            errors.append(FieldError("name the event", pointer=f"{pointer}/until_event"))
        if not any(k in raw for k in ("minutes", "hours", "days")):
            detail = "give the timeout (minutes, hours or days) of the wait for the event"
            errors.append(FieldError(detail, pointer=pointer))


def _action(kind: str, raw: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    required = {
        "send": "template",
        "promo_code": "promotion",
        "tag": "tag",
        "webhook": "event",
    }
    name = required.get(kind)
    if name is not None and _text(raw.get(name)) is None:
        errors.append(FieldError(f"give the {name}", pointer=f"{pointer}/{name}"))
    if kind == "points" and (not isinstance(raw.get("points"), int) or raw.get("points") == 0):
        errors.append(FieldError("a whole number of points, not 0", pointer=f"{pointer}/points"))
    if kind == "promo_code" and "valid_days" in raw and not _number(raw["valid_days"], 1, 3650):
        errors.append(FieldError("days from 1 to 3650", pointer=f"{pointer}/valid_days"))


def _step(raw: Any, index: int, errors: list[FieldError]) -> Step | None:
    pointer = f"#/steps/{index}"
    if not isinstance(raw, dict):
        errors.append(FieldError("a step is an object with an id and a type", pointer=pointer))
        return None
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not STEP_ID.match(step_id):
        detail = "1-64 of a-z, 0-9, '-' and '_'"
        errors.append(FieldError(detail, pointer=f"{pointer}/id"))
        return None
    kind = raw.get("type")
    if kind not in STEP_TYPES:
        detail = f"unknown step type {kind!r}: use one of {', '.join(STEP_TYPES)}"
        errors.append(FieldError(detail, pointer=f"{pointer}/type"))
        return None
    if kind == "wait":
        _wait(raw, pointer, errors)
    elif kind == "condition":
        _condition(raw.get("if"), f"{pointer}/if", errors)
    elif kind != "exit":
        _action(str(kind), raw, pointer, errors)
    links = {}
    for name in ("next", "yes", "no", "on_timeout"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(FieldError("a step id", pointer=f"{pointer}/{name}"))
            value = None
        links[name] = value
    if kind == "condition" and (links["yes"] is None and links["no"] is None):
        errors.append(FieldError("give the yes and/or no step", pointer=f"{pointer}/yes"))
    return Step(step_id, str(kind), raw, **links)


def _graph_errors(
    steps: dict[str, Step], order: list[str], pointers: dict[str, str]
) -> list[FieldError]:
    errors = []
    for step_id in order:
        step = steps[step_id]
        for name in ("next", "yes", "no", "on_timeout"):
            target = getattr(step, name)
            if target is not None and target not in steps:
                detail = f"no step has the id {target!r}"
                errors.append(FieldError(detail, pointer=f"{pointers[step_id]}/{name}"))
    if errors:
        return errors
    seen = {order[0]}
    frontier = [order[0]]
    while frontier:
        for target in steps[frontier.pop()].targets():
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    for step_id in order:
        if step_id not in seen:
            detail = f"the step {step_id!r} cannot be reached from the first step"
            errors.append(FieldError(detail, pointer=pointers[step_id]))
    cycle = _instant_cycle(steps, order)
    if cycle:
        detail = "these steps loop without a wait: " + " → ".join(cycle)
        errors.append(FieldError(detail, pointer=pointers[cycle[0]]))
    return errors


def _instant_cycle(steps: dict[str, Step], order: list[str]) -> list[str]:
    """A cycle through steps none of which waits (it would run forever at once)."""
    colour: dict[str, int] = {}
    path: list[str] = []

    def visit(step_id: str) -> list[str]:
        colour[step_id] = 1
        path.append(step_id)
        step = steps[step_id]
        if step.type != "wait":
            for target in step.targets():
                if colour.get(target) == 1:
                    return [*path[path.index(target) :], target]
                if colour.get(target) is None:
                    found = visit(target)
                    if found:
                        return found
        colour[step_id] = 2
        path.pop()
        return []

    for step_id in order:
        if colour.get(step_id) is None:
            found = visit(step_id)
            if found:
                return found
    return []


def _exits(raw: Any, errors: list[FieldError]) -> tuple[ExitRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError("a list of exit rules", pointer="#/exit"))
        return ()
    rules = []
    for index, item in enumerate(raw):
        event = _text(item.get("event")) if isinstance(item, dict) else None
        segment = _text(item.get("segment_exited")) if isinstance(item, dict) else None
        if (event is None) == (segment is None):
            detail = "give either an event or a segment_exited"
            errors.append(FieldError(detail, pointer=f"#/exit/{index}"))
            continue
        rules.append(ExitRule(event, segment))
    return tuple(rules)


def _reentry(raw: Any, errors: list[FieldError]) -> tuple[str, int]:
    if raw is None:
        return "never", 0
    if not isinstance(raw, dict) or raw.get("mode") not in REENTRY:
        detail = f"mode must be one of {', '.join(REENTRY)}"
        errors.append(FieldError(detail, pointer="#/reentry/mode"))
        return "never", 0
    days = raw.get("days", 0)
    if raw["mode"] == "after_days" and (not isinstance(days, int) or not 1 <= days <= 3650):
        errors.append(FieldError("whole days from 1 to 3650", pointer="#/reentry/days"))
        days = 1
    return str(raw["mode"]), int(days or 0)


def check(raw: Any) -> tuple[Definition | None, list[FieldError]]:
    """The definition and the problems found (the definition is None when any)."""
    errors: list[FieldError] = []
    if not isinstance(raw, Mapping):
        return None, [FieldError("the definition is a JSON object", pointer="#")]
    for name in raw:
        if name not in ("trigger", "steps", "exit", "reentry", "description"):
            errors.append(FieldError(f"unknown field {name!r}", pointer=f"#/{name}"))
    trigger = _trigger(raw.get("trigger"), errors)
    items = raw.get("steps")
    if not isinstance(items, list) or not items or len(items) > MAX_STEPS:
        errors.append(FieldError(f"a list of 1 to {MAX_STEPS} steps", pointer="#/steps"))
        items = []
    steps: dict[str, Step] = {}
    order: list[str] = []
    pointers: dict[str, str] = {}
    for index, item in enumerate(items):
        step = _step(item, index, errors)
        if step is None:
            continue
        if step.id in steps:
            errors.append(FieldError(f"the id {step.id!r} is used twice", f"#/steps/{index}/id"))
            continue
        steps[step.id] = step
        order.append(step.id)
        pointers[step.id] = f"#/steps/{index}"
    exits = _exits(raw.get("exit"), errors)
    mode, days = _reentry(raw.get("reentry"), errors)
    if errors or not order:
        return None, errors
    errors = _graph_errors(steps, order, pointers)
    if errors:
        return None, errors
    return Definition(trigger, steps, tuple(order), exits, mode, days), []


def parse(raw: Any) -> Definition:
    """The definition, or InvalidInput naming every problem with its pointer."""
    found, errors = check(raw)
    if found is None:
        first = errors[0]
        raise InvalidInput(
            f"The journey is not valid: {first.pointer} {first.detail}.",
            [FieldError(e.detail, pointer="#/definition" + (e.pointer or "#")[1:]) for e in errors],
        )
    return found
