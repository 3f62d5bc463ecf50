"""consent wording and proof, double opt-in, erasure tombstones, imports

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_secrets")),
    )
    op.add_column(
        "customers",
        sa.Column("erased_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("consents", sa.Column("wording_version", sa.String(length=64), nullable=True))
    op.add_column("consents", sa.Column("evidence", JSON, nullable=True))
    op.create_table(
        "consent_confirmations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("wording_version", sa.String(length=64), nullable=True),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("evidence", JSON, nullable=True),
        sa.Column("requested_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_consent_confirmations_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_confirmations")),
    )
    op.create_index(
        op.f("ix_consent_confirmations_customer_id"), "consent_confirmations", ["customer_id"]
    )
    op.create_index(op.f("ix_consent_confirmations_email"), "consent_confirmations", ["email"])
    op.create_index(
        op.f("ix_consent_confirmations_expires_at"), "consent_confirmations", ["expires_at"]
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index(op.f("ix_erasures_customer_id"), "erasures", ["customer_id"])
    op.create_table(
        "erasure_tombstones",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("erasure_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["erasure_id"],
            ["erasures.id"],
            name=op.f("fk_erasure_tombstones_erasure_id_erasures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_erasure_tombstones")),
    )
    op.create_index(op.f("ix_erasure_tombstones_erasure_id"), "erasure_tombstones", ["erasure_id"])
    op.create_table(
        "customer_imports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("plan_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("rows_imported", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.Column("rows_linked", sa.BigInteger(), nullable=False),
        sa.Column("started_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_imports")),
    )
    op.create_index(op.f("ix_customer_imports_updated_at"), "customer_imports", ["updated_at"])
    op.create_index(
        "ux_customer_imports_file_plan",
        "customer_imports",
        ["file_sha256", "plan_sha256"],
        unique=True,
    )
    op.create_table(
        "customer_import_errors",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("row", sa.BigInteger(), nullable=False),
        sa.Column("column", sa.String(length=120), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["customer_imports.id"],
            name=op.f("fk_customer_import_errors_import_id_customer_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_import_errors")),
    )
    op.create_index(
        op.f("ix_customer_import_errors_import_id"), "customer_import_errors", ["import_id"]
    )


def downgrade() -> None:
    op.drop_table("customer_import_errors")
    op.drop_table("customer_imports")
    op.drop_table("erasure_tombstones")
    op.drop_table("erasures")
    op.drop_table("consent_confirmations")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_column("evidence")
        batch_op.drop_column("wording_version")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
    op.drop_table("instance_secrets")
