"""indexes for the segments' incremental pass: profiles changed since its last run

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 15:00:00

`changed_profiles` reads customers by `updated_at`, computed traits by `computed_at` and
consents by `at` within the last second: without these indexes each pass scanned the
three tables (python -m bench segments).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_customers_updated_at", "customers", ["updated_at"], unique=False)
    op.create_index("ix_consents_at", "consents", ["at"], unique=False)
    op.create_index(
        "ix_profile_computed_traits_computed_at",
        "profile_computed_traits",
        ["computed_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_profile_computed_traits_computed_at", table_name="profile_computed_traits")
    op.drop_index("ix_consents_at", table_name="consents")
    op.drop_index("ix_customers_updated_at", table_name="customers")
