"""catalog: brands, categories, attributes, products, variants, media, channels,
listings, prices, and the product search index (FTS5 on SQLite, GIN on PostgreSQL)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import parcours.core.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_attributes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name_fr", sa.String(length=120), nullable=False),
        sa.Column("name_en", sa.String(length=120), nullable=False),
        sa.Column("localized", sa.Boolean(), nullable=False),
        sa.Column(
            "allowed_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_attributes")),
        sa.UniqueConstraint("code", name=op.f("uq_catalog_attributes_code")),
    )
    op.create_table(
        "catalog_brands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_brands")),
        sa.UniqueConstraint("code", name=op.f("uq_catalog_brands_code")),
    )
    op.create_table(
        "catalog_categories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("name_fr", sa.String(length=120), nullable=False),
        sa.Column("name_en", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["catalog_categories.id"],
            name=op.f("fk_catalog_categories_parent_id_catalog_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_categories")),
        sa.UniqueConstraint("code", name=op.f("uq_catalog_categories_code")),
    )
    op.create_index(
        op.f("ix_catalog_categories_parent_id"), "catalog_categories", ["parent_id"], unique=False
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "locales",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("prices_include_vat", sa.Boolean(), nullable=False),
        sa.Column(
            "required_attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("code", name=op.f("uq_channels_code")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=False),
        sa.Column("vat_rate_bp", sa.Integer(), nullable=False),
        sa.Column("name_fr", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("description_fr", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["catalog_brands.id"], name=op.f("fk_products_brand_id_catalog_brands")
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["catalog_categories.id"],
            name=op.f("fk_products_category_id_catalog_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("code", name=op.f("uq_products_code")),
    )
    op.create_index(op.f("ix_products_brand_id"), "products", ["brand_id"], unique=False)
    op.create_index(op.f("ix_products_category_id"), "products", ["category_id"], unique=False)
    op.create_table(
        "channel_listings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("visible_from", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("visible_to", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_channel_listings_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_channel_listings_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_listings")),
        sa.UniqueConstraint(
            "product_id", "channel_id", name=op.f("uq_channel_listings_product_id")
        ),
    )
    op.create_index(
        op.f("ix_channel_listings_channel_id"), "channel_listings", ["channel_id"], unique=False
    )
    op.create_table(
        "product_media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("alt_fr", sa.String(length=200), nullable=False),
        sa.Column("alt_en", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_media_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_media")),
    )
    op.create_index(
        op.f("ix_product_media_product_id"), "product_media", ["product_id"], unique=False
    )
    op.create_table(
        "product_variants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_variants_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_variants")),
        sa.UniqueConstraint("sku", name=op.f("uq_product_variants_sku")),
    )
    op.create_index(op.f("ix_product_variants_gtin"), "product_variants", ["gtin"], unique=False)
    op.create_index(
        op.f("ix_product_variants_product_id"), "product_variants", ["product_id"], unique=False
    )
    op.create_table(
        "prices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("variant_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("store_id", sa.Uuid(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("includes_vat", sa.Boolean(), nullable=False),
        sa.Column("sale_amount", sa.BigInteger(), nullable=True),
        sa.Column("sale_from", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sale_to", parcours.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_from", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", parcours.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_prices_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_prices_store_id_stores")
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variants.id"],
            name=op.f("fk_prices_variant_id_product_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prices")),
    )
    op.create_index(
        "ix_prices_variant_channel_from",
        "prices",
        ["variant_id", "channel_id", "valid_from"],
        unique=False,
    )
    _create_search_index()


def _create_search_index() -> None:
    # One search behaviour, two engines: FTS5 over the normalised text on SQLite, a GIN
    # index on its tsvector on PostgreSQL (see parcours.catalog.search).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE catalog_search USING fts5("
            "product_id UNINDEXED, body, tokenize = 'unicode61 remove_diacritics 2')"
        )
    else:
        op.execute(
            "CREATE INDEX ix_products_search ON products "
            "USING gin (to_tsvector('simple', search_text))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE catalog_search")
    else:
        op.execute("DROP INDEX ix_products_search")
    op.drop_index("ix_prices_variant_channel_from", table_name="prices")
    op.drop_table("prices")
    op.drop_index(op.f("ix_product_variants_product_id"), table_name="product_variants")
    op.drop_index(op.f("ix_product_variants_gtin"), table_name="product_variants")
    op.drop_table("product_variants")
    op.drop_index(op.f("ix_product_media_product_id"), table_name="product_media")
    op.drop_table("product_media")
    op.drop_index(op.f("ix_channel_listings_channel_id"), table_name="channel_listings")
    op.drop_table("channel_listings")
    op.drop_index(op.f("ix_products_category_id"), table_name="products")
    op.drop_index(op.f("ix_products_brand_id"), table_name="products")
    op.drop_table("products")
    op.drop_table("channels")
    op.drop_index(op.f("ix_catalog_categories_parent_id"), table_name="catalog_categories")
    op.drop_table("catalog_categories")
    op.drop_table("catalog_brands")
    op.drop_table("catalog_attributes")
