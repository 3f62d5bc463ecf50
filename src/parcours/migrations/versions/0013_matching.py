"""probabilistic matching runs and the review queue

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "match_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("started_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("source_a", sa.String(length=64), nullable=True),
        sa.Column("source_b", sa.String(length=64), nullable=True),
        sa.Column("engine", sa.String(length=16), nullable=False),
        sa.Column("lower_threshold", sa.Float(), nullable=False),
        sa.Column("upper_threshold", sa.Float(), nullable=False),
        sa.Column("auto_merge", sa.Boolean(), nullable=False),
        sa.Column("blocking", _json(), nullable=False),
        sa.Column("fields", _json(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("trained", sa.Boolean(), nullable=False),
        sa.Column("profiles_a", sa.Integer(), nullable=False),
        sa.Column("profiles_b", sa.Integer(), nullable=False),
        sa.Column("pairs_found", sa.Integer(), nullable=False),
        sa.Column("pairs_known", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.Column("merge_refused", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_runs")),
    )
    op.create_table(
        "match_candidates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("profile_a", sa.Uuid(), nullable=False),
        sa.Column("profile_b", sa.Uuid(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("agreement", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("merge_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["profile_a"],
            ["customers.id"],
            name=op.f("fk_match_candidates_profile_a_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["profile_b"],
            ["customers.id"],
            name=op.f("fk_match_candidates_profile_b_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["match_runs.id"],
            name=op.f("fk_match_candidates_run_id_match_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_candidates")),
        sa.UniqueConstraint("profile_a", "profile_b", name="uq_match_candidates_pair"),
    )
    op.create_index(
        op.f("ix_match_candidates_profile_b"), "match_candidates", ["profile_b"], unique=False
    )
    op.create_index(
        op.f("ix_match_candidates_run_id"), "match_candidates", ["run_id"], unique=False
    )
    op.create_index(
        "ix_match_candidates_status_probability",
        "match_candidates",
        ["status", "probability"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_match_candidates_status_probability", table_name="match_candidates")
    op.drop_index(op.f("ix_match_candidates_run_id"), table_name="match_candidates")
    op.drop_index(op.f("ix_match_candidates_profile_b"), table_name="match_candidates")
    op.drop_table("match_candidates")
    op.drop_table("match_runs")
