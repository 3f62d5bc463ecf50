"""Catalog context: one product catalogue for every channel (facade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parcours.catalog.feeds import (
    FeedProblem,
    FeedReport,
    write_google_products,
    write_local_inventory,
)
from parcours.catalog.gtin import gtin_check_digit, gtin_problem, is_valid_gtin, make_gtin13
from parcours.catalog.labels import SkuLabel, sku_labels
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
    set_listing_texts,
    set_price,
    update_product,
)
from parcours.catalog.transfer import (
    ImportReport,
    add_imported_products,
    export_rows,
    import_file,
    import_rows,
    write_export,
)
from parcours.catalog.voice import (
    VoiceFinding,
    VoiceReport,
    VoiceRule,
    align_price,
    list_voice_rules,
    one_voice_report,
    remove_listing_text,
    set_voice_rule,
)
from parcours.core.imports import ImportRejected, RowError

if TYPE_CHECKING:
    import typer


def console_msgids() -> set[str]:
    """Words this context's pages translate from Python data (for the translation tests)."""
    from parcours.catalog.pages import SERVICE_MESSAGES

    return set(SERVICE_MESSAGES)


def cli_app() -> typer.Typer:
    """The `parcours catalog` command group."""
    from parcours.catalog.cli import app

    return app


__all__ = [
    "CHANNEL_KINDS",
    "LOCALES",
    "PRICE_BANDS",
    "VAT_RATES_BP",
    "Completeness",
    "FeedProblem",
    "FeedReport",
    "ImportRejected",
    "ImportReport",
    "PriceQuote",
    "ProductView",
    "RowError",
    "SearchResult",
    "SkuLabel",
    "VoiceFinding",
    "VoiceReport",
    "VoiceRule",
    "add_attribute",
    "add_brand",
    "add_category",
    "add_channel",
    "add_imported_products",
    "add_listings",
    "align_price",
    "cli_app",
    "completeness",
    "console_msgids",
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
    "list_voice_rules",
    "make_gtin13",
    "one_voice_report",
    "price_history",
    "remove_listing_text",
    "search_products",
    "set_listing",
    "set_listing_texts",
    "set_price",
    "set_voice_rule",
    "sku_labels",
    "update_product",
    "write_export",
    "write_google_products",
    "write_local_inventory",
]
