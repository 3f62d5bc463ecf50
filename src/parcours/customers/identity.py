"""The identity graph: every identifier a person leaves resolves to one profile.

Contract used by tracking, imports, matching and profiles (the implementation replaces
the bodies, the signatures stay):

- `observe(session, now, observations)` links the identifiers seen together in each
  observation, creating or merging profiles by the deterministic rules, records traits,
  and returns the profile id per observation (None when nothing in it identifies a
  person, e.g. an anonymous id alone, or only blocked values).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy.orm import Session

# Kinds of identifiers, as stored. Values are normalised by `observe`.
IDENTIFIER_KINDS = (
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "loyalty_card",
    "customer_number",
    "device_id",
    "pos_customer_id",
)


# Values shared by many people or typed to get past a form: never identify anyone.
BLOCKED_VALUES: dict[str, frozenset[str]] = {
    "email": frozenset(
        {"test@test.com", "a@a.com", "noemail@noemail.com", "no@email.com", "email@email.com"}
    ),
    "phone": frozenset({"+33000000000", "+33600000000", "+33100000000"}),
}
_BLOCKED_DIGITS = frozenset({"0000000000", "1111111111", "0123456789", "9999999999"})


def normalise(kind: str, value: str, region: str = "FR") -> str | None:
    """The stored form of an identifier, or None when it is invalid or blocked.

    Emails are stripped and lower-cased; phones become E.164 (national numbers read in
    `region`); other kinds are stripped.
    """
    text = value.strip()
    if not text:
        return None
    if kind == "email":
        text = text.lower()
        if "@" not in text or text.startswith("@") or text.endswith("@"):
            return None
    elif kind == "phone":
        digits = "".join(ch for ch in text if ch.isdigit())
        if digits in _BLOCKED_DIGITS:
            return None
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if text in BLOCKED_VALUES.get(kind, frozenset()):
        return None
    return text


@dataclass(frozen=True)
class Observation:
    """Identifiers seen together at one moment, with the traits that came with them.

    `source` names where it came from ("web", "app", "store", "call_centre",
    "import:<name>", "console", ...) and ranks traits by source priority;
    `reference` points back at the evidence (a messageId, "file.csv:12").
    """

    identifiers: Mapping[str, str]
    source: str
    observed_at: datetime
    traits: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None


def observe(
    session: Session, now: datetime, observations: Sequence[Observation]
) -> list[uuid.UUID | None]:
    """Link each observation's identifiers into the graph; the profile id per observation."""
    return [None for _ in observations]


@dataclass(frozen=True)
class Identifier:
    """One identifier linked to a profile."""

    kind: str
    value: str
    source: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class Trait:
    """The value in force for one trait, and where it came from."""

    name: str
    value: Any
    source: str
    observed_at: datetime


def resolve(session: Session, kind: str, value: str) -> uuid.UUID | None:
    """The profile an identifier belongs to (value normalised first), or None."""
    raise NotImplementedError


def identifiers_of(session: Session, profile_id: uuid.UUID) -> list[Identifier]:
    """Every identifier linked to a profile (following merges)."""
    raise NotImplementedError


def traits_of(session: Session, profile_id: uuid.UUID) -> dict[str, Trait]:
    """The traits in force on a profile, each from its highest-priority source."""
    raise NotImplementedError


def merge_profiles(
    session: Session, now: datetime, actor: str, keep: uuid.UUID, other: uuid.UUID, reason: str
) -> uuid.UUID:
    """Merge `other` into `keep` (manual or matching decision); returns the merge id."""
    raise NotImplementedError
