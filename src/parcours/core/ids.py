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
