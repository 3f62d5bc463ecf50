"""catalog: one-voice rules, per-channel listing texts, and channel storefront URLs

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import parcours.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_one_voice_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("reference_channel_id", sa.Uuid(), nullable=False),
        sa.Column("price_tolerance_bp", sa.Integer(), nullable=False),
        sa.Column("price_tolerance_cents", sa.Integer(), nullable=False),
        sa.Column("allow_name_override", sa.Boolean(), nullable=False),
        sa.Column("allow_description_override", sa.Boolean(), nullable=False),
        sa.Column("availability_must_match", sa.Boolean(), nullable=False),
        sa.Column("updated_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_catalog_one_voice_rules_channel_id_channels"),
        ),
        sa.ForeignKeyConstraint(
            ["reference_channel_id"],
            ["channels.id"],
            name=op.f("fk_catalog_one_voice_rules_reference_channel_id_channels"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_one_voice_rules")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_catalog_one_voice_rules_channel_id")),
    )
    with op.batch_alter_table("channel_listings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_fr", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("name_en", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("description_fr", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("description_en", sa.Text(), nullable=True))
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storefront_url", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_column("storefront_url")
    with op.batch_alter_table("channel_listings", schema=None) as batch_op:
        batch_op.drop_column("description_en")
        batch_op.drop_column("description_fr")
        batch_op.drop_column("name_en")
        batch_op.drop_column("name_fr")
    op.drop_table("catalog_one_voice_rules")
