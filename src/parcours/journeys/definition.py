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
from dataclasses import dataclass, field, replace
from datetime import time
from typing import Any

from parcours.core.errors import ONE_OF, FieldError, Refused, refusal

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

# A small journey, shown as the example of the API's schema and in the console's editor.
EXAMPLE = {
    "trigger": {"type": "event", "event": "Product Added"},
    "steps": [
        {"id": "wait", "type": "wait", "hours": 1, "next": "send"},
        {"id": "send", "type": "send", "template": "abandoned-cart"},
    ],
    "exit": [{"event": "Order Completed"}],
    "reentry": {"mode": "always"},
}

# What a definition may get wrong, as `message % values` so the console can say it in the
# reader's language (the API's `detail` is the English text).
LOCAL_TIME = "a local time of day such as 09:00"
TRIGGER_OBJECT = "give the trigger as an object with a type"
PROPERTIES = "an object of property values"
NAME_EVENT = "name the tracking event"
SEGMENT_KEY = "give the segment key"
DAYS_FROM_TO = "whole days from %(low)s to %(high)s"
KILOMETRES = "kilometres from 0.01 to 100"
EVENT_NAMES = "a list of event names"
CONDITION_OBJECT = "give a condition object"
NON_EMPTY_LIST = "a non-empty list"
GIVE_THE = "give the %(name)s"
HOW_LONG = "say how long: minutes, hours, days, until_local_time or until_event"
NUMBER_UP_TO = "a number from 0 to %(high)s"
TIMEOUT = "give the timeout (minutes, hours or days) of the wait for the event"
POINTS = "a whole number of points, not 0"
STEP_OBJECT = "a step is an object with an id and a type"
STEP_ID_FORM = "1-64 of a-z, 0-9, '-' and '_'"
STEP_TYPE = "unknown step type %(kind)s: use one of %(choices)s"
A_STEP_ID = "a step id"
YES_OR_NO = "give the yes and/or no step"
NO_SUCH_STEP = "no step has the id %(id)s"
UNREACHABLE = "the step %(id)s cannot be reached from the first step"
LOOP = "these steps loop without a wait: %(steps)s"
EXIT_RULES = "a list of exit rules"
EXIT_RULE = "give either an event or a segment_exited"
MODE_ONE_OF = "mode must be one of %(choices)s"
JSON_OBJECT = "the definition is a JSON object"
UNKNOWN_FIELD = "unknown field %(name)s"
STEPS_LIST = "a list of 1 to %(most)s steps"
ID_TWICE = "the id %(id)s is used twice"
NOT_VALID = "The journey is not valid: see below."
NOT_JSON = "The definition is not valid JSON: %(problem)s."
NOT_AN_OBJECT = "The definition must be a JSON object."
MESSAGES = (
    LOCAL_TIME, TRIGGER_OBJECT, ONE_OF, PROPERTIES, NAME_EVENT, SEGMENT_KEY, DAYS_FROM_TO,
    KILOMETRES, EVENT_NAMES, CONDITION_OBJECT, NON_EMPTY_LIST, GIVE_THE, HOW_LONG,
    NUMBER_UP_TO, TIMEOUT, POINTS, STEP_OBJECT, STEP_ID_FORM, STEP_TYPE, A_STEP_ID, YES_OR_NO,
    NO_SUCH_STEP, UNREACHABLE, LOOP, EXIT_RULES, EXIT_RULE, MODE_ONE_OF, JSON_OBJECT,
    UNKNOWN_FIELD, STEPS_LIST, ID_TWICE, NOT_VALID, NOT_JSON, NOT_AN_OBJECT,
)  # fmt: skip


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
        errors.append(refusal(LOCAL_TIME, pointer=pointer))
        return time(9, 0)


def _trigger(raw: Any, errors: list[FieldError]) -> Trigger:
    p = "#/trigger"
    if not isinstance(raw, dict):
        errors.append(refusal(TRIGGER_OBJECT, pointer=p))
        return Trigger("event", event="?")
    kind = raw.get("type")
    if kind not in TRIGGERS:
        errors.append(refusal(ONE_OF, pointer=f"{p}/type", choices=", ".join(TRIGGERS)))
        return Trigger("event", event="?")
    properties = raw.get("properties") or {}
    if not isinstance(properties, dict):
        errors.append(refusal(PROPERTIES, pointer=f"{p}/properties"))
        properties = {}
    if kind == "event":
        event = _text(raw.get("event"))
        if event is None:
            errors.append(refusal(NAME_EVENT, pointer=f"{p}/event"))
        channel = _text(raw.get("channel"))
        return Trigger("event", event=event, properties=properties, channel=channel)
    if kind == "segment_entered":
        segment = _text(raw.get("segment"))
        if segment is None:
            errors.append(refusal(SEGMENT_KEY, pointer=f"{p}/segment"))
        return Trigger(kind, segment=segment)
    if kind == "date_trait":
        trait = raw.get("trait", "birth_date")
        if trait not in DATE_TRAITS:
            errors.append(refusal(ONE_OF, pointer=f"{p}/trait", choices=", ".join(DATE_TRAITS)))
        days = raw.get("days_before", 0)
        if not _number(days, 0, 60) or not isinstance(days, int):
            errors.append(refusal(DAYS_FROM_TO, pointer=f"{p}/days_before", low=0, high=60))
            days = 0
        at = _local_time(raw.get("at_local_time"), f"{p}/at_local_time", errors)
        return Trigger(kind, trait=str(trait), days_before=days, local_time=at)
    if kind == "geo_entered":
        radius = raw.get("radius_km", 1.0)
        if not _number(radius, 0.01, 100):
            errors.append(refusal(KILOMETRES, pointer=f"{p}/radius_km"))
            radius = 1.0
        event = _text(raw.get("event")) or LOCATION_EVENT
        return Trigger(kind, event=event, store=_text(raw.get("store")), radius_km=float(radius))
    days = raw.get("viewed_within_days", 30)
    if not _number(days, 1, 365) or not isinstance(days, int):
        errors.append(refusal(DAYS_FROM_TO, pointer=f"{p}/viewed_within_days", low=1, high=365))
        days = 30
    names = raw.get("interest_events") or ["Product Viewed", "Product Added"]
    if not isinstance(names, list) or not all(_text(n) for n in names):
        errors.append(refusal(EVENT_NAMES, pointer=f"{p}/interest_events"))
        names = ["Product Viewed", "Product Added"]
    return Trigger(kind, viewed_within_days=days, interest_events=tuple(names))


def _condition(raw: Any, pointer: str, errors: list[FieldError]) -> None:
    if not isinstance(raw, dict) or len(raw) == 0:
        errors.append(refusal(CONDITION_OBJECT, pointer=pointer))
        return
    kind = raw.get("kind")
    if kind not in CONDITION_KINDS:
        choices = ", ".join(CONDITION_KINDS)
        errors.append(refusal(ONE_OF, pointer=f"{pointer}/kind", choices=choices))
        return
    if kind in ("all", "any"):
        items = raw.get("conditions")
        if not isinstance(items, list) or not items:
            errors.append(refusal(NON_EMPTY_LIST, pointer=f"{pointer}/conditions"))
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
        errors.append(refusal(GIVE_THE, pointer=f"{pointer}/{name}", name=name))
    if kind == "trait" and raw.get("operator", "eq") not in OPERATORS:
        choices = ", ".join(OPERATORS)
        errors.append(refusal(ONE_OF, pointer=f"{pointer}/operator", choices=choices))


def _wait(raw: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    kinds = [k for k in ("minutes", "hours", "days", "until_local_time", "until_event") if k in raw]
    if len(kinds) == 0:
        errors.append(refusal(HOW_LONG, pointer=pointer))
        return
    if "until_local_time" in raw:
        _local_time(raw["until_local_time"], f"{pointer}/until_local_time", errors)
    for unit, most in (("minutes", MAX_WAIT_DAYS * 1440), ("hours", MAX_WAIT_DAYS * 24)):
        if unit in raw and not _number(raw[unit], 0, most):
            errors.append(refusal(NUMBER_UP_TO, pointer=f"{pointer}/{unit}", high=most))
    if "days" in raw and not _number(raw["days"], 0, MAX_WAIT_DAYS):
        errors.append(refusal(NUMBER_UP_TO, pointer=f"{pointer}/days", high=MAX_WAIT_DAYS))
    if "until_event" in raw:
        if _text(raw["until_event"]) is None:
            errors.append(refusal(NAME_EVENT, pointer=f"{pointer}/until_event"))
        if not any(k in raw for k in ("minutes", "hours", "days")):
            errors.append(refusal(TIMEOUT, pointer=pointer))


def _action(kind: str, raw: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    required = {
        "send": "template",
        "promo_code": "promotion",
        "tag": "tag",
        "webhook": "event",
    }
    name = required.get(kind)
    if name is not None and _text(raw.get(name)) is None:
        errors.append(refusal(GIVE_THE, pointer=f"{pointer}/{name}", name=name))
    if kind == "points" and (not isinstance(raw.get("points"), int) or raw.get("points") == 0):
        errors.append(refusal(POINTS, pointer=f"{pointer}/points"))
    if kind == "promo_code" and "valid_days" in raw and not _number(raw["valid_days"], 1, 3650):
        errors.append(refusal(DAYS_FROM_TO, pointer=f"{pointer}/valid_days", low=1, high=3650))


def _step(raw: Any, index: int, errors: list[FieldError]) -> Step | None:
    pointer = f"#/steps/{index}"
    if not isinstance(raw, dict):
        errors.append(refusal(STEP_OBJECT, pointer=pointer))
        return None
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not STEP_ID.match(step_id):
        errors.append(refusal(STEP_ID_FORM, pointer=f"{pointer}/id"))
        return None
    kind = raw.get("type")
    if kind not in STEP_TYPES:
        choices = ", ".join(STEP_TYPES)
        errors.append(
            refusal(STEP_TYPE, pointer=f"{pointer}/type", kind=repr(kind), choices=choices)
        )
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
            errors.append(refusal(A_STEP_ID, pointer=f"{pointer}/{name}"))
            value = None
        links[name] = value
    if kind == "condition" and (links["yes"] is None and links["no"] is None):
        errors.append(refusal(YES_OR_NO, pointer=f"{pointer}/yes"))
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
                where = f"{pointers[step_id]}/{name}"
                errors.append(refusal(NO_SUCH_STEP, pointer=where, id=repr(target)))
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
            errors.append(refusal(UNREACHABLE, pointer=pointers[step_id], id=repr(step_id)))
    cycle = _instant_cycle(steps, order)
    if cycle:
        loop = " → ".join(cycle)
        errors.append(refusal(LOOP, pointer=pointers[cycle[0]], steps=loop))
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
        errors.append(refusal(EXIT_RULES, pointer="#/exit"))
        return ()
    rules = []
    for index, item in enumerate(raw):
        event = _text(item.get("event")) if isinstance(item, dict) else None
        segment = _text(item.get("segment_exited")) if isinstance(item, dict) else None
        if (event is None) == (segment is None):
            errors.append(refusal(EXIT_RULE, pointer=f"#/exit/{index}"))
            continue
        rules.append(ExitRule(event, segment))
    return tuple(rules)


def _reentry(raw: Any, errors: list[FieldError]) -> tuple[str, int]:
    if raw is None:
        return "never", 0
    if not isinstance(raw, dict) or raw.get("mode") not in REENTRY:
        errors.append(refusal(MODE_ONE_OF, pointer="#/reentry/mode", choices=", ".join(REENTRY)))
        return "never", 0
    days = raw.get("days", 0)
    if raw["mode"] == "after_days" and (not isinstance(days, int) or not 1 <= days <= 3650):
        errors.append(refusal(DAYS_FROM_TO, pointer="#/reentry/days", low=1, high=3650))
        days = 1
    return str(raw["mode"]), int(days or 0)


def check(raw: Any) -> tuple[Definition | None, list[FieldError]]:
    """The definition and the problems found (the definition is None when any)."""
    errors: list[FieldError] = []
    if not isinstance(raw, Mapping):
        return None, [refusal(JSON_OBJECT, pointer="#")]
    for name in raw:
        if name not in ("trigger", "steps", "exit", "reentry", "description"):
            errors.append(refusal(UNKNOWN_FIELD, pointer=f"#/{name}", name=repr(name)))
    trigger = _trigger(raw.get("trigger"), errors)
    items = raw.get("steps")
    if not isinstance(items, list) or not items or len(items) > MAX_STEPS:
        errors.append(refusal(STEPS_LIST, pointer="#/steps", most=MAX_STEPS))
        items = []
    steps: dict[str, Step] = {}
    order: list[str] = []
    pointers: dict[str, str] = {}
    for index, item in enumerate(items):
        step = _step(item, index, errors)
        if step is None:
            continue
        if step.id in steps:
            errors.append(refusal(ID_TWICE, pointer=f"#/steps/{index}/id", id=repr(step.id)))
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
        raise Refused(
            f"The journey is not valid: {first.pointer} {first.detail}.",
            [replace(e, pointer="#/definition" + (e.pointer or "#")[1:]) for e in errors],
            NOT_VALID,
        )
    return found
