"""Time-driven inventory work the worker runs: expiring overdue reservations."""

from __future__ import annotations

from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.events import PeriodicJob
from parcours.inventory.service import release_expired_reservations

EXPIRY_BATCH = 500


def expire_reservations(db: Database, clock: Clock) -> int:
    """Expire every overdue reservation, one batch per transaction; how many."""
    total = 0
    while True:
        with db.transaction() as session:
            done = release_expired_reservations(session, clock.now(), EXPIRY_BATCH)
        total += done
        if done < EXPIRY_BATCH:
            return total


def expire_reservations_job() -> PeriodicJob:
    """A fresh job (each worker keeps its own `next_due`), every 15 seconds."""
    return PeriodicJob("inventory.expire_reservations", 15.0, expire_reservations)


EXPIRE_RESERVATIONS_JOB = "inventory.expire_reservations"
