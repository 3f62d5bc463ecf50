"""the tracked events log (Segment-spec events from every channel)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("anonymous_id", sa.String(length=200), nullable=True),
        sa.Column("previous_id", sa.String(length=200), nullable=True),
        sa.Column("group_id", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("timestamp", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("original_timestamp", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "properties", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "traits", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column(
            "context", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("message_id", name=op.f("uq_events_message_id")),
    )
    op.create_index("ix_events_anonymous_id_timestamp", "events", ["anonymous_id", "timestamp"])
    op.create_index("ix_events_timestamp", "events", ["timestamp"])
    op.create_index("ix_events_user_id_timestamp", "events", ["user_id", "timestamp"])


def downgrade() -> None:
    op.drop_table("events")
