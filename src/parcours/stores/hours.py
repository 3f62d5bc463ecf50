"""Opening hours: weekly ranges plus dated exceptions, read in the store's own time zone.

Hours are local wall-clock times: a store open "09:30"-"19:00" opens at 09:30 in its zone
whatever the season. `is_open` compares the local wall time of an instant with the day's
ranges; `next_opening` finds the next instant the store goes from closed to open, which
on a daylight-saving change day may be the moment the clock jumps into a range.
Ranges never cross midnight (open < close on the same day).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from parcours.core.errors import FieldError, Term, refusal

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Their names, as messages say them (and the console translates them).
DAY_NAMES = {
    "mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday",
    "fri": "Friday", "sat": "Saturday", "sun": "Sunday",
}  # fmt: skip
HH_MM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
SEARCH_DAYS = 400  # a store closed for works over a year shows no next opening
EPSILON = timedelta(microseconds=1)

Range = tuple[time, time]

# What checking hours refuses that the console's hours fields can cause, as
# `message % values` for the console (see `core.errors.refusal`).
PAIR = 'must be a ["HH:MM", "HH:MM"] pair'
TIMES = "times must read HH:MM (00:00 to 23:59), got %(pair)s"
OPENS_FIRST = (
    "opens at %(opens)s but closes at %(closes)s: the opening must come first "
    "(ranges cannot cross midnight; split them at 23:59 and 00:00)"
)
OVERLAP = (
    "on %(day)s, range #%(later)s (%(later_range)s) overlaps range #%(earlier)s (%(earlier_range)s)"
)
MESSAGES = (PAIR, TIMES, OPENS_FIRST, OVERLAP)


def _parse_time(value: Any) -> time | None:
    match = HH_MM.fullmatch(value) if isinstance(value, str) else None
    return time(int(match.group(1)), int(match.group(2))) if match else None


def validate_ranges(ranges: Any, pointer: str, day: str) -> list[FieldError]:
    """Problems with one day's ranges ([["09:30", "12:30"], ...]), as pointers into them;
    `day` names the day in messages."""
    if not isinstance(ranges, list):
        return [FieldError('must be a list of ["HH:MM", "HH:MM"] ranges', pointer=pointer)]
    errors: list[FieldError] = []
    parsed: list[tuple[int, Range]] = []
    for index, pair in enumerate(ranges):
        where = f"{pointer}/{index}"
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            errors.append(refusal(PAIR, pointer=where))
            continue
        opens, closes = _parse_time(pair[0]), _parse_time(pair[1])
        if opens is None or closes is None:
            errors.append(refusal(TIMES, pointer=where, pair=repr(pair)))
        elif opens >= closes:
            errors.append(refusal(OPENS_FIRST, pointer=where, opens=pair[0], closes=pair[1]))
        else:
            parsed.append((index, (opens, closes)))
    parsed.sort(key=lambda item: item[1])
    for (i, (_, first_close)), (j, (second_open, _)) in itertools.pairwise(parsed):
        if second_open < first_close:
            errors.append(
                refusal(
                    OVERLAP,
                    pointer=f"{pointer}/{j}",
                    day=day,
                    later=j,
                    later_range=f"{ranges[j][0]}-{ranges[j][1]}",
                    earlier=i,
                    earlier_range=f"{ranges[i][0]}-{ranges[i][1]}",
                )
            )
    return errors


def validate_weekly_hours(hours: Any, pointer: str = "#/opening_hours") -> list[FieldError]:
    """Problems with a weekly timetable ({"mon": [["09:30", "19:00"]], ...})."""
    if not isinstance(hours, Mapping):
        return [FieldError("must map weekdays (mon…sun) to lists of ranges", pointer=pointer)]
    errors: list[FieldError] = []
    for day, ranges in hours.items():
        if day not in WEEKDAYS:
            errors.append(
                FieldError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}", pointer)
            )
            continue
        errors.extend(validate_ranges(ranges, f"{pointer}/{day}", Term(DAY_NAMES[day])))
    return errors


def parse_ranges(ranges: Sequence[Sequence[str]]) -> tuple[Range, ...]:
    """Validated ranges as times, sorted, with touching ranges merged (12:00-14:00-18:00)."""
    merged: list[Range] = []
    for opens, closes in sorted((_strict_time(a), _strict_time(b)) for a, b in ranges):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(closes, merged[-1][1]))
        else:
            merged.append((opens, closes))
    return tuple(merged)


def _strict_time(value: str) -> time:
    parsed = _parse_time(value)
    if parsed is None:
        raise ValueError(f"not an HH:MM time: {value!r}")
    return parsed


@dataclass(frozen=True)
class OpeningSchedule:
    """What a store's opening depends on: its zone, weekly ranges and dated exceptions.

    `exceptions` maps a local date to that day's ranges (empty: closed all day).
    """

    timezone: str
    weekly: Mapping[str, tuple[Range, ...]]
    exceptions: Mapping[date, tuple[Range, ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        timezone: str,
        weekly: Mapping[str, Sequence[Sequence[str]]],
        exceptions: Mapping[date, Sequence[Sequence[str]]] | None = None,
    ) -> OpeningSchedule:
        return cls(
            timezone,
            {day: parse_ranges(ranges) for day, ranges in weekly.items()},
            {day: parse_ranges(ranges) for day, ranges in (exceptions or {}).items()},
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def ranges_on(self, day: date) -> tuple[Range, ...]:
        """The ranges of a local date: its exception if it has one, else its weekday's."""
        if day in self.exceptions:
            return self.exceptions[day]
        return self.weekly.get(WEEKDAYS[day.weekday()], ())

    def never_opens(self) -> bool:
        return not any(self.weekly.values()) and not any(self.exceptions.values())


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime given; pass a UTC-aware instant")
    return at.astimezone(UTC)


def _open_range(schedule: OpeningSchedule, at_utc: datetime) -> Range | None:
    local = _utc(at_utc).astimezone(schedule.zone)
    wall = local.time().replace(tzinfo=None, fold=0)
    for opens, closes in schedule.ranges_on(local.date()):
        if opens <= wall < closes:
            return (opens, closes)
    return None


def is_open(schedule: OpeningSchedule, at_utc: datetime) -> bool:
    """Whether the store is open at this instant, by its local wall clock."""
    return _open_range(schedule, at_utc) is not None


def closes_at(schedule: OpeningSchedule, at_utc: datetime) -> datetime | None:
    """When the range the store is open in ends (UTC), or None when it is closed."""
    current = _open_range(schedule, at_utc)
    if current is None:
        return None
    local_day = _utc(at_utc).astimezone(schedule.zone).date()
    return _instants(schedule.zone, local_day, current[1])[-1]


def next_opening(schedule: OpeningSchedule, at_utc: datetime) -> datetime | None:
    """The next instant strictly after `at_utc` when the store opens (UTC), or None.

    Looks up to 400 days ahead, so long closures declared as exceptions are honoured.
    """
    at_utc = _utc(at_utc)
    if schedule.never_opens():
        return None
    zone = schedule.zone
    start_day = at_utc.astimezone(zone).date()
    for offset in range(SEARCH_DAYS):
        day = start_day + timedelta(days=offset)
        ranges = schedule.ranges_on(day)
        if not ranges:
            continue
        candidates = sorted(
            {c for opens, _ in ranges for c in _instants(zone, day, opens)}
            | set(_transitions(zone, day))
        )
        for candidate in candidates:
            if (
                candidate > at_utc
                and is_open(schedule, candidate)
                and not is_open(schedule, candidate - EPSILON)
            ):
                return candidate
    return None


def _instants(zone: ZoneInfo, day: date, wall: time) -> list[datetime]:
    """The UTC instants a local wall time names: two in an autumn fold, one otherwise."""
    found = {
        datetime.combine(day, wall.replace(fold=fold), tzinfo=zone).astimezone(UTC)
        for fold in (0, 1)
    }
    return sorted(found)


def _transitions(zone: ZoneInfo, day: date) -> list[datetime]:
    """The instant (UTC) the zone's offset changes during a local day, if it does."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    if start.astimezone(zone).utcoffset() == (end - EPSILON).astimezone(zone).utcoffset():
        return []
    low, high = start, end - EPSILON  # offset(low) differs from offset(high)
    before = low.astimezone(zone).utcoffset()
    while high - low > EPSILON:  # ~37 halvings, on two days a year
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return [high]


def hours_text(ranges: list[list[str]]) -> str:
    return ", ".join(f"{a}-{b}" for a, b in ranges)


def parse_hours_text(text: str) -> list[list[str]]:
    """ "09:30-12:30, 14:00-19:00" as ranges; a malformed piece is kept for the validator."""
    ranges: list[list[str]] = []
    for piece in text.split(","):
        piece = piece.strip()
        if piece:
            ranges.append([part.strip() for part in piece.split("-")])
    return ranges
