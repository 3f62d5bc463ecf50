"""Promo code text: unguessable, unambiguous, and a typo is caught by the check symbol."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parcours.loyalty import codes


def test_generated_codes_are_prefix_twelve_symbols_and_a_check_symbol() -> None:
    batch = codes.generate(1_000, "XMAS")
    assert len(set(batch)) == 1_000
    assert all(len(c) == 4 + 12 + 1 and c.startswith("XMAS") for c in batch)
    assert all(set(c) <= set(codes.ALPHABET) for c in batch)
    assert all(codes.has_valid_check(c) for c in batch)


def test_the_vectorised_check_agrees_with_the_reference_algorithm() -> None:
    for code in codes.generate(200, "K2"):
        assert codes.check_symbol(code[:-1]) == code[-1]


@given(st.integers(min_value=0, max_value=12), st.sampled_from(codes.ALPHABET))
def test_any_single_mistyped_symbol_is_caught(position: int, symbol: str) -> None:
    code = codes.generate(1)[0]
    typo = code[:position] + symbol + code[position + 1 :]
    assert codes.has_valid_check(typo) == (typo == code)


@given(st.integers(min_value=0, max_value=11))
def test_swapping_two_neighbouring_symbols_is_caught_but_0_and_z(position: int) -> None:
    code = codes.generate(1)[0]
    if {code[position], code[position + 1]} == {"0", "Z"}:
        return  # Luhn mod 32's one blind spot, like 09/90 in decimal Luhn
    swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
    assert codes.has_valid_check(swapped) == (swapped == code)


def test_input_is_normalised_case_spaces_dashes_and_look_alikes() -> None:
    code = codes.generate(1, "AB")[0]
    typed = f" {code[:5].lower()}-{code[5:10]} {code[10:]} ".replace("1", "l").replace("0", "o")
    assert codes.normalise(typed) == code
    assert codes.normalise(" bienvenue-10 ") == "BIENVENUE10"  # shared codes keep their letters


def test_prefixes_and_shared_codes_are_checked() -> None:
    problem = codes.prefix_problem("NOEL", "#/prefix")  # O and L are not in the alphabet
    assert problem is not None
    assert (problem.pointer, problem.detail) == (
        "#/prefix",
        "use 0-9 and A-Z without I, L, O, U (not LO)",
    )
    assert (problem.message, problem.values) == (codes.PREFIX_SYMBOLS, {"bad": "LO"})
    assert codes.prefix_problem("XMAS", "#/prefix") is None
    assert codes.shared_code_problem("BIENVENUE10", "#/code") is None
    assert codes.shared_code_problem("AB", "#/code") is not None
