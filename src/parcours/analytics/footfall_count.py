"""One door-counter reading, apart from `footfall` (SQLAlchemy) so the facade can name it
without loading the database layer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FootfallCount:
    """Visitors who entered `store` (its code) during the hour starting at `hour` (UTC)."""

    store: str
    hour: datetime
    visitors: int
