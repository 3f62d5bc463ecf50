"""GTIN check digits: every length GS1 defines, and every kind of typo caught."""

from hypothesis import given
from hypothesis import strategies as st

from parcours.catalog import gtin_check_digit, gtin_problem, is_valid_gtin, make_gtin13


def test_real_world_gtins_of_every_length_are_valid() -> None:
    assert is_valid_gtin("96385074")  # GTIN-8
    assert is_valid_gtin("036000291452")  # GTIN-12 (UPC-A)
    assert is_valid_gtin("3017620422003")  # GTIN-13, a French EAN
    assert is_valid_gtin("10614141000415")  # GTIN-14


def test_a_wrong_check_digit_says_which_digit_was_expected() -> None:
    assert gtin_problem("3017620422004") == "wrong check digit: expected 3"


def test_letters_and_odd_lengths_are_refused() -> None:
    assert gtin_problem("30176204220O3") == "a GTIN holds digits only"
    assert gtin_problem("1234567890") == "a GTIN has 8, 12, 13 or 14 digits"


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_a_made_gtin13_is_always_valid(body: str) -> None:
    assert is_valid_gtin(make_gtin13(body))


@given(
    st.text(alphabet="0123456789", min_size=12, max_size=12),
    st.integers(0, 12),
    st.integers(1, 9),
)
def test_any_single_digit_typo_is_caught(body: str, position: int, shift: int) -> None:
    gtin = make_gtin13(body)
    typo = gtin[:position] + str((int(gtin[position]) + shift) % 10) + gtin[position + 1 :]
    assert not is_valid_gtin(typo)


def test_the_check_digit_of_a_zero_sum_is_zero() -> None:
    assert gtin_check_digit("000000000000") == 0
