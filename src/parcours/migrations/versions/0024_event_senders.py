"""the tracking log's index by sender moves out of ingestion

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 01:30:00

The log's user id and anonymous id indexes were written by every ingestion request;
the identity reader of the log now files each event under its sender ids in
`event_senders` (`customers.identity_log`). Events the reader has passed are filed
here; the ones after its position will be filed by its next pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import parcours.core.db

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FILE = (  # constants only
    "INSERT INTO event_senders (kind, value, timestamp, seq) "
    "SELECT '{kind}', {kind}, timestamp, seq FROM events "
    "WHERE {kind} IS NOT NULL AND seq <= :position"
)


def upgrade() -> None:
    op.create_table(
        "event_senders",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("timestamp", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"],
            ["events.seq"],
            name=op.f("fk_event_senders_seq_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "value", "timestamp", "seq", name=op.f("pk_event_senders")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_event_senders_seq"), "event_senders", ["seq"])
    bind = op.get_bind()
    position = bind.execute(
        sa.text("SELECT position FROM consumer_cursors WHERE consumer = 'identity@events'")
    ).scalar()
    for kind in ("user_id", "anonymous_id"):
        bind.execute(sa.text(_FILE.format(kind=kind)), {"position": int(position or 0)})
    op.drop_index("ix_events_user_id_timestamp", table_name="events")
    op.drop_index("ix_events_anonymous_id_timestamp", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_user_id_timestamp", "events", ["user_id", "timestamp"])
    op.create_index("ix_events_anonymous_id_timestamp", "events", ["anonymous_id", "timestamp"])
    op.drop_index(op.f("ix_event_senders_seq"), table_name="event_senders")
    op.drop_table("event_senders")
