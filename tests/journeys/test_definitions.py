"""A journey's definition is checked when saved; each problem names its part."""

from __future__ import annotations

from typing import Any

import pytest

from parcours.core.errors import InvalidInput
from parcours.journeys.definition import parse

TRIGGER = {"type": "event", "event": "Product Added"}


def _pointers(definition: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse(definition)
    return [e.pointer or "" for e in caught.value.errors]


def test_a_valid_definition_starts_at_its_first_step() -> None:
    found = parse({"trigger": TRIGGER, "steps": [{"id": "a", "type": "exit"}]})
    assert found.start == "a"
    assert found.reentry == "never"


def test_an_unknown_step_type_is_refused() -> None:
    steps = [{"id": "a", "type": "teleport"}]
    assert _pointers({"trigger": TRIGGER, "steps": steps}) == ["#/definition/steps/0/type"]


def test_a_dangling_next_step_is_refused() -> None:
    steps = [{"id": "a", "type": "tag", "tag": "x", "next": "nowhere"}]
    assert _pointers({"trigger": TRIGGER, "steps": steps}) == ["#/definition/steps/0/next"]


def test_an_unreachable_step_is_refused() -> None:
    steps = [{"id": "a", "type": "exit"}, {"id": "b", "type": "exit"}]
    assert _pointers({"trigger": TRIGGER, "steps": steps}) == ["#/definition/steps/1"]


def test_a_cycle_without_a_wait_is_refused_but_one_with_a_wait_is_fine() -> None:
    loop = [
        {"id": "a", "type": "tag", "tag": "x", "next": "b"},
        {"id": "b", "type": "condition", "if": {"kind": "cart_open"}, "yes": "a", "no": "c"},
        {"id": "c", "type": "exit"},
    ]
    assert _pointers({"trigger": TRIGGER, "steps": loop}) == ["#/definition/steps/0"]
    waiting = [{**loop[0], "next": "w"}, {"id": "w", "type": "wait", "days": 1, "next": "b"}]
    assert parse({"trigger": TRIGGER, "steps": [*waiting, *loop[1:]]}).start == "a"


def test_an_unknown_trigger_and_a_bad_reentry_are_named() -> None:
    bad = {"trigger": {"type": "moon"}, "steps": [{"id": "a", "type": "exit"}],
           "reentry": {"mode": "sometimes"}}  # fmt: skip
    assert _pointers(bad) == ["#/definition/trigger/type", "#/definition/reentry/mode"]


def test_a_wait_for_an_event_needs_a_timeout() -> None:
    steps = [{"id": "w", "type": "wait", "until_event": "Order Completed"}]
    assert _pointers({"trigger": TRIGGER, "steps": steps}) == ["#/definition/steps/0"]
