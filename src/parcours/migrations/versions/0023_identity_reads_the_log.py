"""identity reads the tracking log with a cursor

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 23:30:00

Ingestion used to feed the identity graph in the request; the graph now reads the log
afterwards (`customers.identity_log`). Events already in the log were resolved when
they were stored, so its cursor starts at the log's head.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from parcours.core.db import UTCDateTime

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURSOR = "identity@events"


def upgrade() -> None:
    bind = op.get_bind()
    head = bind.execute(sa.text("SELECT coalesce(max(seq), 0) FROM events")).scalar()
    cursors = sa.table(
        "consumer_cursors",
        sa.column("consumer", sa.String),
        sa.column("position", sa.BigInteger),
        sa.column("updated_at", UTCDateTime(timezone=True)),
        sa.column("failures", sa.Integer),
    )
    op.bulk_insert(
        cursors,
        [
            {
                "consumer": CURSOR,
                "position": int(head or 0),
                "updated_at": datetime.now(UTC),
                "failures": 0,
            }
        ],
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM consumer_cursors WHERE consumer = 'identity@events'"))
