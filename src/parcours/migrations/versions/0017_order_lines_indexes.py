"""order lines lose two indexes that no query needs: ix_order_lines_order_id
(uq_order_lines_order_id, on (order_id, line_no), serves lookups by order) and
ix_order_lines_sku (nothing looks lines up by SKU); a bulk history load writes each
line into three B-trees instead of five

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 11:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_order_lines_order_id", table_name="order_lines")
    op.drop_index("ix_order_lines_sku", table_name="order_lines")


def downgrade() -> None:
    op.create_index("ix_order_lines_sku", "order_lines", ["sku"], unique=False)
    op.create_index("ix_order_lines_order_id", "order_lines", ["order_id"], unique=False)
