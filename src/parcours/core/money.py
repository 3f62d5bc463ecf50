"""Money as integer minor units plus an ISO 4217 currency.

Amounts never pass through floats. Multiplication rounds half to even (banker's
rounding) so rounding errors do not drift one way over many lines, and `allocate`
splits an amount into parts that add up to it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def minor_units(currency: str) -> int:
    """Digits after the decimal point for `currency` (2 for EUR, 0 for JPY)."""
    return int(get_currency_precision(currency))


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents for EUR) of one currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"Money amount must be an int of minor units, got {self.amount!r}")
        if self.currency not in _known_currencies():
            raise ValueError(f"unknown ISO 4217 currency {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal | str, currency: str) -> Money:
        """Parse a major-unit amount ("12.345" EUR → 1234 cents, half to even)."""
        scaled = Decimal(value).scaleb(minor_units(currency))
        return cls(int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-minor_units(self.currency))

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def multiply(self, factor: Decimal | int | str) -> Money:
        """This amount times `factor`, rounded half to even to a whole minor unit."""
        product = Decimal(self.amount) * Decimal(factor)
        return Money(int(product.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), self.currency)

    def allocate(self, weights: list[int]) -> list[Money]:
        """Split into parts proportional to `weights` whose sum is exactly this amount.

        Leftover minor units go one by one to the parts with the largest remainders,
        so a 10.00 € discount over three lines gives 3.34 + 3.33 + 3.33.
        """
        if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError("weights must be non-negative with a positive sum")
        total = sum(weights)
        sign = -1 if self.amount < 0 else 1
        amount = abs(self.amount)
        shares = [amount * w // total for w in weights]
        remainders = [amount * w % total for w in weights]
        order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
        for index in order[: amount - sum(shares)]:
            shares[index] += 1
        return [Money(sign * share, self.currency) for share in shares]

    def format(self, locale: str = "fr") -> str:
        """Display string for a locale: `1 234,50 €` in French, `€1,234.50` in English."""
        return str(format_currency(self.to_decimal(), self.currency, locale=locale))

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency}"
