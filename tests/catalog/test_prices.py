"""Prices: append-only history, VAT both ways, sales within their window, store prices."""

import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text

from parcours import catalog, stores
from parcours.catalog.service import vat_split
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.core.errors import InvalidInput, NotFound
from tests import builders


def _setup(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock)


def test_the_current_price_is_the_latest_valid_one_and_history_keeps_all(
    db: Database, clock: ManualClock
) -> None:
    _setup(db, clock)
    now = clock.now()
    with db.transaction() as session:
        catalog.set_price(session, now, "ROBE-LIN-S", "web", 8_990)
        catalog.set_price(
            session, now, "ROBE-LIN-S", "web", 7_990, valid_from=now + timedelta(days=7)
        )
        catalog.set_price(
            session, now, "ROBE-LIN-S", "web", 9_490, valid_from=now + timedelta(days=1)
        )
    with db.transaction() as session:
        assert catalog.current_price(session, "ROBE-LIN-S", "web", now).incl_vat == 8_990
        later = now + timedelta(days=2)
        assert catalog.current_price(session, "ROBE-LIN-S", "web", later).incl_vat == 9_490
        assert (
            catalog.current_price(session, "ROBE-LIN-S", "web", now + timedelta(days=8)).incl_vat
            == 7_990
        )
        history = catalog.price_history(session, "ROBE-LIN-S", "web")
    assert [p.amount for p, _channel in history] == [7_990, 9_490, 8_990]
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM prices")).scalar() == 3


def test_vat_inclusive_and_exclusive_amounts_are_derived_with_bankers_rounding(
    db: Database, clock: ManualClock
) -> None:
    _setup(db, clock)
    with db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "web", 8_990)
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "marketplace", 7_500)
        web = catalog.current_price(session, "ROBE-LIN-S", "web", clock.now())
        market = catalog.current_price(session, "ROBE-LIN-S", "marketplace", clock.now())
    assert (web.incl_vat, web.excl_vat) == (8_990, 7_492)  # 89.90 / 1.2 = 74.9166…
    assert (market.incl_vat, market.excl_vat) == (9_000, 7_500)  # the marketplace is HT


def test_half_cents_round_to_even() -> None:
    assert vat_split(1_050, "EUR", False, 1_000) == (1_155, 1_050)
    assert vat_split(25, "EUR", False, 2_000) == (30, 25)
    assert vat_split(5, "EUR", False, 1_000) == (6, 5)  # 5.5 → 6 (even)
    assert vat_split(15, "EUR", False, 1_000) == (16, 15)  # 16.5 → 16 (even)


@given(st.integers(0, 10**9), st.sampled_from(catalog.VAT_RATES_BP))
def test_excluding_then_including_vat_lands_within_a_cent(amount: int, rate: int) -> None:
    _incl, excl = vat_split(amount, "EUR", True, rate)
    back, _excl = vat_split(excl, "EUR", False, rate)
    assert abs(back - amount) <= 1


def test_a_sale_price_applies_only_within_its_window(db: Database, clock: ManualClock) -> None:
    _setup(db, clock)
    now = clock.now()
    with db.transaction() as session:
        catalog.set_price(
            session,
            now,
            "ROBE-LIN-M",
            "web",
            8_990,
            sale_amount=5_990,
            sale_from=now + timedelta(days=1),
            sale_to=now + timedelta(days=3),
        )
    with db.transaction() as session:
        before = catalog.current_price(session, "ROBE-LIN-M", "web", now)
        during = catalog.current_price(session, "ROBE-LIN-M", "web", now + timedelta(days=2))
        after = catalog.current_price(session, "ROBE-LIN-M", "web", now + timedelta(days=3))
    assert (before.on_sale, before.incl_vat) == (False, 8_990)
    assert (during.on_sale, during.incl_vat, during.regular_incl_vat) == (True, 5_990, 8_990)
    assert (after.on_sale, after.incl_vat) == (False, 8_990)


def test_a_store_price_wins_over_the_channel_price_in_that_store_only(
    db: Database, clock: ManualClock
) -> None:
    _setup(db, clock)
    builders.add_store(db, clock, "LYO-1")
    builders.add_store(db, clock, "PAR-1", postcode="75001", city="Paris")
    with db.transaction() as session:
        lyon = stores.get_store_by_code(session, "LYO-1").id
        paris = stores.get_store_by_code(session, "PAR-1").id
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "store", 8_990)
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "store", 7_990, store_id=lyon)
    with db.transaction() as session:
        assert (
            catalog.current_price(session, "ROBE-LIN-S", "store", clock.now(), lyon).incl_vat
            == 7_990
        )
        assert (
            catalog.current_price(session, "ROBE-LIN-S", "store", clock.now(), paris).incl_vat
            == 8_990
        )
        assert catalog.current_price(session, "ROBE-LIN-S", "store", clock.now()).incl_vat == 8_990


@pytest.mark.parametrize(
    ("amount", "sale", "message"),
    [
        (-1, None, "must not be negative"),
        (12.5, None, "must be a whole number of cents"),
        ("1290", None, "must be a whole number of cents"),
        (1_000, 1_200, "a sale price is below the regular price"),
    ],
)
def test_bad_amounts_are_refused(
    db: Database, clock: ManualClock, amount: object, sale: object, message: str
) -> None:
    _setup(db, clock)
    with pytest.raises(InvalidInput) as caught, db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "web", amount, sale_amount=sale)
    assert caught.value.errors[0].detail == message


def test_no_price_yet_is_not_found(db: Database, clock: ManualClock) -> None:
    _setup(db, clock)
    with pytest.raises(NotFound, match="no price"), db.transaction() as session:
        catalog.current_price(session, "ROBE-LIN-S", "web", clock.now())
    with pytest.raises(NotFound, match="SKU"), db.transaction() as session:
        catalog.set_price(session, clock.now(), "GHOST", "web", 100)
    with pytest.raises(NotFound, match="channel"), db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "tv", 100)


def test_current_prices_of_many_skus_take_one_query(db: Database, clock: ManualClock) -> None:
    builders.catalog_basics(db, clock)
    builders.add_product(db, clock, variants=[{"sku": f"V-{i}"} for i in range(40)])
    now = clock.now()
    with db.transaction() as session:
        for i in range(40):
            catalog.set_price(session, now - timedelta(days=2), f"V-{i}", "web", 1_000 + i)
            catalog.set_price(session, now - timedelta(days=1), f"V-{i}", "web", 2_000 + i)
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.transaction() as session:
        prices = catalog.current_prices(session, "web", now)
    assert len(prices) == 40
    assert prices["V-7"].incl_vat == 2_007
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 2  # the channel, then every price at once


def test_prices_reference_real_stores(db: Database, clock: ManualClock) -> None:
    _setup(db, clock)
    with pytest.raises(Exception, match=r"(?i)foreign key"), db.transaction() as session:
        catalog.set_price(session, clock.now(), "ROBE-LIN-S", "store", 100, store_id=uuid.uuid4())
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(text("prices"))) == 0


def test_vat_rates_read_and_print_as_percent() -> None:
    from parcours.catalog.service import parse_vat_rate, vat_percent

    assert [vat_percent(bp) for bp in catalog.VAT_RATES_BP] == ["20", "10", "5.5", "2.1"]
    assert [parse_vat_rate(v) for v in ("20", "5,5", 2.1, "10%")] == [2000, 550, 210, 1000]
    with pytest.raises(ValueError, match="not a number"):
        parse_vat_rate("vingt")
