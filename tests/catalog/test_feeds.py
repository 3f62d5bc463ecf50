"""Google Merchant Center feeds: parsed back as Google would, checked against its field rules."""

import csv
import io
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from parcours import catalog
from parcours.catalog import feeds
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput, NotFound
from tests import builders
from tests.catalog.test_api import bearer
from tests.test_cli import parcours_in_process

G = "{http://base.google.com/ns/1.0}"
SHOP = "https://www.maison-lavande.example"


def _shop(db: Database, clock: ManualClock) -> None:
    """The basics, a `shop` web channel with a storefront, and a dress with a photo, two
    sizes, a sale on the web price and stock of size S in Lyon."""
    builders.catalog_basics(db, clock)
    media = [{"url": "/media/robe-lin.jpg", "alt_fr": "Robe"}]
    builders.add_product(db, clock, media=media)
    with db.transaction() as session:
        catalog.add_channel(
            session,
            clock.now(),
            {"code": "shop", "kind": "web", "locales": ["fr", "en"], "storefront_url": SHOP + "/"},
        )
        for channel in ("shop", "marketplace", "store"):
            catalog.set_listing(session, clock.now(), "ROBE-LIN", channel, True)
        catalog.set_price(
            session,
            clock.now(),
            "ROBE-LIN-S",
            "shop",
            8_990,
            sale_amount=6_990,
            sale_from=clock.now(),
            sale_to=clock.now() + timedelta(days=14),
        )
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "shop", 8_990)
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "marketplace", 7_492)
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "store", 9_200)
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "store", 9_200)
    lyon = builders.location(db, clock, "LYO-1")
    builders.receive(db, clock, "ROBE-LIN-S", lyon, 4)
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "store", 8_500, store_id=lyon)


def _xml_items(text: str) -> dict[str, dict[str, str]]:
    root = ET.fromstring(text)
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    items = root.findall("./channel/item")
    out = {}
    for item in items:
        fields = {child.tag.removeprefix(G): child.text or "" for child in item}
        assert all(child.tag.startswith(G) for child in item)
        out[fields["id"]] = fields
    return out


def _products_feed(
    db: Database, clock: ManualClock, fmt: str = "xml", **kwargs: str
) -> tuple[str, catalog.FeedReport]:
    out = io.StringIO()
    with db.transaction() as session:
        report = catalog.write_google_products(
            session,
            clock.now(),
            kwargs.get("channel", "shop"),
            kwargs.get("locale", "fr"),
            out,
            fmt,
            kwargs.get("base_url"),
        )
    return out.getvalue(), report


def test_the_product_feed_carries_googles_fields_for_every_variant(
    db: Database, clock: ManualClock
) -> None:
    _shop(db, clock)
    text, report = _products_feed(db, clock)
    items = _xml_items(text)
    assert (report.items, report.refused, report.problems) == (2, 0, [])
    small, medium = items["ROBE-LIN-S"], items["ROBE-LIN-M"]
    assert small["title"] == "Robe en lin lavande - S"
    assert small["description"] == "Une robe légère en lin lavé."
    assert small["link"] == f"{SHOP}/fr/p/ROBE-LIN?variant=ROBE-LIN-S"
    assert small["image_link"] == f"{SHOP}/media/robe-lin.jpg"
    assert (small["availability"], medium["availability"]) == ("in_stock", "out_of_stock")
    assert (small["price"], small["sale_price"]) == ("89.90 EUR", "69.90 EUR")
    assert small["sale_price_effective_date"] == "2026-03-14T09:30:00Z/2026-03-28T09:30:00Z"
    assert "sale_price" not in medium
    assert (small["brand"], small["condition"], small["size"]) == ("Maison Lavande", "new", "S")
    assert small["item_group_id"] == medium["item_group_id"] == "ROBE-LIN"
    assert catalog.is_valid_gtin(small["gtin"])
    english = _xml_items(_products_feed(db, clock, locale="en")[0])
    assert english["ROBE-LIN-M"]["title"] == "Lavender linen dress - M"
    assert english["ROBE-LIN-M"]["link"] == f"{SHOP}/en/p/ROBE-LIN?variant=ROBE-LIN-M"


def test_a_channel_storing_prices_without_vat_feeds_them_vat_included(
    db: Database, clock: ManualClock
) -> None:
    _shop(db, clock)
    text, report = _products_feed(db, clock, channel="marketplace", base_url="https://mp.example")
    items = _xml_items(text)
    assert items["ROBE-LIN-S"]["price"] == "89.90 EUR"
    # Size M has no marketplace price: left out, and said why.
    assert list(items) == ["ROBE-LIN-S"]
    assert [(p.id, p.field, p.refused) for p in report.problems] == [("ROBE-LIN-M", "price", True)]


def test_items_breaking_googles_rules_are_left_out_and_reported(
    db: Database, clock: ManualClock
) -> None:
    _shop(db, clock)
    builders.add_product(
        db,
        clock,
        "NAPPE",
        name_fr="Nappe",
        variants=[{"sku": "NAPPE-1"}],  # no GTIN, no photo
    )
    long_name = "Robe " * 40
    with db.transaction() as session:
        catalog.set_listing(session, clock.now(), "NAPPE", "shop", True)
        catalog.set_price(session, clock.now(), "NAPPE-1", "shop", 3_990)
        catalog.set_listing_texts(session, clock.now(), "ROBE-LIN", "shop", {"name_fr": long_name})
    text, report = _products_feed(db, clock)
    assert _xml_items(text) == {}
    assert report.items == 0
    assert report.refused == 3
    problems = {(p.id, p.field) for p in report.problems if p.refused}
    assert problems == {
        ("NAPPE-1", "image_link"),
        ("ROBE-LIN-S", "title"),
        ("ROBE-LIN-M", "title"),
    }
    with db.transaction() as session:
        catalog.set_listing_texts(session, clock.now(), "ROBE-LIN", "shop", {"name_fr": None})
    _text, kept = _products_feed(db, clock)
    assert kept.items == 2
    assert [(p.id, p.field, p.refused) for p in kept.problems] == [("NAPPE-1", "image_link", True)]


def test_the_rules_check_lengths_formats_and_required_fields() -> None:
    item = {
        "id": "X" * 51,
        "title": "T",
        "description": "D" * 5001,
        "link": "www.example.fr/p",
        "image_link": "https://example.fr/i.jpg",
        "availability": "available",
        "price": "12,34 €",
        "sale_price": "10 EUR",
        "condition": "new",
        "gtin": "3017620422004",
    }
    problems = feeds.check_item(item, feeds.PRODUCT_REQUIRED, feeds.AVAILABILITY)
    assert {p.field for p in problems} == {
        "id",
        "description",
        "link",
        "availability",
        "price",
        "gtin",
    }
    assert all(p.refused for p in problems)
    missing = feeds.check_item({"id": "A"}, feeds.PRODUCT_REQUIRED, feeds.AVAILABILITY)
    assert {p.field for p in missing} == set(feeds.PRODUCT_REQUIRED) - {"id"}


def test_the_tsv_feed_has_googles_header_and_one_clean_line_per_item(
    db: Database, clock: ManualClock
) -> None:
    _shop(db, clock)
    with db.transaction() as session:
        catalog.update_product(
            session, clock.now(), "ROBE-LIN", {"description_fr": "Lin lavé.\n\tCoupe ample."}
        )
    text, report = _products_feed(db, clock, fmt="tsv")
    lines = text.splitlines()
    assert len(lines) == 3
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert list(rows[0]) == list(feeds.PRODUCT_FIELDS)
    assert {row["id"]: row["description"] for row in rows} == {
        "ROBE-LIN-S": "Lin lavé. Coupe ample.",
        "ROBE-LIN-M": "Lin lavé. Coupe ample.",
    }
    assert all(row["price"] == "89.90 EUR" for row in rows)
    assert report.items == 2


def test_the_local_inventory_feed_tells_units_and_the_stores_own_price(
    db: Database, clock: ManualClock
) -> None:
    _shop(db, clock)
    out = io.StringIO()
    with db.transaction() as session:
        report = catalog.write_local_inventory(session, clock.now(), "LYO-1", out, "xml")
    items = _xml_items(out.getvalue())
    assert items == {
        "ROBE-LIN-S": {
            "store_code": "LYO-1",
            "id": "ROBE-LIN-S",
            "quantity": "4",
            "price": "85.00 EUR",
            "availability": "in_stock",
        },
        "ROBE-LIN-M": {
            "store_code": "LYO-1",
            "id": "ROBE-LIN-M",
            "quantity": "0",
            "price": "92.00 EUR",
            "availability": "out_of_stock",
        },
    }
    assert report.items == 2
    tsv = io.StringIO()
    with db.transaction() as session:
        catalog.write_local_inventory(session, clock.now(), "LYO-1", tsv, "tsv")
    rows = list(csv.DictReader(io.StringIO(tsv.getvalue()), delimiter="\t"))
    assert [(r["id"], r["quantity"]) for r in rows] == [("ROBE-LIN-S", "4"), ("ROBE-LIN-M", "0")]


def test_feeds_read_large_catalogues_a_chunk_at_a_time(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shop(db, clock)
    for n in range(5):
        builders.add_product(db, clock, f"P{n}", media=[{"url": f"{SHOP}/p{n}.jpg"}])
        with db.transaction() as session:
            catalog.set_listing(session, clock.now(), f"P{n}", "shop", True)
            for size in ("S", "M"):
                catalog.set_price(session, clock.now(), f"P{n}-{size}", "shop", 1_000 + n)
    monkeypatch.setattr(feeds, "CHUNK", 2)
    text, report = _products_feed(db, clock)
    assert report.items == 12
    assert len(_xml_items(text)) == 12


def test_bad_feed_requests_are_refused(db: Database, clock: ManualClock) -> None:
    _shop(db, clock)
    with db.transaction() as session:
        with pytest.raises(InvalidInput) as no_url:
            catalog.write_google_products(session, clock.now(), "web", "fr", io.StringIO())
        assert no_url.value.errors[0].pointer == "#/base_url"
        with pytest.raises(InvalidInput):
            catalog.write_google_products(session, clock.now(), "marketplace", "en", io.StringIO())
        with pytest.raises(InvalidInput):
            catalog.write_google_products(session, clock.now(), "shop", "fr", io.StringIO(), "json")
        with pytest.raises(NotFound):
            catalog.write_local_inventory(session, clock.now(), "NOPE", io.StringIO())
        with pytest.raises(InvalidInput) as bad_url:
            catalog.add_channel(
                session, clock.now(), {"code": "x", "kind": "web", "storefront_url": "ftp://x"}
            )
        assert bad_url.value.errors[0].pointer == "#/storefront_url"


@pytest.mark.anyio
async def test_the_feeds_over_http(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    _shop(db, clock)
    reader = builders.api_key(db, clock, "commerce:read")
    xml = await client.get(
        "/v1/catalog/feeds/google/products",
        params={"channel": "shop", "locale": "fr"},
        headers=bearer(reader),
    )
    assert xml.status_code == 200, xml.text
    assert xml.headers["content-type"].startswith("application/xml")
    assert xml.headers["feed-items"] == "2"
    assert set(_xml_items(xml.text)) == {"ROBE-LIN-S", "ROBE-LIN-M"}
    tsv = await client.get(
        "/v1/catalog/feeds/google/local-inventory",
        params={"store": "LYO-1", "format": "tsv"},
        headers=bearer(reader),
    )
    assert tsv.headers["content-type"].startswith("text/tab-separated-values")
    assert tsv.text.splitlines()[0].split("\t") == list(feeds.LOCAL_FIELDS)
    report = await client.get(
        "/v1/catalog/feeds/google/products/report",
        params={"channel": "marketplace", "locale": "fr", "base_url": "https://mp.example"},
        headers=bearer(reader),
    )
    assert report.json()["refused"] == 1
    assert report.json()["problems"][0]["field"] == "price"
    no_url = await client.get(
        "/v1/catalog/feeds/google/products",
        params={"channel": "web", "locale": "fr"},
        headers=bearer(reader),
    )
    assert no_url.status_code == 422
    assert no_url.headers["content-type"] == "application/problem+json"


def test_the_feed_commands_write_files(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parcours = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    target = tmp_path / "feed.tsv"
    refused = parcours("catalog", "feed", "google-products", str(target), "--channel", "web")
    assert refused.returncode == 1
    assert "No channel has the code 'web'" in refused.stderr
    assert not target.exists()
    missing = parcours("catalog", "feed", "google-local-inventory", str(target), "--store", "X")
    assert missing.returncode == 1
    assert not target.exists()


def test_the_feed_commands_write_a_shops_feeds(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parcours = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    _shop(sqlite_db, ManualClock(builders.utc(2026, 3, 14, 9, 30)))
    products = tmp_path / "products.xml"
    result = parcours("catalog", "feed", "google-products", str(products), "--channel", "shop")
    assert result.returncode == 0, result.stderr
    assert "Wrote 2 items" in result.stdout
    assert set(_xml_items(products.read_text(encoding="utf-8"))) == {"ROBE-LIN-S", "ROBE-LIN-M"}
    local = tmp_path / "lyon.tsv"
    result = parcours("catalog", "feed", "google-local-inventory", str(local), "--store", "LYO-1")
    assert result.returncode == 0, result.stderr
    assert local.read_text(encoding="utf-8").splitlines()[1].startswith("LYO-1\tROBE-LIN-S\t4\t")
