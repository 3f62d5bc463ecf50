"""GTIN (EAN/UPC) validation: GTIN-8, -12, -13 and -14 with the GS1 check digit."""

from __future__ import annotations

GTIN_LENGTHS = (8, 12, 13, 14)


def gtin_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of `body` (the GTIN without its last digit).

    From the right, digits are weighted 3, 1, 3, 1…; the check digit brings the
    weighted sum up to a multiple of ten.
    """
    if not body.isdigit():
        raise ValueError("a GTIN holds digits only")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def gtin_problem(value: str) -> str | None:
    """Why `value` is not a valid GTIN, or None when it is."""
    if not value.isdigit():
        return "a GTIN holds digits only"
    if len(value) not in GTIN_LENGTHS:
        return "a GTIN has 8, 12, 13 or 14 digits"
    expected = gtin_check_digit(value[:-1])
    if int(value[-1]) != expected:
        return f"wrong check digit: expected {expected}"
    return None


def is_valid_gtin(value: str) -> bool:
    return gtin_problem(value) is None


def make_gtin13(body12: str) -> str:
    """A GTIN-13 from its first twelve digits (demo data, tests)."""
    if len(body12) != 12:
        raise ValueError("a GTIN-13 body has 12 digits")
    return body12 + str(gtin_check_digit(body12))
