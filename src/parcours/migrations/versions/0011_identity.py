"""the identity graph: identifiers, observations, merges and traits

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time() -> parcours.core.db.UTCDateTime:
    return parcours.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("customers", sa.Column("merged_into_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("ix_customers_merged_into_id"), "customers", ["merged_into_id"])
    op.create_table(
        "identity_clusters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conflicted", sa.Boolean(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_clusters")),
    )
    op.create_table(
        "identity_identifiers",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("origin_profile_id", sa.Uuid(), nullable=False),
        sa.Column("cluster_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("first_seen", _time(), nullable=False),
        sa.Column("last_seen", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["customers.id"],
            name=op.f("fk_identity_identifiers_profile_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "value", name=op.f("pk_identity_identifiers")),
    )
    op.create_index(
        op.f("ix_identity_identifiers_cluster_id"), "identity_identifiers", ["cluster_id"]
    )
    op.create_index(
        op.f("ix_identity_identifiers_profile_id"), "identity_identifiers", ["profile_id"]
    )
    op.create_table(
        "identity_observations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("cluster_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("identifiers", JSON, nullable=False),
        sa.Column("link_key", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("observed_at", _time(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("keep_profile_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_observations")),
    )
    op.create_index(
        "ix_identity_observations_cluster_observed",
        "identity_observations",
        ["cluster_id", "observed_at"],
    )
    op.create_index(
        op.f("ix_identity_observations_link_key"), "identity_observations", ["link_key"]
    )
    op.create_table(
        "identity_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cluster_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("kept_id", sa.Uuid(), nullable=False),
        sa.Column("absorbed_id", sa.Uuid(), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("identifiers", JSON, nullable=False),
        sa.Column("kept_identifiers", JSON, nullable=False),
        sa.Column("absorbed_identifiers", JSON, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("observed_at", _time(), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("undone_at", _time(), nullable=True),
        sa.Column("undone_by", sa.String(length=100), nullable=True),
        sa.Column("undone_reason", sa.String(length=16), nullable=True),
        sa.Column("separating", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_merges")),
    )
    op.create_index(op.f("ix_identity_merges_absorbed_id"), "identity_merges", ["absorbed_id"])
    op.create_index(op.f("ix_identity_merges_cluster_id"), "identity_merges", ["cluster_id"])
    op.create_index(op.f("ix_identity_merges_kept_id"), "identity_merges", ["kept_id"])
    op.create_table(
        "identity_traits",
        sa.Column("anchor_kind", sa.String(length=32), nullable=False),
        sa.Column("anchor_value", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("value", JSON, nullable=True),
        sa.Column("observed_at", _time(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint(
            "anchor_kind", "anchor_value", "name", "source", name=op.f("pk_identity_traits")
        ),
    )


def downgrade() -> None:
    op.drop_table("identity_traits")
    op.drop_table("identity_merges")
    op.drop_table("identity_observations")
    op.drop_table("identity_identifiers")
    op.drop_table("identity_clusters")
    op.drop_index(op.f("ix_customers_merged_into_id"), table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("merged_into_id")
