"""The deterministic rules of the identity graph, in memory (no database here).

Everything that decides where an identifier lands lives in this module: the kinds and
their priority, the per-profile limits, the blocked values, normalisation, source
priority for traits, and `Graph`, which applies observations one at a time. `identity.py`
loads the part of the graph an observation touches, runs it here and writes the result.

The rules, in priority order of identifier kinds (strongest first):

1. An observation links the identifiers seen together. They are taken strongest first;
   each joins the group (with the profile it is already on) unless that would break a
   limit (`IDENTIFIER_LIMITS`) or an unmerge keeps the two sides apart; then that link
   is refused and recorded with its rule. The strongest identifier always joins.
2. Weak identifiers (anonymous and device ids) are linked to the profile they are first
   seen with; seen later with another person, they stay where they are (no merge).
3. The profiles in the group merge into the oldest (or the one a person chose).
4. New identifiers the group refused form their own profile if one of them identifies
   a person; weak ones alone are dropped.
5. Observations are applied in (observed_at, reference, source, identifiers) order, so
   the result depends on the set of observations, not on their arrival order.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers

# Kinds of identifiers, as stored. Values are normalised by `normalise`.
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

# Strongest first: the order in which an observation's identifiers join a group, so
# when a limit bites the weaker identifier is the one refused.
KIND_PRIORITY = (
    "customer_number",
    "user_id",
    "pos_customer_id",
    "loyalty_card",
    "email",
    "phone",
    "device_id",
    "anonymous_id",
)
KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_PRIORITY)}

# Kinds that say where a browser or a device was, not who held it: they attach to a
# profile but never create or merge one.
WEAK_KINDS = frozenset({"anonymous_id", "device_id"})

# At most this many identifiers of a kind on one profile (None: no limit). The one
# place to change them; docs/identity.md explains each.
IDENTIFIER_LIMITS: dict[str, int | None] = {
    "customer_number": 1,
    "user_id": 1,
    "pos_customer_id": 1,
    "loyalty_card": 2,
    "email": 5,
    "phone": 5,
    "device_id": 20,
    "anonymous_id": None,
}

# Longest value kept per kind (the customers row holds customer numbers of 32).
MAX_VALUE_LENGTH: dict[str, int] = {"customer_number": 32, "phone": 20, "email": 254}
DEFAULT_MAX_VALUE_LENGTH = 320

# Values shared by many people or typed to get past a form: never identify anyone.
BLOCKED_VALUES: dict[str, frozenset[str]] = {
    "email": frozenset(
        {
            "test@test.com",
            "a@a.com",
            "noemail@noemail.com",
            "no@email.com",
            "email@email.com",
            "none@none.com",
            "nomail@nomail.com",
            "test@example.com",
            "example@example.com",
            "pasdemail@pasdemail.fr",
            "aucun@aucun.fr",
        }
    ),
    "phone": frozenset({"+33000000000", "+33600000000", "+33100000000"}),
}
_BLOCKED_DIGITS = frozenset({"0000000000", "1111111111", "0123456789", "9999999999"})
# What broken clients send as an id ("undefined" from JavaScript, "null", ...).
BLOCKED_ANY_KIND = frozenset(
    {"undefined", "null", "none", "nil", "nan", "0", "-1", "n/a", "na", "unknown", "anonymous"}
)

# Trait sources by priority, highest first; a source is ranked by the part before ":"
# ("import:loyalty.csv" ranks as "import"). Unknown sources rank last.
SOURCE_PRIORITY: tuple[tuple[str, ...], ...] = (
    ("console", "crm"),
    ("store", "pos"),
    ("call_centre",),
    ("web", "app"),
    ("email", "marketplace", "social"),
    ("import", "merge"),
)
_SOURCE_RANK = {name: rank for rank, names in enumerate(SOURCE_PRIORITY) for name in names}


def source_rank(source: str) -> int:
    """0 for the highest-priority sources; larger is weaker."""
    return _SOURCE_RANK.get(source.partition(":")[0], len(SOURCE_PRIORITY))


def normalise(kind: str, value: str, region: str = "FR") -> str | None:
    """The stored form of an identifier, or None when it is invalid or blocked.

    Emails are stripped and lower-cased; phones become E.164 (national numbers read in
    `region`); other kinds are stripped.
    """
    text = value.strip()
    if not text or text.lower() in BLOCKED_ANY_KIND:
        return None
    if kind == "email":
        text = text.lower()
        if "@" not in text or text.startswith("@") or text.endswith("@") or " " in text:
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
    if len(text) > MAX_VALUE_LENGTH.get(kind, DEFAULT_MAX_VALUE_LENGTH):
        return None
    if text in BLOCKED_VALUES.get(kind, frozenset()):
        return None
    return text


Pair = tuple[str, str]  # (kind, normalised value)


def pair_order(pair: Pair) -> tuple[int, str]:
    """Sort key: strongest kind first, then value."""
    return KIND_RANK[pair[0]], pair[1]


def identifying(pairs: Iterable[Pair]) -> bool:
    """Whether any identifier names a person (not only anonymous or device ids)."""
    return any(kind not in WEAK_KINDS for kind, _ in pairs)


@dataclass(frozen=True)
class Evidence:
    """One observation as the graph sees it: normalised identifiers, strongest first."""

    pairs: tuple[Pair, ...]
    source: str
    observed_at: datetime
    reference: str | None = None
    kind: str = "seen"  # "seen" | "manual"
    keep: uuid.UUID | None = None  # manual merges: the profile the person chose

    def order_key(self) -> tuple[datetime, str, str, tuple[Pair, ...], str, str]:
        """The canonical order of application (arrival order plays no part)."""
        return (
            self.observed_at,
            self.reference or "",
            self.source,
            self.pairs,
            self.kind,
            str(self.keep or ""),
        )


@dataclass
class Link:
    """A merge the graph made, or a link a rule refused."""

    outcome: str  # "merged" | "refused"
    kept: uuid.UUID
    other: uuid.UUID | None
    rule: str
    pairs: list[Pair]
    kept_side: list[Pair]
    other_side: list[Pair]
    evidence: Evidence


@dataclass
class Separation:
    """Two sides an unmerge split: no profile may hold identifiers of both."""

    kept: frozenset[Pair]
    absorbed: frozenset[Pair]


@dataclass
class Seen:
    first: datetime
    last: datetime
    source: str


@dataclass
class Graph:
    """Profiles as sets of identifiers, changed by `apply` under the rules above.

    `born` orders profiles by age (created_at, id). When replaying, `reusable` profile
    ids are given back to the group holding their identifiers (`origin` first, then
    `previous`), so that profile ids stay stable across replays and unmerges.
    """

    new_profile_id: Callable[[], uuid.UUID]
    now: datetime
    profile_of: dict[Pair, uuid.UUID] = field(default_factory=dict)
    members: dict[uuid.UUID, set[Pair]] = field(default_factory=dict)
    born: dict[uuid.UUID, tuple[datetime, str]] = field(default_factory=dict)
    counts: dict[uuid.UUID, Counter[str]] = field(default_factory=dict)
    tags: dict[uuid.UUID, set[tuple[int, int]]] = field(default_factory=dict)
    separation_tags: dict[Pair, set[tuple[int, int]]] = field(default_factory=dict)
    created: list[uuid.UUID] = field(default_factory=list)
    absorbed: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    origin_of_new: dict[Pair, uuid.UUID] = field(default_factory=dict)
    seen: dict[Pair, Seen] = field(default_factory=dict)
    reusable: dict[uuid.UUID, datetime] = field(default_factory=dict)
    origin: Mapping[Pair, uuid.UUID] = field(default_factory=dict)
    previous: Mapping[Pair, uuid.UUID] = field(default_factory=dict)
    used: set[uuid.UUID] = field(default_factory=set)

    # ------------------------------------------------------------------ state

    def add_profile(
        self, profile_id: uuid.UUID, created_at: datetime, pairs: Iterable[Pair]
    ) -> None:
        """Load an existing profile and its identifiers."""
        self.born[profile_id] = (created_at, str(profile_id))
        self.members[profile_id] = set()
        self.counts[profile_id] = Counter()
        self.tags[profile_id] = set()
        self._attach(profile_id, pairs)

    def add_separation(self, index: int, separation: Separation) -> None:
        for side, sided in enumerate((separation.kept, separation.absorbed)):
            for pair in sided:
                self.separation_tags.setdefault(pair, set()).add((index, side))
        for profile_id, members in self.members.items():
            for pair in members:
                self.tags[profile_id] |= self.separation_tags.get(pair, set())

    def _attach(self, profile_id: uuid.UUID, pairs: Iterable[Pair]) -> None:
        members, counts, tags = (
            self.members[profile_id],
            self.counts[profile_id],
            self.tags[profile_id],
        )
        for pair in pairs:
            self.profile_of[pair] = profile_id
            members.add(pair)
            counts[pair[0]] += 1
            tags |= self.separation_tags.get(pair, set())

    def _create(self, pairs: list[Pair], evidence: Evidence) -> uuid.UUID:
        profile_id = self._reused_id(pairs)
        if profile_id is not None:
            created_at = self.reusable[profile_id]
        else:
            profile_id = self.new_profile_id()
            created_at = min(evidence.observed_at, self.now)
        self.used.add(profile_id)
        self.created.append(profile_id)
        self.born[profile_id] = (created_at, str(profile_id))
        self.members[profile_id] = set()
        self.counts[profile_id] = Counter()
        self.tags[profile_id] = set()
        self._attach_new(profile_id, pairs)
        return profile_id

    def _reused_id(self, pairs: list[Pair]) -> uuid.UUID | None:
        for source in (self.origin, self.previous):
            for pair in pairs:
                candidate = source.get(pair)
                if candidate in self.reusable and candidate not in self.used:
                    return candidate
        return None

    def _attach_new(self, profile_id: uuid.UUID, pairs: list[Pair]) -> None:
        for pair in pairs:
            if pair not in self.origin:
                self.origin_of_new.setdefault(pair, profile_id)
        self._attach(profile_id, pairs)

    def _merge(self, survivor: uuid.UUID, other: uuid.UUID) -> None:
        pairs = self.members.pop(other)
        self.counts.pop(other)
        self.tags.pop(other)
        self._attach(survivor, pairs)
        self.absorbed[other] = survivor

    def identifying_pairs(self, profile_id: uuid.UUID) -> list[Pair]:
        return sorted(
            (p for p in self.members[profile_id] if p[0] not in WEAK_KINDS), key=pair_order
        )

    # ------------------------------------------------------------------ rules

    def note_seen(self, evidence: Evidence) -> None:
        """Keep first/last seen and the first source of each identifier."""
        for pair in evidence.pairs:
            seen = self.seen.get(pair)
            if seen is None:
                self.seen[pair] = Seen(evidence.observed_at, evidence.observed_at, evidence.source)
                continue
            if evidence.observed_at < seen.first:
                seen.first, seen.source = evidence.observed_at, evidence.source
            seen.last = max(seen.last, evidence.observed_at)

    def apply(self, evidence: Evidence) -> uuid.UUID | None:
        """Link one observation's identifiers; the profile it resolves to."""
        self.note_seen(evidence)
        if not identifying(evidence.pairs):
            return self.profile_of.get(evidence.pairs[0]) if evidence.pairs else None
        group: list[uuid.UUID] = []
        fresh: list[Pair] = []
        counts: Counter[str] = Counter()
        tags: set[tuple[int, int]] = set()
        refused: dict[uuid.UUID, tuple[str, list[Pair]]] = {}
        refused_fresh: list[tuple[Pair, str]] = []
        for pair in evidence.pairs:
            profile_id = self.profile_of.get(pair)
            if profile_id is None:
                rule = self._violation(counts, tags, Counter({pair[0]: 1}), self._tags_of(pair))
                if rule is None:
                    fresh.append(pair)
                    counts[pair[0]] += 1
                    tags |= self._tags_of(pair)
                else:
                    refused_fresh.append((pair, rule))
                continue
            if profile_id in group:
                continue
            if profile_id in refused:
                refused[profile_id][1].append(pair)
                continue
            rule = self._violation(counts, tags, self.counts[profile_id], self.tags[profile_id])
            if rule is None and pair[0] in WEAK_KINDS:
                rule = f"weak:{pair[0]}"  # a shared browser or device is no proof
            if rule is not None:
                refused[profile_id] = (rule, [pair])
                continue
            group.append(profile_id)
            counts.update(self.counts[profile_id])
            tags |= self.tags[profile_id]
        survivor = self._settle(group, fresh, evidence)
        for other, (rule, pairs) in refused.items():
            self._refuse(survivor, other, rule, pairs, evidence)
        self._place_refused(survivor, refused_fresh, evidence)
        return survivor

    def _tags_of(self, pair: Pair) -> set[tuple[int, int]]:
        return self.separation_tags.get(pair, set())

    @staticmethod
    def _violation(
        counts: Counter[str],
        tags: set[tuple[int, int]],
        add_counts: Mapping[str, int],
        add_tags: set[tuple[int, int]],
    ) -> str | None:
        for kind, n in add_counts.items():
            limit = IDENTIFIER_LIMITS.get(kind)
            if limit is not None and n and counts[kind] + n > limit:
                return f"limit:{kind}"
        for index, side in add_tags:
            if (index, 1 - side) in tags:
                return "separated"
        return None

    def _settle(self, group: list[uuid.UUID], fresh: list[Pair], evidence: Evidence) -> uuid.UUID:
        """Merge the group's profiles and attach its new identifiers."""
        if not group:
            return self._create(fresh, evidence)
        if evidence.keep is not None and evidence.keep in group:
            survivor = evidence.keep
        else:
            survivor = min(group, key=lambda p: self.born[p])
        rule = "manual" if evidence.kind == "manual" else "seen_together"
        for other in group:
            if other == survivor:
                continue
            trigger = [p for p in evidence.pairs if self.profile_of.get(p) in (survivor, other)]
            link = Link(
                "merged",
                survivor,
                other,
                rule,
                sorted(trigger, key=pair_order),
                self.identifying_pairs(survivor),
                self.identifying_pairs(other),
                evidence,
            )
            self.links.append(link)
            self._merge(survivor, other)
        self._attach_new(survivor, fresh)
        return survivor

    def _refuse(
        self,
        survivor: uuid.UUID,
        other: uuid.UUID | None,
        rule: str,
        pairs: list[Pair],
        evidence: Evidence,
    ) -> None:
        other_side = self.identifying_pairs(other) if other is not None else []
        self.links.append(
            Link(
                "refused",
                survivor,
                other,
                rule,
                sorted(pairs, key=pair_order),
                self.identifying_pairs(survivor),
                other_side,
                evidence,
            )
        )

    def _place_refused(
        self, survivor: uuid.UUID, refused_fresh: list[tuple[Pair, str]], evidence: Evidence
    ) -> None:
        """New identifiers the group refused: their own profile(s), or dropped if weak."""
        remaining = refused_fresh
        while remaining:
            if not identifying(p for p, _ in remaining):
                self._refuse(survivor, None, remaining[0][1], [p for p, _ in remaining], evidence)
                return
            group: list[Pair] = []
            counts: Counter[str] = Counter()
            tags: set[tuple[int, int]] = set()
            rest: list[tuple[Pair, str]] = []
            for pair, rule in remaining:
                if self._violation(counts, tags, Counter({pair[0]: 1}), self._tags_of(pair)):
                    rest.append((pair, rule))
                    continue
                group.append(pair)
                counts[pair[0]] += 1
                tags |= self._tags_of(pair)
            profile_id = self._create(group, evidence)
            self._refuse(survivor, profile_id, remaining[0][1], group, evidence)
            remaining = rest
