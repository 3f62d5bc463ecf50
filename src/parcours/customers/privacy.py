"""Privacy: subject access export, erasure everywhere, retention, erasure tombstones.

Contract used by tracking and imports (the implementation replaces the body):
`erased_identifiers(session, pairs)` tells which (kind, value) identifiers belong to
an erased person, so that their data never comes back through a later import or a
replayed event without a new consent.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session


def erased_identifiers(session: Session, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (kind, normalised value) pairs among `pairs` that an erasure blocked."""
    return set()
