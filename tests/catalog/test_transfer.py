"""Catalogue import/export: per-row errors, all-or-nothing or keep-good-rows, round trip."""

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import event

from parcours import catalog, inventory
from parcours.catalog.transfer import export_text, import_file, imported_product_code
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from parcours.core.imports import ImportRejected
from tests import builders
from tests.conftest import fresh_database_url

HEADER = (
    "product_code,brand,category,vat_rate,name_fr,name_en,description_fr,description_en,"
    "sku,gtin,options,price_web,price_marketplace\n"
)


def csv_file(*lines: str) -> io.StringIO:
    return io.StringIO(HEADER + "".join(line + "\n" for line in lines))


GOOD = [
    "TSHIRT,lavande,mode,20,T-shirt coton,Cotton T-shirt,Doux,Soft,"
    f"TS-S,{builders.gtin13(11)},size=S;colour=Blanc,1990,1790",
    "TSHIRT,lavande,mode,20,T-shirt coton,Cotton T-shirt,Doux,Soft,"
    f"TS-M,{builders.gtin13(12)},size=M;colour=Blanc,1990,1790",
    f"BOL,atelier,maison,20,Bol en grès,Stoneware bowl,,,BOL-1,{builders.gtin13(13)},,1200,",
]


def test_a_good_file_creates_products_variants_and_prices(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    with db.transaction() as session:
        report = import_file(session, clock.now(), csv_file(*GOOD), "csv")
    assert (report.rows, report.products, report.variants, report.prices) == (3, 2, 3, 5)
    with db.transaction() as session:
        view = catalog.get_product(session, "TSHIRT")
        assert [v.options for v in view.variants] == [
            {"size": "S", "colour": "Blanc"},
            {"size": "M", "colour": "Blanc"},
        ]
        assert catalog.current_price(session, "TS-M", "marketplace", clock.now()).excl_vat == 1_790
        assert [h.code for h in catalog.search_products(session, "gres", clock.now()).hits] == [
            "BOL"
        ]


def test_each_bad_row_is_reported_and_nothing_is_imported_by_default(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    bad = [
        "P1,lavande,mode,20,Un,One,,,P1-A,3017620422004,,100,",  # line 5: GTIN check digit
        "P2,ghost,mode,20,Deux,Two,,,P2-A,,,-5,",  # line 6: brand, negative price
        "P3,lavande,nowhere,20,Trois,Three,,,P3-A,,,12.50,",  # line 7: category, decimal price
        "P4,lavande,mode,20,Quatre,Four,,,TS-S,,,100,",  # line 8: SKU twice in the file
        "P5,lavande,mode,20,Cinq,Five,,,ROBE-LIN-S,,,100,",  # line 9: SKU already in the DB
    ]
    with pytest.raises(ImportRejected) as caught, db.transaction() as session:
        import_file(session, clock.now(), csv_file(*GOOD, *bad), "csv")
    errors = {(e.row, e.column): e.message for e in caught.value.row_errors}
    assert errors == {
        (5, "gtin"): "wrong check digit: expected 3",
        (6, "brand"): "unknown brand 'ghost'",
        (6, "price_web"): "must not be negative",
        (7, "category"): "unknown category 'nowhere'",
        (7, "price_web"): "must be a whole number of cents",
        (8, "sku"): "duplicate SKU 'TS-S' in the file",
        (9, "sku"): "SKU 'ROBE-LIN-S' already exists in the catalogue",
    }
    assert "5 of 8 rows are invalid" in caught.value.detail
    with db.transaction() as session:
        assert catalog.count_products(session) == 1


def test_keep_good_rows_loads_the_good_ones_and_reports_the_rest(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    with db.transaction() as session:
        report = import_file(
            session,
            clock.now(),
            csv_file(*GOOD, "P9,lavande,mode,20,Neuf,Nine,,,P9-A,,,100,x"),
            "csv",
            keep_good_rows=True,
        )
    assert (report.variants, report.rejected_rows) == (3, 1)
    assert report.errors[0].column == "price_marketplace"
    with db.transaction() as session:
        assert catalog.count_variants(session) == 3


def test_an_unknown_channel_column_is_reported(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    rows = [
        {
            "product_code": "X",
            "brand": "lavande",
            "category": "mode",
            "name_fr": "X",
            "sku": "X-1",
            "prices": {"tv": 100},
        }
    ]
    with pytest.raises(ImportRejected) as caught, db.transaction() as session:
        import_file(session, clock.now(), io.StringIO(json.dumps(rows)), "json")
    assert caught.value.row_errors[0].message == "unknown channel 'tv'"
    assert caught.value.row_errors[0].row == 1


def test_export_then_import_into_an_empty_catalogue_gives_the_same_export(
    db: Database, clock: ManualClock, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    builders.catalog_basics(db, clock)
    with db.transaction() as session:
        import_file(session, clock.now(), csv_file(*GOOD), "csv")
    for fmt in ("csv", "json"):
        with db.transaction() as session:
            exported = export_text(session, clock.now(), fmt)
        folder = tmp_path / fmt
        folder.mkdir()
        other = Database.connect(fresh_database_url(request, "sqlite", folder))
        try:
            builders.catalog_basics(other, clock)
            with other.transaction() as session:
                import_file(session, clock.now(), io.StringIO(exported), fmt)
            with other.transaction() as session:
                assert export_text(session, clock.now(), fmt) == exported
        finally:
            other.dispose()
    rows = json.loads(exported)
    assert rows[0]["sku"] == "BOL-1"
    assert rows[0]["prices"] == {"web": 1200}
    assert rows[1]["options"] == {"size": "S", "colour": "Blanc"}


def test_import_uses_a_fixed_number_of_statements_whatever_the_row_count(
    sqlite_db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(sqlite_db, clock)
    lines = [
        f"P{i},lavande,mode,20,Produit {i},Product {i},,,"
        f"SKU-{i},{builders.gtin13(1000 + i)},,{100 + i},"
        for i in range(300)
    ]
    statements: list[str] = []
    event.listen(sqlite_db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with sqlite_db.transaction() as session:
        report = import_file(session, clock.now(), csv_file(*lines), "csv")
    assert report.variants == 300
    assert len(statements) < 20


def test_images_come_in_with_the_product_and_go_out_with_the_export(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    item = {
        "product_code": "BOL",
        "brand": "atelier",
        "category": "maison",
        "name_fr": "Bol",
        "sku": "BOL-1",
        "image_urls": "https://media.example/bol-1.jpg | https://media.example/bol-2.jpg",
    }
    bad = {**item, "product_code": "TASSE", "sku": "TASSE-1", "image_urls": "ftp://x/y.jpg"}
    with pytest.raises(ImportRejected) as caught, db.transaction() as session:
        import_file(session, clock.now(), io.StringIO(json.dumps([item, bad])), "json")
    assert [(e.row, e.column) for e in caught.value.row_errors] == [(2, "image_urls")]
    steps: list[tuple[int, int]] = []
    with db.transaction() as session:
        import_file(
            session, clock.now(), io.StringIO(json.dumps([item])), "json",
            progress=lambda done, total: steps.append((done, total)),
        )  # fmt: skip
    assert steps[-1] == (4, 4)  # a product, a variant and two images: the bar ends full
    with db.transaction() as session:
        exported = list(catalog.export_rows(session, clock.now()))
        view = catalog.get_product(session, "BOL")
    assert (
        exported[0]["image_urls"]
        == "https://media.example/bol-1.jpg|https://media.example/bol-2.jpg"
    )
    assert [m.alt_fr for m in view.media] == ["Bol", "Bol"]


def test_importing_a_catalogue_makes_its_skus_stockable(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    lyon = builders.location(db, clock)
    with db.transaction() as session:
        import_file(session, clock.now(), csv_file(*GOOD), "csv")
    with db.transaction() as session:
        inventory.record_movements(
            session,
            clock.now(),
            [inventory.MovementInput(sku, lyon, "receipt", 2) for sku in ("TS-S", "TS-M", "BOL-1")],
        )
    with db.transaction() as session:
        assert inventory.available_at_location(session, lyon, ["TS-S", "TS-M", "BOL-1"]) == {
            "TS-S": 2,
            "TS-M": 2,
            "BOL-1": 2,
        }
    with pytest.raises(InvalidInput, match="not in the catalogue"), db.transaction() as session:
        inventory.record_movements(
            session, clock.now(), [inventory.MovementInput("TS-XL", lyon, "receipt", 1)]
        )


def test_skus_from_sales_history_become_variants_of_their_code_or_new_products(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    with db.transaction() as session:
        import_file(session, clock.now(), csv_file(*GOOD), "csv")
    names = {"BOL": "Grand bol", "TASSE 2": "  ", "TS-S": "known", "": "no SKU", "é-1": "Écharpe"}
    with db.transaction() as session:
        assert catalog.add_imported_products(session, clock.now(), names) == 3
        assert catalog.add_imported_products(session, clock.now(), names) == 0
    with db.transaction() as session:
        bowl = catalog.get_product(session, "BOL")  # the SKU is a product's code: its variant
        assert [(v.sku, v.position) for v in bowl.variants] == [("BOL-1", 0), ("BOL", 1)]
        cup = catalog.get_product(session, imported_product_code("TASSE 2"))
        assert (cup.product.name_fr, cup.brand.code, cup.category.code) == (
            "TASSE 2",
            "unbranded",
            "imported",
        )  # named after its SKU when the description is blank
        assert [v.sku for v in cup.variants] == ["TASSE 2"]
        found = catalog.search_products(session, "echarpe", clock.now()).hits
        assert [h.code for h in found] == [imported_product_code("é-1")]
        assert [h.code for h in catalog.search_products(session, "bol", clock.now()).hits] == [
            "BOL"
        ]
    with db.transaction() as session, pytest.raises(ValueError, match="longer than 64"):
        catalog.add_imported_products(session, clock.now(), {"X" * 65: ""})
