"""order lines lose their fulfilment_id index: the lines of a fulfilment are read
through their order (uq_order_lines_order_id, on (order_id, line_no)), as every other
lookup of lines is, and a bulk history load writes each line into three B-trees instead
of four (fulfilments are never deleted, so no foreign-key check needs the index)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_order_lines_fulfilment_id", table_name="order_lines")


def downgrade() -> None:
    op.create_index("ix_order_lines_fulfilment_id", "order_lines", ["fulfilment_id"], unique=False)
