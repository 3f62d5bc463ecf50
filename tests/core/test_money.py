from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parcours.core.money import Money


def test_amounts_are_integer_minor_units_of_a_known_currency() -> None:
    with pytest.raises(TypeError):
        Money(12.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown ISO 4217"):
        Money(100, "EUROS")


def test_different_currencies_do_not_mix() -> None:
    with pytest.raises(ValueError, match="cannot combine EUR with USD"):
        Money(100, "EUR") + Money(100, "USD")


def test_multiplication_rounds_half_to_even() -> None:
    assert Money(5, "EUR").multiply("0.5").amount == 2  # 2.5 → 2
    assert Money(7, "EUR").multiply("0.5").amount == 4  # 3.5 → 4
    assert Money.from_decimal("0.125", "EUR").amount == 12
    assert Money.from_decimal("0.135", "EUR").amount == 14


def test_zero_decimal_currencies_have_no_minor_unit() -> None:
    assert Money.from_decimal("1500", "JPY").amount == 1500
    assert Money(1500, "JPY").to_decimal() == Decimal(1500)


def test_ten_euros_split_three_ways_keeps_every_cent() -> None:
    parts = Money(1000, "EUR").allocate([1, 1, 1])
    assert [p.amount for p in parts] == [334, 333, 333]


@given(
    amount=st.integers(-(10**9), 10**9),
    weights=st.lists(st.integers(0, 1000), min_size=1, max_size=12).filter(lambda w: sum(w) > 0),
)
def test_allocation_always_adds_up_and_stays_proportional(amount: int, weights: list[int]) -> None:
    parts = Money(amount, "EUR").allocate(weights)
    assert sum(p.amount for p in parts) == amount
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part.amount - amount * weight / total) < 1


def test_display_follows_the_locale() -> None:
    assert Money(123450, "EUR").format("fr") == "1\u202f234,50\xa0€"
    assert Money(123450, "EUR").format("en") == "€1,234.50"


@given(st.integers(-(10**12), 10**12))
def test_decimal_round_trip_is_exact(amount: int) -> None:
    money = Money(amount, "EUR")
    assert Money.from_decimal(money.to_decimal(), "EUR") == money
