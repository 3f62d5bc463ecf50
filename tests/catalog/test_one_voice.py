"""One voice: names, descriptions, prices and availability agree across channels, within the
differences each channel's rule allows; the console fixes are audited."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from parcours import catalog, inventory
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import Conflict, InvalidInput, NotFound
from parcours.core.models import AuditEntry
from tests import builders


def _listed_everywhere(db: Database, clock: ManualClock, code: str = "ROBE-LIN") -> None:
    """A product on web, marketplace (prices without VAT) and store, priced alike."""
    builders.add_product(db, clock, code)
    with db.transaction() as session:
        for channel in ("web", "marketplace", "store"):
            catalog.set_listing(session, clock.now(), code, channel, True)
        for sku in (f"{code}-S", f"{code}-M"):
            catalog.set_price(session, clock.now(), sku, "web", 8_990)
            catalog.set_price(session, clock.now(), sku, "store", 8_990)
            # 89.90 € VAT included at 20 % is 74.92 € without VAT: the same price.
            catalog.set_price(session, clock.now(), sku, "marketplace", 7_492)


def _findings(db: Database, clock: ManualClock, **filters: Any) -> list[catalog.VoiceFinding]:
    with db.transaction() as session:
        return catalog.one_voice_report(session, clock.now(), **filters).findings


def test_the_same_product_priced_alike_everywhere_speaks_with_one_voice(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        report = catalog.one_voice_report(session, clock.now())
    assert report.default_reference == "web"
    assert report.products_checked == 1
    assert report.findings == []


def test_a_price_beyond_the_strict_default_rule_is_reported_in_the_channels_vat_mode(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "marketplace", 7_900)
    [finding] = _findings(db, clock)
    assert (finding.product_code, finding.field, finding.sku) == ("ROBE-LIN", "price", "ROBE-LIN-M")
    assert (finding.channel, finding.reference, finding.rule) == (
        "marketplace",
        "web",
        "price_tolerance",
    )
    assert (finding.channel_value, finding.reference_value) == (7_900, 7_492)
    assert finding.includes_vat is False
    assert (finding.fix, finding.fix_channel) == ("align_price", "marketplace")


def test_a_price_within_the_percent_or_cents_tolerance_is_allowed(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "marketplace", 7_900)  # +5.4 %
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "store", 9_040)  # +50 cents
        catalog.set_voice_rule(
            session,
            clock.now(),
            catalog.VoiceRule("marketplace", "web", price_tolerance_bp=600),
        )
    [store] = _findings(db, clock)
    assert (store.channel, store.sku) == ("store", "ROBE-LIN-S")
    with db.transaction() as session:
        catalog.set_voice_rule(
            session, clock.now(), catalog.VoiceRule("store", "web", price_tolerance_cents=50)
        )
    assert _findings(db, clock) == []
    with db.transaction() as session:
        catalog.set_voice_rule(
            session, clock.now(), catalog.VoiceRule("store", "web", price_tolerance_cents=49)
        )
        rules = catalog.list_voice_rules(session)
    assert [f.channel for f in _findings(db, clock)] == ["store"]
    assert [(r.channel, r.reference) for r in rules] == [("marketplace", "web"), ("store", "web")]


def test_a_channel_name_is_reported_unless_its_rule_allows_overrides(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        catalog.set_listing_texts(
            session,
            clock.now(),
            "ROBE-LIN",
            "marketplace",
            {"name_fr": "Robe lin lavande - livraison offerte"},
        )
    [finding] = _findings(db, clock)
    assert (finding.field, finding.locale, finding.rule) == ("name", "fr", "no_name_override")
    assert finding.channel_value == "Robe lin lavande - livraison offerte"
    assert finding.reference_value == "Robe en lin lavande"
    assert (finding.fix, finding.fix_channel) == ("remove_text", "marketplace")
    with db.transaction() as session:
        catalog.set_voice_rule(
            session,
            clock.now(),
            catalog.VoiceRule("marketplace", "web", allow_name_override=True),
        )
    assert _findings(db, clock) == []


def test_an_override_on_the_reference_is_fixed_on_the_reference(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        catalog.set_listing_texts(
            session, clock.now(), "ROBE-LIN", "web", {"description_en": "Web-only text"}
        )
    # Only web speaks English besides... nobody: the marketplace and store are French only.
    assert _findings(db, clock) == []
    with db.transaction() as session:
        catalog.set_listing_texts(
            session, clock.now(), "ROBE-LIN", "web", {"description_fr": "Texte du web"}
        )
    findings = _findings(db, clock)
    assert {(f.channel, f.field, f.locale, f.fix_channel) for f in findings} == {
        ("marketplace", "description", "fr", "web"),
        ("store", "description", "fr", "web"),
    }


def test_stock_hidden_by_a_channels_allocation_rule_is_an_availability_difference(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    lyon = builders.location(db, clock, "LYO-1")
    builders.receive(db, clock, "ROBE-LIN-S", lyon, 3)
    with db.transaction() as session:
        inventory.set_channel_rule(
            session, clock.now(), inventory.ChannelRule("web", store_shown_above=5)
        )
    findings = _findings(db, clock, field="availability")
    assert {(f.channel, f.sku, f.channel_value, f.reference_value) for f in findings} == {
        ("marketplace", "ROBE-LIN-S", 3, 0),
        ("store", "ROBE-LIN-S", 3, 0),
    }
    assert all(f.rule == "availability_must_match" and f.fix is None for f in findings)
    with db.transaction() as session:
        catalog.set_voice_rule(
            session,
            clock.now(),
            catalog.VoiceRule("store", "web", availability_must_match=False),
        )
    assert [f.channel for f in _findings(db, clock, field="availability")] == ["marketplace"]


def test_only_products_visible_on_both_channels_are_compared(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "marketplace", 9_900)
        catalog.set_listing(session, clock.now(), "ROBE-LIN", "marketplace", False)
        report = catalog.one_voice_report(session, clock.now())
    assert report.findings == []
    assert report.products_checked == 1  # still compared between web and store


def test_the_report_narrows_to_one_channel_or_field_and_takes_another_reference(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "store", 9_900)
        catalog.set_listing_texts(session, clock.now(), "ROBE-LIN", "store", {"name_fr": "Robe"})
    assert {f.field for f in _findings(db, clock)} == {"name", "price"}
    assert [f.field for f in _findings(db, clock, field="price")] == ["price"]
    assert _findings(db, clock, channel="marketplace") == []
    against_store = _findings(db, clock, reference="store")
    assert {(f.channel, f.reference) for f in against_store} == {
        ("web", "store"),
        ("marketplace", "store"),
    }


def test_bad_report_and_rule_requests_are_refused(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    with db.transaction() as session:
        with pytest.raises(InvalidInput):
            catalog.one_voice_report(session, clock.now(), field="colour")
        with pytest.raises(NotFound):
            catalog.one_voice_report(session, clock.now(), channel="tiktok")
        with pytest.raises(NotFound):
            catalog.one_voice_report(session, clock.now(), reference="tiktok")
        with pytest.raises(InvalidInput) as bad:
            catalog.set_voice_rule(
                session,
                clock.now(),
                catalog.VoiceRule("web", "web", price_tolerance_bp=-1, price_tolerance_cents=True),
            )
        assert {e.pointer for e in bad.value.errors} == {
            "#/price_tolerance_bp",
            "#/price_tolerance_cents",
            "#/reference",
        }
        with pytest.raises(NotFound):
            catalog.set_voice_rule(session, clock.now(), catalog.VoiceRule("store", "tiktok"))


def test_listing_texts_need_a_listing_and_sensible_values(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)
    with db.transaction() as session:
        with pytest.raises(NotFound):
            catalog.set_listing_texts(session, clock.now(), "ROBE-LIN", "web", {"name_fr": "x"})
        catalog.set_listing(session, clock.now(), "ROBE-LIN", "web", True)
        with pytest.raises(InvalidInput) as bad:
            catalog.set_listing_texts(
                session, clock.now(), "ROBE-LIN", "web", {"name_fr": "  ", "colour": "x"}
            )
        assert {e.pointer for e in bad.value.errors} == {"#/name_fr", "#/colour"}


def test_aligning_a_price_records_a_new_decision_and_an_audit_entry(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-M", "marketplace", 7_900)
    clock.advance(timedelta(minutes=1))
    with db.transaction() as session:
        catalog.align_price(session, clock.now(), CLI_ACTOR, "ROBE-LIN-M", "marketplace", "web")
    assert _findings(db, clock) == []
    with db.transaction() as session:
        history = catalog.price_history(session, "ROBE-LIN-M", "marketplace")
        entry = session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert [p.amount for p, _code in history] == [7_492, 7_900, 7_492]
    assert entry is not None
    assert entry.action == "catalog.price_aligned"
    assert entry.detail["previous"] == 7_900
    assert entry.detail["amount"] == 7_492


def test_removing_a_channel_text_shows_the_product_text_again_and_is_audited(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    _listed_everywhere(db, clock)
    with db.transaction() as session:
        catalog.set_listing_texts(session, clock.now(), "ROBE-LIN", "store", {"name_fr": "Robe"})
    with db.transaction() as session:
        catalog.remove_listing_text(
            session, clock.now(), CLI_ACTOR, "ROBE-LIN", "store", "name", "fr"
        )
    assert _findings(db, clock) == []
    with db.transaction() as session:
        entry = session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
        assert entry is not None
        assert (entry.action, entry.detail["field"]) == ("catalog.listing_text_removed", "name_fr")
        with pytest.raises(Conflict):
            catalog.remove_listing_text(
                session, clock.now(), CLI_ACTOR, "ROBE-LIN", "store", "name", "fr"
            )
        with pytest.raises(InvalidInput):
            catalog.remove_listing_text(
                session, clock.now(), CLI_ACTOR, "ROBE-LIN", "store", "price", "fr"
            )
        with pytest.raises(NotFound):
            catalog.align_price(session, clock.now(), CLI_ACTOR, "NOPE", "store", "web")


def _bulk_catalogue(db: Database, clock: ManualClock, start: int, count: int) -> None:
    """`count` products of one variant, priced on web and (10 % dearer) on the store,
    listed on both."""
    rows = [
        (
            n,
            {
                "product_code": f"P{n:05d}",
                "brand": "lavande",
                "category": "mode",
                "name_fr": f"Article {n}",
                "sku": f"P{n:05d}-U",
                "price_web": 1_000 + n,
                "price_store": 1_100 + n,
            },
        )
        for n in range(start, start + count)
    ]
    with db.transaction() as session:
        catalog.import_rows(session, clock.now(), rows)
        catalog.add_listings(
            session,
            clock.now(),
            [
                {"product_code": f"P{n:05d}", "channel": channel}
                for n in range(start, start + count)
                for channel in ("web", "store")
            ],
        )


def _statements_of_a_report(db: Database, clock: ManualClock) -> tuple[int, int]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.transaction() as session:
            findings = catalog.one_voice_report(session, clock.now()).findings
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(statements), len(findings)


def test_the_report_runs_a_fixed_number_of_queries_whatever_the_catalogue_size(
    db: Database, clock: ManualClock
) -> None:
    builders.catalog_basics(db, clock)
    lyon = builders.location(db, clock, "LYO-1")
    _bulk_catalogue(db, clock, 0, 20)
    builders.receive(db, clock, "P00000-U", lyon, 2)
    small, small_findings = _statements_of_a_report(db, clock)
    _bulk_catalogue(db, clock, 20, 2_980)
    large, large_findings = _statements_of_a_report(db, clock)
    assert (small_findings, large_findings) == (20, 3_000)
    assert large == small
