"""stores: opening-hour exceptions and the locator's spatial index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:31:00.036903
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_exceptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column(
            "hours",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_store_exceptions_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_exceptions")),
        sa.UniqueConstraint("store_id", "day", name="uq_store_exceptions_store_day"),
    )
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.create_index("ix_stores_lat_lon", ["lat", "lon"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.drop_index("ix_stores_lat_lon")
    op.drop_table("store_exceptions")
