"""a version number of the erasure tombstones

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 02:00:00

Every change to `erasure_tombstones` increments `tombstone_state.version` in the same
transaction; tracking's server processes keep the tombstones' digests in memory and
read them again when the number moved (`customers.privacy.blocked_digests`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    state = op.create_table(
        "tombstone_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tombstone_state")),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("tombstone_state")
