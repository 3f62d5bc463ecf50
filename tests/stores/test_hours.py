"""Opening hours: validation, then open-now and next opening in the store's own zone."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parcours.stores import OpeningSchedule, closes_at, is_open, next_opening
from parcours.stores.hours import WEEKDAYS, validate_weekly_hours

PARIS = ZoneInfo("Europe/Paris")
WEEK = {
    "mon": [["14:00", "19:00"]],
    "tue": [["09:30", "12:30"], ["14:00", "19:00"]],
    "wed": [["09:30", "19:00"]],
    "thu": [["09:30", "19:00"]],
    "fri": [["09:30", "19:00"]],
    "sat": [["09:30", "19:30"]],
    "sun": [["10:00", "13:00"]],
}


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)  # type: ignore[misc]


def test_overlapping_ranges_are_refused_with_a_pointer_at_the_day() -> None:
    errors = validate_weekly_hours({"tue": [["09:00", "12:30"], ["12:00", "18:00"]]})
    assert [e.pointer for e in errors] == ["#/opening_hours/tue/1"]
    assert "on Tuesday" in errors[0].detail
    assert "overlaps" in errors[0].detail
    assert "09:00-12:30" in errors[0].detail


def test_touching_ranges_are_allowed_and_read_as_one() -> None:
    assert validate_weekly_hours({"mon": [["09:00", "12:00"], ["12:00", "18:00"]]}) == []
    schedule = OpeningSchedule.build(
        "Europe/Paris", {"mon": [["09:00", "12:00"], ["12:00", "18:00"]]}
    )
    monday_noon = paris(2026, 3, 16, 12, 0)
    assert is_open(schedule, monday_noon)
    assert closes_at(schedule, monday_noon) == paris(2026, 3, 16, 18, 0)


@pytest.mark.parametrize(
    ("hours", "pointer", "fragment"),
    [
        ({"mon": [["9:30", "19:00"]]}, "#/opening_hours/mon/0", "HH:MM"),
        ({"mon": [["24:00", "25:00"]]}, "#/opening_hours/mon/0", "HH:MM"),
        ({"mon": [["19:00", "09:00"]]}, "#/opening_hours/mon/0", "cannot cross midnight"),
        ({"mon": [["10:00", "10:00"]]}, "#/opening_hours/mon/0", "opening must come first"),
        ({"mon": [["10:00"]]}, "#/opening_hours/mon/0", "pair"),
        ({"mon": "10:00-19:00"}, "#/opening_hours/mon", "list"),
        ({"monday": []}, "#/opening_hours", "unknown weekday"),
        (["mon"], "#/opening_hours", "map weekdays"),
    ],
)
def test_bad_hours_are_refused_with_a_clear_error(
    hours: object, pointer: str, fragment: str
) -> None:
    errors = validate_weekly_hours(hours)
    assert len(errors) == 1
    assert errors[0].pointer == pointer
    assert fragment in errors[0].detail


def test_a_store_is_open_by_its_local_wall_clock() -> None:
    schedule = OpeningSchedule.build("Europe/Paris", WEEK)
    assert not is_open(schedule, paris(2026, 3, 17, 9, 29))  # Tuesday
    assert is_open(schedule, paris(2026, 3, 17, 9, 30))
    assert not is_open(schedule, paris(2026, 3, 17, 12, 30))  # lunch break
    assert next_opening(schedule, paris(2026, 3, 17, 12, 45)) == paris(2026, 3, 17, 14, 0)
    assert closes_at(schedule, paris(2026, 3, 17, 15, 0)) == paris(2026, 3, 17, 19, 0)
    assert closes_at(schedule, paris(2026, 3, 17, 13, 0)) is None


def test_next_opening_skips_closed_days_and_is_strictly_later() -> None:
    schedule = OpeningSchedule.build("Europe/Paris", {"sat": [["09:30", "19:30"]]})
    saturday_open = paris(2026, 3, 21, 10, 0)
    assert is_open(schedule, saturday_open)
    assert next_opening(schedule, saturday_open) == paris(2026, 3, 28, 9, 30)


def test_exceptions_close_a_day_or_give_it_special_hours() -> None:
    schedule = OpeningSchedule.build(
        "Europe/Paris",
        WEEK,
        {date(2026, 5, 1): [], date(2026, 12, 20): [["10:00", "18:00"]]},
    )
    # 1 May 2026 is a Friday: closed, so the next opening is Saturday morning.
    assert not is_open(schedule, paris(2026, 5, 1, 11, 0))
    assert next_opening(schedule, paris(2026, 4, 30, 20, 0)) == paris(2026, 5, 2, 9, 30)
    # A December Sunday open all day instead of the morning only.
    assert is_open(schedule, paris(2026, 12, 20, 17, 0))
    assert not is_open(schedule, paris(2026, 12, 27, 17, 0))


def test_spring_forward_moves_the_opening_one_hour_earlier_in_utc() -> None:
    # Sunday 29 March 2026: Paris goes from UTC+1 to UTC+2 at 02:00 local.
    schedule = OpeningSchedule.build("Europe/Paris", {"sun": [["10:00", "13:00"]]})
    assert next_opening(schedule, datetime(2026, 3, 22, 12, tzinfo=UTC)) == datetime(
        2026, 3, 29, 8, 0, tzinfo=UTC
    )
    assert is_open(schedule, datetime(2026, 3, 29, 8, 30, tzinfo=UTC))  # 10:30 summer time
    assert not is_open(schedule, datetime(2026, 3, 22, 8, 30, tzinfo=UTC))  # 09:30 winter time


def test_a_range_that_spans_the_spring_gap_lasts_an_hour_less() -> None:
    schedule = OpeningSchedule.build("Europe/Paris", {"sun": [["01:00", "04:00"]]})
    opening = next_opening(schedule, datetime(2026, 3, 28, tzinfo=UTC))
    assert opening == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert closes_at(schedule, opening) == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)


def test_a_range_starting_inside_the_spring_gap_opens_when_the_clock_jumps() -> None:
    schedule = OpeningSchedule.build("Europe/Paris", {"sun": [["02:30", "04:00"]]})
    # 02:30 never happens on 29 March; the store opens when 02:00 becomes 03:00.
    opening = next_opening(schedule, datetime(2026, 3, 28, tzinfo=UTC))
    assert opening == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_a_range_inside_the_autumn_fold_opens_twice() -> None:
    # Sunday 25 October 2026: 03:00 summer time becomes 02:00 winter time.
    schedule = OpeningSchedule.build("Europe/Paris", {"sun": [["02:15", "02:45"]]})
    first = next_opening(schedule, datetime(2026, 10, 24, tzinfo=UTC))
    assert first == datetime(2026, 10, 25, 0, 15, tzinfo=UTC)
    second = next_opening(schedule, first)
    assert second == datetime(2026, 10, 25, 1, 15, tzinfo=UTC)
    assert not is_open(schedule, datetime(2026, 10, 25, 1, 0, tzinfo=UTC))


def test_autumn_back_keeps_local_opening_times() -> None:
    schedule = OpeningSchedule.build("Europe/Paris", {"sun": [["10:00", "13:00"]]})
    assert next_opening(schedule, datetime(2026, 10, 25, 0, tzinfo=UTC)) == datetime(
        2026, 10, 25, 9, 0, tzinfo=UTC
    )


def test_an_overseas_store_opens_by_martinique_time() -> None:
    # Martinique is UTC-4 all year: no daylight saving.
    schedule = OpeningSchedule.build("America/Martinique", {"sat": [["08:30", "12:30"]]})
    assert is_open(schedule, datetime(2026, 3, 28, 12, 30, tzinfo=UTC))  # 08:30 local
    assert not is_open(schedule, datetime(2026, 3, 28, 12, 29, tzinfo=UTC))
    assert next_opening(schedule, datetime(2026, 3, 28, 17, 0, tzinfo=UTC)) == datetime(
        2026, 4, 4, 12, 30, tzinfo=UTC
    )
    # Paris changed its clocks on 29 March; Martinique's opening stays at 12:30 UTC.
    assert next_opening(schedule, datetime(2026, 4, 4, 0, 0, tzinfo=UTC)) == datetime(
        2026, 4, 4, 12, 30, tzinfo=UTC
    )


def test_a_store_without_hours_never_opens() -> None:
    schedule = OpeningSchedule.build("Europe/Paris", {})
    assert not is_open(schedule, paris(2026, 3, 17, 12, 0))
    assert next_opening(schedule, paris(2026, 3, 17, 12, 0)) is None


def test_a_store_closed_by_exceptions_for_a_long_time_opens_after_them() -> None:
    closed = {date(2026, 1, 1) + timedelta(days=n): [] for n in range(200)}
    schedule = OpeningSchedule.build("Europe/Paris", {"mon": [["09:00", "18:00"]]}, closed)
    assert next_opening(schedule, paris(2026, 1, 1, 0, 0)) == paris(2026, 7, 20, 9, 0)


def test_naive_instants_are_refused() -> None:
    schedule = OpeningSchedule.build("Europe/Paris", WEEK)
    with pytest.raises(ValueError, match="naive"):
        is_open(schedule, datetime(2026, 3, 17, 12, 0))


# ------------------------------------------------------------------ properties

minutes = st.integers(min_value=0, max_value=24 * 60 - 1)


@st.composite
def day_ranges(draw: st.DrawFn) -> list[list[str]]:
    cuts = sorted(draw(st.sets(minutes, max_size=6)))
    pairs = [cuts[i : i + 2] for i in range(0, len(cuts) - 1, 2)]
    return [[f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"] for a, b in pairs]


weeks = st.fixed_dictionaries({day: day_ranges() for day in WEEKDAYS})
zones = st.sampled_from(["Europe/Paris", "America/Martinique", "Indian/Reunion"])
# Around both 2026 clock changes in Paris, where mistakes hide.
instants = st.one_of(
    st.datetimes(datetime(2026, 3, 26), datetime(2026, 4, 1)),
    st.datetimes(datetime(2026, 10, 22), datetime(2026, 10, 28)),
).map(lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=300, deadline=None)
@given(week=weeks, zone=zones, at=instants)
def test_open_now_matches_the_local_timetable(
    week: dict[str, list[list[str]]], zone: str, at: datetime
) -> None:
    schedule = OpeningSchedule.build(zone, week)
    local = at.astimezone(ZoneInfo(zone))
    wall = local.strftime("%H:%M:%S.%f")
    ranges = week[WEEKDAYS[local.weekday()]]
    assert is_open(schedule, at) == any(a <= wall < b for a, b in ranges)


@settings(max_examples=300, deadline=None)
@given(week=weeks, zone=zones, at=instants)
def test_next_opening_is_the_first_moment_the_store_opens(
    week: dict[str, list[list[str]]], zone: str, at: datetime
) -> None:
    schedule = OpeningSchedule.build(zone, week)
    opening = next_opening(schedule, at)
    if opening is None:
        assert not any(week.values())
        return
    assert opening > at
    assert is_open(schedule, opening)
    assert not is_open(schedule, opening - timedelta(microseconds=1))
    # Nothing opens in between: once closed, the store stays closed until the answer.
    probe, closed_since = at, False
    while probe < min(opening, at + timedelta(days=8)):
        open_now = is_open(schedule, probe)
        assert not (closed_since and open_now)
        closed_since = closed_since or not open_now
        probe += timedelta(minutes=7)
