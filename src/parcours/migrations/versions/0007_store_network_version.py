"""store network version: lets every process know when its locator index is stale

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_network_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_network_version")),
    )
    # Stores created before this revision are in no index yet: any token will do.
    op.execute("INSERT INTO store_network_version (id, version) VALUES (1, 1)")


def downgrade() -> None:
    op.drop_table("store_network_version")
