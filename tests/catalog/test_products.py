"""Products, variants, attributes and listings: what the catalogue accepts and refuses."""

from datetime import timedelta

import pytest
from sqlalchemy import event

from parcours import catalog, inventory
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput, NotFound
from tests import builders


def test_a_product_is_created_with_its_variants_media_and_category(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    data = builders.product_data(
        media=[{"url": "/media/robe.jpg", "alt_fr": "Robe", "alt_en": "Dress"}]
    )
    with db.transaction() as session:
        view = catalog.create_product(session, clock.now(), data)
    assert view.product.code == "ROBE-LIN"
    assert view.brand.code == "lavande"
    assert view.category.code == "robes"
    assert [v.sku for v in view.variants] == ["ROBE-LIN-S", "ROBE-LIN-M"]
    assert view.variants[0].options == {"size": "S"}
    assert view.media[0].alt_en == "Dress"
    assert view.product.vat_rate_bp == 2000


def test_every_bad_field_is_reported_with_a_pointer_and_nothing_is_saved(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    bad = builders.product_data(
        brand="nobody",
        category="nowhere",
        vat_rate="19.6",
        variants=[
            {"sku": "A", "gtin": "3017620422004"},
            {"sku": "A"},
        ],
    )
    with pytest.raises(InvalidInput) as caught, db.transaction() as session:
        catalog.create_product(session, clock.now(), bad)
    pointers = {e.pointer: e.detail for e in caught.value.errors}
    assert pointers["#/brand"] == "unknown brand 'nobody'"
    assert pointers["#/category"] == "unknown category 'nowhere'"
    assert "20, 10, 5.5 or 2.1" in pointers["#/vat_rate"]
    assert pointers["#/variants/0/gtin"] == "wrong check digit: expected 3"
    assert pointers["#/variants/1/sku"] == "SKU 'A' appears twice"
    with db.transaction() as session:
        assert catalog.count_products(session) == 0


def test_a_sku_or_gtin_already_in_the_catalogue_is_refused(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    clash = builders.product_data("AUTRE", variants=[{"sku": "ROBE-LIN-S"}])
    with pytest.raises(InvalidInput, match="AUTRE") as caught, db.transaction() as session:
        catalog.create_product(session, clock.now(), clash)
    assert caught.value.errors[0].detail == "SKU 'ROBE-LIN-S' already exists"
    with pytest.raises(Conflict), db.transaction() as session:
        catalog.create_product(
            session, clock.now(), builders.product_data(variants=[{"sku": "NEW-1"}])
        )


def test_typed_attributes_check_their_values(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    with db.transaction() as session:
        catalog.add_attribute(session, "material", "text", "Matière", "Material", localized=True)
        catalog.add_attribute(session, "weight_g", "number", "Poids (g)", "Weight (g)")
        catalog.add_attribute(session, "organic", "boolean", "Bio", "Organic")
        catalog.add_attribute(
            session,
            "fit",
            "enum",
            "Coupe",
            "Fit",
            allowed_values=[
                {"code": "slim", "fr": "Ajustée", "en": "Slim"},
                {"code": "loose", "fr": "Ample", "en": "Loose"},
            ],
        )
    good = {
        "material": {"fr": "Lin", "en": "Linen"},
        "weight_g": 320,
        "organic": True,
        "fit": "loose",
    }
    builders.add_product(db, clock, attributes=good)
    bad = {"material": "Lin", "weight_g": "lourd", "organic": "oui", "fit": "tight", "colour": "x"}
    with pytest.raises(InvalidInput) as caught, db.transaction() as session:
        catalog.create_product(session, clock.now(), builders.product_data("P2", attributes=bad))
    details = {e.pointer: e.detail for e in caught.value.errors}
    assert details == {
        "#/attributes/material": 'a localized text is {"fr": …, "en": …}',
        "#/attributes/weight_g": "must be a number",
        "#/attributes/organic": "must be true or false",
        "#/attributes/fit": "must be one of slim, loose",
        "#/attributes/colour": "unknown attribute",
    }


def test_an_enum_attribute_needs_labelled_values(db: Database) -> None:
    with pytest.raises(InvalidInput) as caught, db.transaction() as session:
        catalog.add_attribute(
            session, "fit", "enum", "Coupe", "Fit", allowed_values=[{"code": "x"}]
        )
    assert caught.value.errors[0].pointer == "#/allowed_values/0"


def test_updating_a_product_changes_only_what_is_given_and_adds_variants(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    clock.advance(timedelta(hours=1))
    with db.transaction() as session:
        view = catalog.update_product(
            session,
            clock.now(),
            "ROBE-LIN",
            {"name_en": "Linen dress", "vat_rate": "10", "variants": [{"sku": "ROBE-LIN-L"}]},
        )
    assert view.product.name_en == "Linen dress"
    assert view.product.name_fr == "Robe en lin lavande"
    assert view.product.vat_rate_bp == 1000
    assert [v.sku for v in view.variants] == ["ROBE-LIN-S", "ROBE-LIN-M", "ROBE-LIN-L"]
    assert view.product.updated_at == clock.now()


def test_a_bad_update_changes_nothing(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    with pytest.raises(InvalidInput), db.transaction() as session:
        catalog.update_product(
            session, clock.now(), "ROBE-LIN", {"name_en": "Changed", "brand": "ghost"}
        )
    with db.transaction() as session:
        assert catalog.get_product(session, "ROBE-LIN").product.name_en == "Lavender linen dress"


def test_an_unknown_product_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="NOPE"), db.transaction() as session:
        catalog.get_product(session, "NOPE")


def test_a_category_under_an_unknown_parent_is_refused(db: Database) -> None:
    with pytest.raises(InvalidInput, match="ghost"), db.transaction() as session:
        catalog.add_category(session, "x", "X", "X", parent_code="ghost")


def test_channels_validate_kind_currency_and_locales(db: Database, clock: ManualClock) -> None:
    with pytest.raises(InvalidInput) as caught, db.transaction() as session:
        catalog.add_channel(
            session,
            clock.now(),
            {"code": "tv", "kind": "television", "currency": "XXY", "locales": ["de"]},
        )
    assert {e.pointer for e in caught.value.errors} == {"#/kind", "#/currency", "#/locales"}


def test_a_listing_is_published_within_its_window(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    start = clock.now() + timedelta(days=1)
    with db.transaction() as session:
        catalog.set_listing(session, clock.now(), "ROBE-LIN", "web", True, start, None)
        catalog.set_listing(session, clock.now(), "ROBE-LIN", "web", True, start, None)
        listings = catalog.get_product(session, "ROBE-LIN").listings
    assert [(c.code, li.published, li.visible_from) for c, li in listings] == [("web", True, start)]
    with pytest.raises(InvalidInput, match="never be visible"), db.transaction() as session:
        catalog.set_listing(session, clock.now(), "ROBE-LIN", "web", True, start, start)


def test_reading_a_product_takes_a_fixed_number_of_queries(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    many = [{"sku": f"V-{i}"} for i in range(30)]
    builders.add_product(db, clock, variants=many)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.transaction() as session:
        view = catalog.get_product(session, "ROBE-LIN")
    assert len(view.variants) == 30
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 6


def test_created_and_added_variants_are_stockable(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    lyon = builders.location(db, clock)
    with db.transaction() as session:
        catalog.update_product(
            session,
            clock.now(),
            "ROBE-LIN",
            {"variants": [{"sku": "ROBE-LIN-L", "options": {"size": "L"}}]},
        )
    with db.transaction() as session:
        inventory.record_movements(
            session,
            clock.now(),
            [
                inventory.MovementInput(sku, lyon, "receipt", 1)
                for sku in ("ROBE-LIN-S", "ROBE-LIN-M", "ROBE-LIN-L")
            ],
        )
        assert inventory.available_at_location(session, lyon, ["ROBE-LIN-L"]) == {"ROBE-LIN-L": 1}
