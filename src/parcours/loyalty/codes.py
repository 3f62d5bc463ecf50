"""Promo code text: the alphabet, normalisation, the check character and bulk generation.

Unique codes are `PREFIX` + 12 random symbols + 1 check symbol, in Crockford's base32
alphabet (`0-9 A-Z` without I, L, O, U: nothing to confuse when read aloud or typed).
The 12 symbols come from `secrets` (60 bits each code: guessing one of a million codes
takes about 10^12 tries). The check symbol is the Luhn mod N algorithm with N = 32 over
the whole code, prefix included: it catches every single mistyped symbol and every swap
of two neighbouring symbols but `0Z` ↔ `Z0` (its one blind spot, like 09/90 in decimal
Luhn), so a typo is refused before any database lookup.

Input is normalised: upper case, spaces, dashes and underscores dropped, and, for unique
codes, the look-alikes Crockford decodes (O → 0, I and L → 1). Shared codes are a chosen
word of 3 to 12 letters and digits (`BIENVENUE10`); a code of 13 symbols or more is a
unique code and must pass the check.
"""

from __future__ import annotations

import re
import secrets

import numpy as np

from parcours.core.errors import FieldError, refusal

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE = len(ALPHABET)
VALUES = {symbol: value for value, symbol in enumerate(ALPHABET)}
RANDOM_LENGTH = 12
MAX_PREFIX = 8
SHARED_MAX = RANDOM_LENGTH  # a longer code is a unique one
LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_DROPPED = re.compile(r"[\s_-]+")
_SHARED = re.compile(r"^[A-Z0-9]{3,12}$")


def normalise(text: str) -> str:
    """What the customer typed, as codes are stored: upper case, without spaces, dashes
    or underscores; look-alike letters decoded when it is long enough to be unique."""
    cleaned = _DROPPED.sub("", text).upper()
    return cleaned.translate(LOOK_ALIKES) if len(cleaned) > SHARED_MAX else cleaned


def is_unique_shape(code: str) -> bool:
    """Whether a normalised code is long enough to be a unique (checked) code."""
    return len(code) > SHARED_MAX


def _luhn_sum(values: list[int], double_first: bool) -> int:
    """The Luhn mod 32 sum, walking from the rightmost value; `double_first` doubles it."""
    total, factor = 0, 2 if double_first else 1
    for value in reversed(values):
        addend = factor * value
        total += addend // BASE + addend % BASE
        factor = 3 - factor
    return total


def check_symbol(body: str) -> str:
    """The check symbol of `body` (Luhn mod 32); `body` holds alphabet symbols only."""
    total = _luhn_sum([VALUES[s] for s in body], double_first=True)
    return ALPHABET[(BASE - total % BASE) % BASE]


def has_valid_check(code: str) -> bool:
    """Whether a normalised unique code's last symbol is the check of the rest."""
    if len(code) < 2 or any(s not in VALUES for s in code):
        return False
    return _luhn_sum([VALUES[s] for s in code], double_first=False) % BASE == 0


# Why a text cannot be a prefix or a shared code, as `message % values` for the console.
PREFIX_TOO_LONG = "at most %(most)s symbols"
PREFIX_SYMBOLS = "use 0-9 and A-Z without I, L, O, U (not %(bad)s)"
NOT_SHARED_SHAPE = "a shared code is 3 to 12 letters and digits"
MESSAGES = (PREFIX_TOO_LONG, PREFIX_SYMBOLS, NOT_SHARED_SHAPE)


def prefix_problem(prefix: str, pointer: str) -> FieldError | None:
    """Why `prefix` cannot start unique codes (said at `pointer`), or None."""
    if len(prefix) > MAX_PREFIX:
        return refusal(PREFIX_TOO_LONG, pointer=pointer, most=MAX_PREFIX)
    bad = sorted({s for s in prefix if s not in VALUES})
    if bad:
        return refusal(PREFIX_SYMBOLS, pointer=pointer, bad="".join(bad))
    return None


def shared_code_problem(code: str, pointer: str) -> FieldError | None:
    """Why `code` (normalised) cannot be a shared code (said at `pointer`), or None."""
    if not _SHARED.match(code):
        return refusal(NOT_SHARED_SHAPE, pointer=pointer)
    return None


def generate(count: int, prefix: str = "") -> list[str]:
    """`count` fresh unique codes (prefix, 12 random symbols, check symbol), computed
    for all codes at once with numpy: `secrets.token_bytes` gives the randomness (a
    byte masked to 5 bits is uniform over the 32 symbols)."""
    if count <= 0:
        return []
    prefix_values = np.array([VALUES[s] for s in prefix], dtype=np.int64)
    raw = np.frombuffer(secrets.token_bytes(count * RANDOM_LENGTH), dtype=np.uint8)
    body = (raw & 31).astype(np.int64).reshape(count, RANDOM_LENGTH)
    values = np.hstack([np.broadcast_to(prefix_values, (count, len(prefix))), body])
    # Luhn mod 32 from the right: the rightmost body symbol is doubled, then every other.
    width = values.shape[1]
    factors = np.where((np.arange(width)[::-1] % 2) == 0, 2, 1)
    addends = values * factors
    total = (addends // BASE + addends % BASE).sum(axis=1)
    check = (BASE - total % BASE) % BASE
    table = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    symbols = table[np.hstack([values, check[:, None]])]
    blob = symbols.astype(np.uint8).tobytes().decode("ascii")
    step = width + 1
    return [blob[i : i + step] for i in range(0, len(blob), step)]
