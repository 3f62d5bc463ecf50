"""promotions, promo codes and the loyalty programme

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "loyalty_accounts",
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_loyalty_accounts_balance_not_negative")),
        sa.PrimaryKeyConstraint("profile_id", name=op.f("pk_loyalty_accounts")),
    )
    op.create_table(
        "loyalty_programme",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("points_per_euro", sa.Integer(), nullable=False),
        sa.Column("expiry_months", sa.Integer(), nullable=False),
        sa.Column("tiers", JSON_TYPE, nullable=False),
        sa.Column("updated_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_programme")),
    )
    op.create_table(
        "loyalty_rewards",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name_fr", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("points_cost", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("promotion_key", sa.String(length=64), nullable=True),
        sa.Column("amount_off", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_rewards")),
        sa.UniqueConstraint("key", name=op.f("uq_loyalty_rewards_key")),
    )
    op.create_table(
        "points_ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=160), nullable=False),
        sa.Column("order_reference", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=24), nullable=True),
        sa.Column("expires_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_ledger")),
        sa.UniqueConstraint("reference", name=op.f("uq_points_ledger_reference")),
    )
    op.create_index(
        op.f("ix_points_ledger_order_reference"), "points_ledger", ["order_reference"], unique=False
    )
    op.create_index(
        "ix_points_ledger_profile_at", "points_ledger", ["profile_id", "created_at"], unique=False
    )
    op.create_table(
        "promo_code_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("promotion_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=True),
        sa.Column("order_reference", sa.String(length=64), nullable=True),
        sa.Column("profile_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("redeemed_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_code_redemptions")),
    )
    op.create_index(
        op.f("ix_promo_code_redemptions_code"), "promo_code_redemptions", ["code"], unique=False
    )
    op.create_index(
        op.f("ix_promo_code_redemptions_profile_id"),
        "promo_code_redemptions",
        ["profile_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_promo_code_redemptions_promotion_id"),
        "promo_code_redemptions",
        ["promotion_id"],
        unique=False,
    )
    op.create_table(
        "promo_codes",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("promotion_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("profile_id", sa.Uuid(), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("per_customer_max", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "max_uses IS NULL OR uses <= max_uses", name=op.f("ck_promo_codes_uses_within_cap")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_promo_codes")),
    )
    op.create_index(op.f("ix_promo_codes_batch_id"), "promo_codes", ["batch_id"], unique=False)
    op.create_index(op.f("ix_promo_codes_profile_id"), "promo_codes", ["profile_id"], unique=False)
    op.create_index(
        op.f("ix_promo_codes_promotion_id"), "promo_codes", ["promotion_id"], unique=False
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name_fr", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("percent_bp", sa.Integer(), nullable=True),
        sa.Column("amount_off", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("buy_quantity", sa.Integer(), nullable=True),
        sa.Column("get_quantity", sa.Integer(), nullable=True),
        sa.Column("group_by", sa.String(length=16), nullable=False),
        sa.Column("categories", JSON_TYPE, nullable=False),
        sa.Column("skus", JSON_TYPE, nullable=False),
        sa.Column("channels", JSON_TYPE, nullable=False),
        sa.Column("store_ids", JSON_TYPE, nullable=False),
        sa.Column("min_subtotal", sa.Integer(), nullable=False),
        sa.Column("starts_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
        sa.UniqueConstraint("key", name=op.f("uq_promotions_key")),
    )
    op.create_table(
        "reward_redemptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("reward_id", sa.Uuid(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("amount_off", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_redemptions")),
    )
    op.create_index(
        op.f("ix_reward_redemptions_profile_id"), "reward_redemptions", ["profile_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_reward_redemptions_profile_id"), table_name="reward_redemptions")
    op.drop_table("reward_redemptions")
    op.drop_table("promotions")
    op.drop_index(op.f("ix_promo_codes_promotion_id"), table_name="promo_codes")
    op.drop_index(op.f("ix_promo_codes_profile_id"), table_name="promo_codes")
    op.drop_index(op.f("ix_promo_codes_batch_id"), table_name="promo_codes")
    op.drop_table("promo_codes")
    op.drop_index(
        op.f("ix_promo_code_redemptions_promotion_id"), table_name="promo_code_redemptions"
    )
    op.drop_index(op.f("ix_promo_code_redemptions_profile_id"), table_name="promo_code_redemptions")
    op.drop_index(op.f("ix_promo_code_redemptions_code"), table_name="promo_code_redemptions")
    op.drop_table("promo_code_redemptions")
    op.drop_index("ix_points_ledger_profile_at", table_name="points_ledger")
    op.drop_index(op.f("ix_points_ledger_order_reference"), table_name="points_ledger")
    op.drop_table("points_ledger")
    op.drop_table("loyalty_rewards")
    op.drop_table("loyalty_programme")
    op.drop_table("loyalty_accounts")
