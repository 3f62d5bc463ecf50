"""journeys, their versions, running instances and step log

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _utc() -> sa.types.TypeEngine[Any]:
    return parcours.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("key", name=op.f("uq_journeys_key")),
    )
    op.create_table(
        "journey_versions",
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", _json(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journeys.id"],
            name=op.f("fk_journey_versions_journey_id_journeys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("journey_id", "version", name=op.f("pk_journey_versions")),
    )
    op.create_table(
        "journey_instances",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("occurrence", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_step", sa.String(length=64), nullable=True),
        sa.Column("state", _json(), nullable=False),
        sa.Column("next_run_at", _utc(), nullable=True),
        sa.Column("since_seq", sa.BigInteger(), nullable=False),
        sa.Column("waiting_for", sa.String(length=200), nullable=True),
        sa.Column("waiting_since_seq", sa.BigInteger(), nullable=True),
        sa.Column("entered_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("exit_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journeys.id"],
            name=op.f("fk_journey_instances_journey_id_journeys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_instances")),
        sa.UniqueConstraint(
            "journey_id",
            "profile_id",
            "occurrence",
            name=op.f("uq_journey_instances_journey_id"),
        ),
    )
    op.create_index("ix_journey_instances_due", "journey_instances", ["status", "next_run_at"])
    op.create_index("ix_journey_instances_profile", "journey_instances", ["profile_id", "status"])
    op.create_index("ix_journey_instances_waiting", "journey_instances", ["waiting_for", "status"])
    op.create_table(
        "journey_step_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["journey_instances.id"],
            name=op.f("fk_journey_step_log_instance_id_journey_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_step_log")),
    )
    op.create_index(
        "ix_journey_step_log_journey", "journey_step_log", ["journey_id", "step_id", "outcome"]
    )
    op.create_index("ix_journey_step_log_instance", "journey_step_log", ["instance_id"])
    op.create_table(
        "journey_profile_tags",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("journey_key", sa.String(length=64), nullable=False),
        sa.Column("tagged_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "tag", name=op.f("pk_journey_profile_tags")),
    )


def downgrade() -> None:
    op.drop_table("journey_profile_tags")
    op.drop_index("ix_journey_step_log_instance", table_name="journey_step_log")
    op.drop_index("ix_journey_step_log_journey", table_name="journey_step_log")
    op.drop_table("journey_step_log")
    op.drop_index("ix_journey_instances_waiting", table_name="journey_instances")
    op.drop_index("ix_journey_instances_profile", table_name="journey_instances")
    op.drop_index("ix_journey_instances_due", table_name="journey_instances")
    op.drop_table("journey_instances")
    op.drop_table("journey_versions")
    op.drop_table("journeys")
