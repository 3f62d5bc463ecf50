"""Search by name, SKU or GTIN with facets: the same answers on SQLite and PostgreSQL."""

from datetime import timedelta

from parcours import catalog
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders


def _catalogue(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock, "ROBE-LIN")
    builders.add_product(
        db, clock, "ROBE-SOIE", name_fr="Robe en soie émeraude", name_en="Emerald silk dress"
    )
    builders.add_product(
        db,
        clock,
        "NAPPE-LIN",
        brand="atelier",
        category="maison",
        name_fr="Nappe en lin naturel",
        name_en="Natural linen tablecloth",
    )
    now = clock.now()
    with db.transaction() as session:
        for sku, amount in (
            ("ROBE-LIN-S", 8_990),
            ("ROBE-LIN-M", 8_990),
            ("ROBE-SOIE-S", 24_900),
            ("NAPPE-LIN-S", 4_500),
            ("NAPPE-LIN-M", 5_500),
        ):
            catalog.set_price(session, now, sku, "web", amount)
        catalog.set_listing(session, now, "ROBE-LIN", "web", True)
        catalog.set_listing(session, now, "NAPPE-LIN", "web", True)
        catalog.set_listing(session, now, "ROBE-SOIE", "web", True, now + timedelta(days=5))


def _codes(result: catalog.SearchResult) -> list[str]:
    return [hit.code for hit in result.hits]


def test_words_match_names_in_either_language_accents_and_case_ignored(
    db: Database, clock: ManualClock
) -> None:
    _catalogue(db, clock)
    with db.transaction() as session:
        assert _codes(catalog.search_products(session, "lin", clock.now())) == [
            "NAPPE-LIN",
            "ROBE-LIN",
        ]
        assert _codes(catalog.search_products(session, "EMERAUDE", clock.now())) == ["ROBE-SOIE"]
        assert _codes(catalog.search_products(session, "silk dre", clock.now())) == ["ROBE-SOIE"]
        assert _codes(catalog.search_products(session, "robe linen", clock.now())) == ["ROBE-LIN"]
        assert catalog.search_products(session, "velours", clock.now()).total == 0


def test_a_sku_or_a_gtin_finds_its_product(db: Database, clock: ManualClock) -> None:
    _catalogue(db, clock)
    gtin = builders.product_data("NAPPE-LIN")["variants"][1]["gtin"]
    with db.transaction() as session:
        assert _codes(catalog.search_products(session, "robe-soie-s", clock.now())) == ["ROBE-SOIE"]
        assert _codes(catalog.search_products(session, gtin, clock.now())) == ["NAPPE-LIN"]


def test_facets_count_brands_categories_channels_and_price_bands(
    db: Database, clock: ManualClock
) -> None:
    _catalogue(db, clock)
    with db.transaction() as session:
        result = catalog.search_products(session, "", clock.now())
    facets = {name: {f.value: f.count for f in values} for name, values in result.facets.items()}
    assert result.total == 3
    assert facets["brand"] == {"lavande": 2, "atelier": 1}
    assert facets["category"] == {"robes": 2, "maison": 1}
    assert facets["channel"] == {"web": 2}  # the silk dress is not visible yet
    assert facets["price_band"] == {"20-50": 1, "50-100": 1, "200+": 1}
    assert {h.code: h.from_price for h in result.hits}["NAPPE-LIN"] == 4_500


def test_filters_narrow_the_hits_but_not_their_own_facet(db: Database, clock: ManualClock) -> None:
    _catalogue(db, clock)
    with db.transaction() as session:
        dresses = catalog.search_products(session, "", clock.now(), category="mode")
        web_brand = catalog.search_products(
            session, "", clock.now(), brand="lavande", channel="web"
        )
        cheap = catalog.search_products(session, "lin", clock.now(), price_band="20-50")
    assert _codes(dresses) == ["ROBE-LIN", "ROBE-SOIE"]  # "mode" includes its "robes"
    assert _codes(web_brand) == ["ROBE-LIN"]
    assert {f.value for f in web_brand.facets["brand"]} == {"lavande", "atelier"}
    assert _codes(cheap) == ["NAPPE-LIN"]


def test_search_text_follows_product_updates(db: Database, clock: ManualClock) -> None:
    _catalogue(db, clock)
    with db.transaction() as session:
        catalog.update_product(session, clock.now(), "NAPPE-LIN", {"name_fr": "Nappe brodée"})
    with db.transaction() as session:
        assert _codes(catalog.search_products(session, "brodee", clock.now())) == ["NAPPE-LIN"]
        assert _codes(catalog.search_products(session, "naturel", clock.now())) == []
