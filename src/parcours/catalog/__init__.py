"""Catalog context: one product catalogue for every channel (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.catalog.gtin import gtin_check_digit, gtin_problem, is_valid_gtin, make_gtin13
from parcours.catalog.search import PRICE_BANDS, SearchResult, search_products
from parcours.catalog.service import (
    CHANNEL_KINDS,
    LOCALES,
    VAT_RATES_BP,
    Completeness,
    PriceQuote,
    ProductView,
    add_attribute,
    add_brand,
    add_category,
    add_channel,
    add_listings,
    completeness,
    count_products,
    count_variants,
    create_product,
    current_price,
    current_prices,
    get_channel,
    get_product,
    known_skus,
    list_channels,
    list_products,
    price_history,
    set_listing,
    set_price,
    update_product,
)
from parcours.catalog.transfer import (
    ImportRejected,
    ImportReport,
    RowError,
    export_rows,
    import_file,
    import_rows,
    write_export,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import typer

    from parcours.core.db import Database


def cli_app(database: Callable[[], Database]) -> typer.Typer:
    """The `parcours catalog` command group; `database` opens the migrated database."""
    from parcours.catalog.cli import make_app

    return make_app(database)


__all__ = [
    "CHANNEL_KINDS",
    "LOCALES",
    "PRICE_BANDS",
    "VAT_RATES_BP",
    "Completeness",
    "ImportRejected",
    "ImportReport",
    "PriceQuote",
    "ProductView",
    "RowError",
    "SearchResult",
    "add_attribute",
    "add_brand",
    "add_category",
    "add_channel",
    "add_listings",
    "cli_app",
    "completeness",
    "count_products",
    "count_variants",
    "create_product",
    "current_price",
    "current_prices",
    "export_rows",
    "get_channel",
    "get_product",
    "gtin_check_digit",
    "gtin_problem",
    "import_file",
    "import_rows",
    "is_valid_gtin",
    "known_skus",
    "list_channels",
    "list_products",
    "make_gtin13",
    "price_history",
    "search_products",
    "set_listing",
    "set_price",
    "update_product",
    "write_export",
]
