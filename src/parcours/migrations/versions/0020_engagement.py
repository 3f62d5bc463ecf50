"""message templates, deliveries and campaigns

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = parcours.core.db.UTCDateTime
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("archived_at", UTC(timezone=True), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_message_templates")),
    )
    op.create_table(
        "message_template_versions",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.ForeignKeyConstraint(
            ["key"],
            ["message_templates.key"],
            name=op.f("fk_message_template_versions_key_message_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "version", name=op.f("pk_message_template_versions")),
    )
    op.create_table(
        "contact_policies",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("max_messages", sa.Integer(), nullable=True),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("quiet_days", JSON, nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=160), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_contact_policies")),
    )
    op.create_table(
        "message_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("template_key", sa.String(length=64), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("context", JSON, nullable=True),
        sa.Column("scheduled_for", UTC(timezone=True), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.Column("sent_at", UTC(timezone=True), nullable=True),
        sa.Column("opened_at", UTC(timezone=True), nullable=True),
        sa.Column("clicked_at", UTC(timezone=True), nullable=True),
        sa.Column("open_count", sa.Integer(), nullable=False),
        sa.Column("click_count", sa.Integer(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_deliveries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_message_deliveries_idempotency_key")),
    )
    op.create_index("ix_message_deliveries_due", "message_deliveries", ["status", "scheduled_for"])
    op.create_index(
        "ix_message_deliveries_profile_channel_sent",
        "message_deliveries",
        ["profile_id", "channel", "sent_at"],
    )
    op.create_index(
        "ix_message_deliveries_campaign_variant", "message_deliveries", ["campaign_id", "variant"]
    )
    op.create_table(
        "message_bounces",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address_digest", sa.String(length=64), nullable=False),
        sa.Column("hard", sa.Boolean(), nullable=False),
        sa.Column("soft_count", sa.Integer(), nullable=False),
        sa.Column("last_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "address_digest", name=op.f("pk_message_bounces")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("holdout_percent", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("send_at", UTC(timezone=True), nullable=True),
        sa.Column("local_date", sa.Date(), nullable=True),
        sa.Column("local_time", sa.String(length=5), nullable=True),
        sa.Column("audience_size", sa.Integer(), nullable=True),
        sa.Column("started_at", UTC(timezone=True), nullable=True),
        sa.Column("finished_at", UTC(timezone=True), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=160), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )


def downgrade() -> None:
    op.drop_table("campaigns")
    op.drop_table("message_bounces")
    op.drop_index("ix_message_deliveries_campaign_variant", table_name="message_deliveries")
    op.drop_index("ix_message_deliveries_profile_channel_sent", table_name="message_deliveries")
    op.drop_index("ix_message_deliveries_due", table_name="message_deliveries")
    op.drop_table("message_deliveries")
    op.drop_table("contact_policies")
    op.drop_table("message_template_versions")
    op.drop_table("message_templates")
