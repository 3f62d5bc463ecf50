"""stock items: the SKUs inventory tracks, declared by the catalogue

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import parcours.core.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stock_items",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_stock_items")),
    )
    # Every SKU already in the catalogue or already stocked stays stockable.
    op.execute(
        "INSERT INTO stock_items (sku, created_at) SELECT sku, CURRENT_TIMESTAMP FROM ("
        "SELECT sku FROM product_variants UNION SELECT sku FROM stock_levels "
        "UNION SELECT sku FROM stock_movements UNION SELECT sku FROM reservations) AS known"
    )


def downgrade() -> None:
    op.drop_table("stock_items")
