"""store footfall (visitors per store and hour) and report email subscriptions for the
insight context

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import parcours.core.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "footfall",
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("hour_start", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("updated_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "hour_start", name=op.f("pk_footfall")),
    )
    op.create_table(
        "report_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("store", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_period_start", sa.Date(), nullable=False),
        sa.Column("last_sent_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_subscriptions")),
    )


def downgrade() -> None:
    op.drop_table("report_subscriptions")
    op.drop_table("footfall")
