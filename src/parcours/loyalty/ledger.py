"""The arithmetic of a member's points ledger, without a database.

Entries are signed. Each positive entry (an `earn`, or a positive `adjust`) opens a *lot*
that expires at its `expires_at`; every negative entry (redeem, expire, reversal,
negative adjust) consumes the oldest lots first (FIFO). The balance is the sum of the
entries; what expires at a time is what is left of the lots whose date has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Entry:
    id: int
    kind: str
    points: int
    created_at: datetime
    expires_at: datetime | None = None


@dataclass
class Lot:
    entry_id: int
    points: int
    remaining: int
    expires_at: datetime | None


def balance(entries: Sequence[Entry]) -> int:
    return sum(entry.points for entry in entries)


def lots(entries: Sequence[Entry]) -> list[Lot]:
    """The lots of the positive entries, each with what debits (oldest lots first) left."""
    ordered = sorted(entries, key=lambda e: (e.created_at, e.id))
    out: list[Lot] = []
    debt = 0  # points spent before any lot could cover them (never, with a guarded ledger)
    for entry in ordered:
        if entry.points > 0:
            lot = Lot(entry.id, entry.points, entry.points, entry.expires_at)
            taken = min(debt, lot.remaining)
            lot.remaining -= taken
            debt -= taken
            out.append(lot)
            continue
        owed = -entry.points
        for lot in out:
            if owed == 0:
                break
            taken = min(owed, lot.remaining)
            lot.remaining -= taken
            owed -= taken
        debt += owed
    return out


def due_to_expire(entries: Sequence[Entry], at: datetime) -> tuple[int, int | None]:
    """Points whose lot has expired by `at` and are still unspent, and the id of the last
    such lot (it names the `expire` entry, so running expiry twice writes nothing)."""
    due = [lot for lot in lots(entries) if lot.expires_at is not None and lot.expires_at <= at]
    points = sum(lot.remaining for lot in due)
    return points, (max(lot.entry_id for lot in due) if due and points else None)


def expiring_between(entries: Sequence[Entry], start: datetime, end: datetime) -> int:
    """Unspent points whose lots expire in [start, end)."""
    return sum(
        lot.remaining
        for lot in lots(entries)
        if lot.expires_at is not None and start <= lot.expires_at < end
    )
