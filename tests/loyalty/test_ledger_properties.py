"""Properties of the points ledger (hypothesis): the balance is the sum of the entries and
never negative, expiry takes the oldest points first (replays: see test_points.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from parcours.loyalty import ledger

START = datetime(2026, 1, 1, tzinfo=UTC)
steps = st.lists(
    st.tuples(st.sampled_from(["earn", "spend"]), st.integers(1, 500), st.integers(0, 40)),
    max_size=40,
)


def play(moves: list[tuple[str, int, int]]) -> list[ledger.Entry]:
    """Apply moves like the guarded ledger does: a spend beyond the balance is refused."""
    entries: list[ledger.Entry] = []
    at = START
    for kind, points, days in moves:
        at += timedelta(days=days)
        if kind == "spend" and points > ledger.balance(entries):
            continue
        signed = points if kind == "earn" else -points
        expires = at + timedelta(days=365) if kind == "earn" else None
        entries.append(ledger.Entry(len(entries) + 1, kind, signed, at, expires))
    return entries


@given(steps)
def test_the_balance_is_the_sum_and_never_negative(moves: list[tuple[str, int, int]]) -> None:
    entries = play(moves)
    running = 0
    for entry in entries:
        running += entry.points
        assert running >= 0
    assert ledger.balance(entries) == sum(e.points for e in entries)
    assert sum(lot.remaining for lot in ledger.lots(entries)) == ledger.balance(entries)


@given(steps, st.integers(0, 2_000))
@settings(max_examples=200)
def test_expiry_takes_the_oldest_points_first(moves: list[tuple[str, int, int]], days: int) -> None:
    entries = play(moves)
    at = START + timedelta(days=days)
    due, _ = ledger.due_to_expire(entries, at)
    assert 0 <= due <= ledger.balance(entries)
    after = [*entries, ledger.Entry(len(entries) + 1, "expire", -due, at)]
    lots = ledger.lots(after)
    assert all(lot.remaining == 0 for lot in lots if lot.expires_at and lot.expires_at <= at)
    assert ledger.due_to_expire(after, at)[0] == 0  # running expiry again takes nothing
