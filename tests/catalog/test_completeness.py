"""Completeness per channel and locale: a score and the list of what is missing."""

from parcours import catalog
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests import builders


def _scores(
    db: Database, clock: ManualClock, channel: str | None = None
) -> dict[tuple[str, str], tuple[int, list[str]]]:
    with db.transaction() as session:
        rows = catalog.completeness(session, ["ROBE-LIN"], channel, clock.now())
    return {(r.channel, r.locale): (r.score, r.missing) for r in rows}


def test_a_product_without_prices_or_english_text_is_incomplete_where_they_are_required(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock, description_en="")
    scores = _scores(db, clock, "web")
    assert scores[("web", "fr")] == (66, ["price"])
    assert scores[("web", "en")] == (33, ["description", "price"])


def test_pricing_every_variant_completes_the_product(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "web", 8_990)
    assert _scores(db, clock, "web")[("web", "fr")] == (66, ["price"])
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "web", 8_990)
    assert _scores(db, clock, "web")[("web", "fr")] == (100, [])


def test_channels_configure_their_required_fields_per_locale(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    with db.transaction() as session:
        catalog.add_attribute(session, "material", "text", "Matière", "Material", localized=True)
        catalog.add_channel(
            session,
            clock.now(),
            {
                "code": "app",
                "kind": "app",
                "locales": ["fr", "en"],
                "required_attributes": {
                    "fr": ["name", "media", "gtin", "material"],
                    "en": ["name", "media_alt", "material"],
                },
            },
        )
    builders.add_product(
        db,
        clock,
        attributes={"material": {"fr": "Lin"}},
        media=[{"url": "/m/1.jpg", "alt_fr": "Robe", "alt_en": ""}],
    )
    scores = _scores(db, clock, "app")
    assert scores[("app", "fr")] == (100, [])
    assert scores[("app", "en")] == (33, ["media_alt", "material"])


def test_every_channel_and_locale_is_scored_when_no_channel_is_named(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    assert set(_scores(db, clock)) == {
        ("marketplace", "fr"),
        ("store", "fr"),
        ("web", "en"),
        ("web", "fr"),
    }
