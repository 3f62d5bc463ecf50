"""computed traits of profiles

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profile_computed_traits",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "channels", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("events_count", sa.BigInteger(), nullable=False),
        sa.Column("orders_count", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("average_basket_cents", sa.BigInteger(), nullable=True),
        sa.Column("favourite_category", sa.String(length=200), nullable=True),
        sa.Column("preferred_store_id", sa.Uuid(), nullable=True),
        sa.Column("last_purchase_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_purchase_cents", sa.BigInteger(), nullable=True),
        sa.Column("last_purchase_currency", sa.String(length=3), nullable=True),
        sa.Column("last_purchase_channel", sa.String(length=24), nullable=True),
        sa.Column("last_purchase_store_id", sa.Uuid(), nullable=True),
        sa.Column("recency_score", sa.SmallInteger(), nullable=True),
        sa.Column("frequency_score", sa.SmallInteger(), nullable=True),
        sa.Column("monetary_score", sa.SmallInteger(), nullable=True),
        sa.Column("computed_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["customers.id"],
            name=op.f("fk_profile_computed_traits_profile_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_profile_computed_traits")),
    )
    op.create_index(
        "ix_profile_computed_traits_preferred_store",
        "profile_computed_traits",
        ["preferred_store_id"],
    )


def downgrade() -> None:
    op.drop_table("profile_computed_traits")
