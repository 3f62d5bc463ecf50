"""Rewards of the catalogue are renamed, repriced, switched off and back on; a bad change
is refused with its field named and changes nothing."""

from __future__ import annotations

import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput, NotFound
from parcours.loyalty import programme

FIVE = {"key": "five", "name_fr": "5 € offerts", "name_en": "5 € off", "points_cost": 100,
        "kind": "discount", "amount_off": 500}  # fmt: skip


def test_a_reward_is_repriced_renamed_and_switched_off_and_on(
    db: Database, clock: ManualClock
) -> None:
    with db.transaction() as session:
        programme.add_reward(session, clock.now(), FIVE)
        changed = programme.update_reward(
            session, "five", {"points_cost": 150, "name_en": "Five euros off", "amount_off": 600}
        )
        assert (changed.points_cost, changed.name_en, changed.amount_off) == (
            150,
            "Five euros off",
            600,
        )
        programme.update_reward(session, "five", {"active": False})
        assert programme.list_rewards(session, active_only=True) == []
        programme.update_reward(session, "five", {"active": True})
        assert [r.key for r in programme.list_rewards(session, active_only=True)] == ["five"]


def test_a_bad_change_names_each_field_and_changes_nothing(
    db: Database, clock: ManualClock
) -> None:
    with db.transaction() as session:
        programme.add_reward(session, clock.now(), FIVE)
        with pytest.raises(InvalidInput) as refused:
            programme.update_reward(
                session, "five", {"points_cost": 0, "name_fr": " ", "amount_off": -1}
            )
        pointers = {e.pointer for e in refused.value.errors}
        assert pointers == {"#/points_cost", "#/name_fr", "#/amount_off"}
        [kept] = programme.list_rewards(session)
        assert (kept.points_cost, kept.name_fr, kept.amount_off) == (100, "5 € offerts", 500)


def test_an_unknown_reward_cannot_be_changed(db: Database) -> None:
    with db.transaction() as session, pytest.raises(NotFound):
        programme.update_reward(session, "nope", {"points_cost": 10})
