"""The worker's job: start due campaigns, then send what is due."""

from __future__ import annotations

from parcours.core.clock import Clock
from parcours.core.db import Database
from parcours.core.events import PeriodicJob
from parcours.engagement.channels import Outlets

JOB_NAME = "engagement.deliveries"


def run_due(database: Database, clock: Clock, outlets: Outlets) -> int:
    """One round: campaigns whose time came are expanded into queued deliveries, then
    queued and deferred deliveries that are due are sent, then finished campaigns are
    marked sent. Returns how many things moved."""
    from parcours.engagement import campaigns, sending

    moved = campaigns.start_due(database, clock, timezone=outlets.timezone)
    moved += sending.send_due(database, clock, outlets)
    return moved + campaigns.finish_done(database, clock)


def deliveries_job(outlets: Outlets | None = None, every_s: float = 30.0) -> PeriodicJob:
    """The periodic job (the installation's outlets by default)."""

    def run(database: Database, clock: Clock) -> int:
        from parcours.core.settings import get_settings

        return run_due(database, clock, outlets or Outlets.from_settings(get_settings()))

    return PeriodicJob(JOB_NAME, every_s, run)
