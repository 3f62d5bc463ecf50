"""What a sale needs to name the SKUs it sold: product names and category, in one query.

Orders keep a snapshot of these on their lines (a later rename does not touch a placed
order), so checkout asks for every SKU of a cart at once instead of product by product.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours.catalog.models import Category, Product, Variant


@dataclass(frozen=True)
class SkuLabel:
    sku: str
    product_code: str
    name_fr: str
    name_en: str
    category: str  # the category's code
    vat_rate_bp: int

    def name(self, locale: str) -> str:
        """The product name in `locale` (French when the English one is missing)."""
        return self.name_en if locale == "en" and self.name_en else self.name_fr


def sku_labels(session: Session, skus: Iterable[str]) -> dict[str, SkuLabel]:
    """Names, category and VAT rate of many SKUs in one query (unknown SKUs are absent)."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    rows = session.execute(
        select(
            Variant.sku,
            Product.code,
            Product.name_fr,
            Product.name_en,
            Category.code.label("category"),
            Product.vat_rate_bp,
        )
        .join(Product, Product.id == Variant.product_id)
        .join(Category, Category.id == Product.category_id)
        .where(Variant.sku.in_(wanted))
    )
    return {row.sku: SkuLabel(*row) for row in rows}
