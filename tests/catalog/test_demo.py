"""The demo catalogue: realistic, valid, priced per channel and the same for a seed."""

from datetime import UTC, datetime

from sqlalchemy import text

from parcours import catalog
from parcours.core.db import Database
from parcours.demo.generator import STEPS, generate

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
# The steps after the catalogue only read it: the tests here leave them out.
AFTER_THE_CATALOGUE = tuple(name for name, _ in STEPS if name not in ("stores", "catalog"))


def test_the_small_demo_has_a_valid_french_catalogue(sqlite_db: Database) -> None:
    report = generate(sqlite_db, seed=5, size="small", now=AS_OF, skip=AFTER_THE_CATALOGUE)
    assert report["products"] == 300
    assert 1_200 <= report["variants"] <= 2_000
    with sqlite_db.engine.connect() as conn:
        gtins = [r[0] for r in conn.execute(text("SELECT gtin FROM product_variants"))]
        names = conn.execute(text("SELECT name_fr, name_en FROM products LIMIT 1")).one()
    assert all(catalog.is_valid_gtin(g) for g in gtins)
    assert all(g.startswith("376") for g in gtins)
    assert len(set(gtins)) == len(gtins)
    assert names[0]
    assert names[1]
    with sqlite_db.transaction() as session:
        web = catalog.current_prices(session, "web", AS_OF)
        market = catalog.current_prices(session, "marketplace", AS_OF)
        assert any(q.on_sale for q in web.values())
        sku = next(s for s, q in web.items() if not q.on_sale)
        assert market[sku].incl_vat > web[sku].incl_vat
        hits = catalog.search_products(session, "robe lin", AS_OF)
    assert hits.total > 0
    assert {f.value for f in hits.facets["channel"]} >= {"web", "store"}


def test_the_same_seed_gives_the_same_catalogue(request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import fresh_database_url

    digests = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        db = Database.connect(fresh_database_url(request, "sqlite", folder))
        generate(db, seed=9, size="tiny", now=AS_OF, skip=AFTER_THE_CATALOGUE)
        with db.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT code, name_fr, description_en FROM products ORDER BY code")
            ).all()
            skus = conn.execute(text("SELECT sku, gtin FROM product_variants ORDER BY sku")).all()
        digests.append((rows, skus))
        db.dispose()
    assert digests[0] == digests[1]
