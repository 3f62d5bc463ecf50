"""The catalogue over HTTP: scopes, idempotent creation, problem+json, prices, uploads."""

import httpx
import pytest

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders

pytestmark = pytest.mark.anyio


def bearer(secret: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {secret}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def _product_body() -> dict[str, object]:
    return builders.product_data("ROBE-API")


async def test_creating_a_product_twice_with_one_key_acts_once(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    writer = builders.api_key(db, clock, "commerce:write", "commerce:read")
    first = await client.post(
        "/v1/catalog/products", json=_product_body(), headers=bearer(writer, "k1")
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        "/v1/catalog/products", json=_product_body(), headers=bearer(writer, "k1")
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert [v["sku"] for v in first.json()["variants"]] == ["ROBE-API-S", "ROBE-API-M"]
    fetched = await client.get("/v1/catalog/products/ROBE-API", headers=bearer(writer))
    assert fetched.json()["vat_rate"] == "20"
    listed = await client.get("/v1/catalog/products", headers=bearer(writer))
    assert [p["code"] for p in listed.json()["items"]] == ["ROBE-API"]


async def test_a_bad_product_is_a_problem_with_pointers(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    writer = builders.api_key(db, clock, "commerce:write")
    body = {**_product_body(), "variants": [{"sku": "X", "gtin": "3017620422004"}]}
    response = await client.post("/v1/catalog/products", json=body, headers=bearer(writer))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"detail": "wrong check digit: expected 3", "pointer": "#/variants/0/gtin"}
    ]


async def test_reading_needs_commerce_read_and_writing_commerce_write(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    reader = builders.api_key(db, clock, "commerce:read")
    assert (await client.get("/v1/catalog/channels", headers=bearer(reader))).status_code == 200
    refused = await client.post(
        "/v1/catalog/brands", json={"code": "x", "name": "X"}, headers=bearer(reader)
    )
    assert refused.status_code == 403


async def test_prices_listings_completeness_and_search_over_http(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    builders.add_store(db, clock, "LYO-1")
    key = builders.api_key(db, clock, "commerce:write", "commerce:read")
    for sku in ("ROBE-LIN-S", "ROBE-LIN-M"):
        made = await client.post(
            "/v1/catalog/prices",
            json={"sku": sku, "channel": "web", "amount": 8_990},
            headers=bearer(key, f"p-{sku}"),
        )
        assert made.status_code == 201, made.text
    store_price = await client.post(
        "/v1/catalog/prices",
        json={"sku": "ROBE-LIN-S", "channel": "store", "amount": 7_990, "store": "LYO-1"},
        headers=bearer(key),
    )
    assert store_price.json()["store_id"] is not None
    price = await client.get(
        "/v1/catalog/prices/ROBE-LIN-S", params={"channel": "web"}, headers=bearer(key)
    )
    assert (price.json()["incl_vat"], price.json()["excl_vat"]) == (8_990, 7_492)
    in_store = await client.get(
        "/v1/catalog/prices/ROBE-LIN-S",
        params={"channel": "store", "store": "LYO-1"},
        headers=bearer(key),
    )
    assert in_store.json()["incl_vat"] == 7_990
    history = await client.get("/v1/catalog/prices/ROBE-LIN-S/history", headers=bearer(key))
    assert len(history.json()) == 2
    listing = await client.put(
        "/v1/catalog/products/ROBE-LIN/listings/web", json={"published": True}, headers=bearer(key)
    )
    assert listing.json()["published"] is True
    complete = await client.get(
        "/v1/catalog/products/ROBE-LIN/completeness", params={"channel": "web"}, headers=bearer(key)
    )
    assert {(c["locale"], c["score"]) for c in complete.json()} == {("fr", 100), ("en", 100)}
    found = await client.get("/v1/catalog/search", params={"q": "lavande"}, headers=bearer(key))
    assert found.json()["total"] == 1
    assert found.json()["facets"]["channel"] == [{"value": "web", "count": 1}]


async def test_a_non_integer_or_negative_price_is_refused(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    key = builders.api_key(db, clock, "commerce:write")
    for amount in (12.5, "1290", -1):
        response = await client.post(
            "/v1/catalog/prices",
            json={"sku": "ROBE-LIN-S", "channel": "web", "amount": amount},
            headers=bearer(key),
        )
        assert response.status_code == 422, amount
        assert response.json()["errors"][0]["pointer"] == "#/amount"


async def test_an_uploaded_file_with_bad_rows_is_rejected_whole_or_in_part(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    key = builders.api_key(db, clock, "commerce:write", "commerce:read")
    csv_text = (
        "product_code,brand,category,name_fr,sku,gtin,price_web\n"
        f"A,lavande,mode,Article A,A-1,{builders.gtin13(77)},1000\n"
        "B,lavande,mode,Article B,B-1,123,1000\n"
    )
    files = {"file": ("catalogue.csv", csv_text.encode(), "text/csv")}
    rejected = await client.post("/v1/catalog/imports", files=files, headers=bearer(key))
    assert rejected.status_code == 422
    assert rejected.json()["row_errors"] == [
        {"row": 3, "column": "gtin", "message": "a GTIN has 8, 12, 13 or 14 digits"}
    ]
    kept = await client.post(
        "/v1/catalog/imports",
        files=files,
        params={"keep_good_rows": "true"},
        headers=bearer(key),
    )
    assert kept.status_code == 200
    assert (kept.json()["variants"], kept.json()["rejected_rows"]) == (1, 1)
    exported = await client.get(
        "/v1/catalog/exports", params={"format": "csv"}, headers=bearer(key)
    )
    assert exported.headers["content-type"].startswith("text/csv")
    assert "A-1" in exported.text


async def test_the_one_voice_report_and_its_rules_over_http(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    writer = builders.api_key(db, clock, "commerce:write", "commerce:read")
    for channel in ("web", "store"):
        listed = await client.put(
            f"/v1/catalog/products/ROBE-LIN/listings/{channel}",
            json={"published": True},
            headers=bearer(writer),
        )
        assert listed.status_code == 200, listed.text
    for channel, amount in (("web", 8_990), ("store", 9_290)):
        await client.post(
            "/v1/catalog/prices",
            json={"sku": "ROBE-LIN-S", "channel": channel, "amount": amount},
            headers=bearer(writer),
        )
    texts = await client.put(
        "/v1/catalog/products/ROBE-LIN/listings/store/texts",
        json={"name_fr": "Robe lin"},
        headers=bearer(writer),
    )
    assert texts.json()["name_fr"] == "Robe lin"
    report = await client.get("/v1/catalog/one-voice", headers=bearer(writer))
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["default_reference"], body["products_checked"], body["total"]) == ("web", 1, 2)
    assert [(f["field"], f["channel_value"], f["reference_value"]) for f in body["findings"]] == [
        ("name", "Robe lin", "Robe en lin lavande"),
        ("price", 9_290, 8_990),
    ]
    rule = await client.put(
        "/v1/catalog/one-voice/rules/store",
        json={"reference": "web", "price_tolerance_bp": 500, "allow_name_override": True},
        headers=bearer(writer),
    )
    assert rule.status_code == 200, rule.text
    again = await client.get("/v1/catalog/one-voice", headers=bearer(writer))
    assert again.json()["findings"] == []
    assert [r["channel"] for r in again.json()["rules"]] == ["store"]
    bad = await client.get("/v1/catalog/one-voice?field=colour", headers=bearer(writer))
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    self_reference = await client.put(
        "/v1/catalog/one-voice/rules/store", json={"reference": "store"}, headers=bearer(writer)
    )
    assert self_reference.status_code == 422
    assert self_reference.json()["errors"][0]["pointer"] == "#/reference"


async def test_refusals_stay_in_english_for_api_clients(
    client: httpx.AsyncClient, db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    reader = builders.api_key(db, clock, "commerce:read")
    unknown = await client.get(
        "/v1/catalog/products/NOPE", headers={**bearer(reader), "Accept-Language": "fr"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "No product has the code 'NOPE'."
    field = await client.get("/v1/catalog/one-voice?field=colour", headers=bearer(reader))
    assert field.status_code == 422
    assert field.json()["detail"] == "Unknown field."
    assert field.json()["errors"] == [
        {"detail": "must be one of name, description, price, availability", "pointer": "#/field"}
    ]
    channel = await client.get("/v1/catalog/one-voice?channel=nope", headers=bearer(reader))
    assert channel.json()["detail"] == "No channel has the code 'nope'."
